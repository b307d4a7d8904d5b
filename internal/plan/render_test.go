package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenPlans are the plans whose renderings are pinned in testdata/golden.
func goldenPlans(t *testing.T) map[string]*Plan {
	t.Helper()
	mk := func(base, head []string, opts Options) *Plan {
		var observed Observed
		if base != nil {
			observed = Converged(mustLoad(t, base...))
		}
		var desired []*cluster.Cluster
		if head != nil {
			desired = mustLoad(t, head...)
		}
		p, err := Make(desired, observed, opts)
		if err != nil {
			t.Fatal(err)
		}
		p.Head = "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
		if base != nil {
			p.Base = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
		}
		return p
	}
	other := func(name string, instances int) string {
		return strings.ReplaceAll(website(img131, instances), "website", name)
	}
	return map[string]*Plan{
		"create": mk(nil, []string{website(img131, 3)}, Options{}),
		"minor-update": mk([]string{website(img131, 3), other("blog", 1)},
			[]string{website(img132, 3), other("blog", 1)}, Options{}),
		"supervised-restart": mk([]string{website(img131, 2, "  primaryUpdateStrategy: supervised\n  primaryUpdateMethod: restart\n  postgresql:\n    parameters:\n      work_mem: 4MB\n")},
			[]string{website(img132, 2, "  primaryUpdateStrategy: supervised\n  primaryUpdateMethod: restart\n  postgresql:\n    parameters:\n      work_mem: 8MB\n")}, Options{}),
		"prune": mk([]string{website(img131, 3), other("blog", 1), other("wiki", 2)},
			[]string{other("wiki", 2)}, Options{Prune: true}),
		"no-changes": mk([]string{website(img131, 3)}, []string{website(img131, 3)}, Options{}),
		"live-drift": live(t, website(img131, 3), []string{"Service website-rw: spec.ports[0].port"}),
	}
}

// live is a live plan of a running cluster whose spec is unchanged but
// whose objects drifted.
func live(t *testing.T, spec string, drift []string) *Plan {
	t.Helper()
	observed := Converged(mustLoad(t, spec))
	observed.Clusters[0].Drift = drift
	p, err := Make(mustLoad(t, spec), observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Head, p.Mode = "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80", ModeLive
	return p
}

func TestGolden(t *testing.T) {
	for name, p := range goldenPlans(t) {
		for _, format := range []string{"txt", "md", "json"} {
			t.Run(name+"."+format, func(t *testing.T) {
				var buf bytes.Buffer
				var err error
				switch format {
				case "txt":
					err = RenderText(&buf, p, TextOptions{})
				case "md":
					err = RenderMarkdown(&buf, p)
				case "json":
					err = RenderJSON(&buf, p)
				}
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", "golden", name+"."+format)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/plan -update to create it)", err)
				}
				if got := buf.String(); got != string(want) {
					t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
				}
			})
		}
	}
}

func TestJSONContract(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderJSON(&buf, goldenPlans(t)["prune"]); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"format_version", "base", "head", "clusters", "summary"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("top-level key %q missing", key)
		}
	}
	summary := doc["summary"].(map[string]any)
	for _, a := range []string{"create", "update", "delete", "orphan", "no-op"} {
		if _, ok := summary[a]; !ok {
			t.Errorf("summary lacks %q", a)
		}
	}
	for _, c := range doc["clusters"].([]any) {
		cm := c.(map[string]any)
		for _, key := range []string{"namespace", "name", "action", "changes", "steps", "warnings"} {
			if v, ok := cm[key]; !ok || v == nil {
				t.Errorf("cluster key %q missing or null in %v", key, cm)
			}
		}
	}
	// Offline plans have a null base.
	buf.Reset()
	if err := RenderJSON(&buf, goldenPlans(t)["create"]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"base": null`) {
		t.Errorf("offline plan's base is not null:\n%s", buf.String())
	}
}

func TestTextColour(t *testing.T) {
	p := goldenPlans(t)["minor-update"]
	var plain, colour bytes.Buffer
	if err := RenderText(&plain, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&colour, p, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("plain output has ANSI escapes")
	}
	if !strings.Contains(colour.String(), ansiYellow+"~"+ansiReset) {
		t.Error("coloured output lacks the yellow update marker")
	}
}

func TestMarkdownTruncates(t *testing.T) {
	var base, head []*cluster.Cluster
	for i := 0; i < 400; i++ {
		name := "db" + strings.Repeat("x", i%7) + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		b := mustLoad(t, strings.ReplaceAll(website(img131, 5), "name: website", "name: "+name))[0]
		h := mustLoad(t, strings.ReplaceAll(website(img132, 5), "name: website", "name: "+name))[0]
		base, head = append(base, b), append(head, h)
	}
	p, err := Make(head, Converged(base), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := RenderMarkdown(&buf, p); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if len(out) > MarkdownLimit {
		t.Errorf("markdown is %d characters, over the %d limit", len(out), MarkdownLimit)
	}
	if !strings.Contains(out, "**Truncated:**") || !strings.Contains(out, "clusters are not shown") {
		t.Errorf("no truncation note in:\n%s", out[len(out)-500:])
	}
	if strings.Count(out, "<details>") != strings.Count(out, "</details>") {
		t.Error("a collapsible section was cut in half")
	}
}
