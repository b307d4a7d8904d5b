package plan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/window"
)

// The plan says when a cluster's restarts may start: its own window, or
// the default one; nothing for a plan without restarts or windows.
func TestWithWindows(t *testing.T) {
	annotated := func(image, win string) string {
		doc := website(image, 3)
		return strings.Replace(doc, "  namespace: website\n", "  namespace: website\n  annotations:\n    pgsync.io/maintenance-window: \""+win+"\"\n", 1)
	}
	thursday := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	saturday := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	nightly, err := window.Parse("Mon-Sun 22:00-23:00 UTC")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		base, head string
		def        window.Schedule
		now        time.Time
		want       string // "" = no window
		wantJSON   string
	}{
		{"closed: waits for Saturday", website(img131, 3), annotated(img132, "Sat 02:00-04:00 UTC"), window.Schedule{}, thursday,
			"Window: maintenance window Sat 02:00-04:00 UTC: closed; restarts and switchovers wait until it opens Sat 2026-12-05 02:00 UTC (in 1d 16h 0m)",
			`"maintenance_window": {"schedule": "Sat 02:00-04:00 UTC", "open": false, "next_start": "2026-12-05T02:00:00Z", "next_end": "2026-12-05T04:00:00Z"}`},
		{"open now", website(img131, 3), annotated(img132, "Sat 02:00-04:00 UTC"), window.Schedule{}, saturday,
			"Window: maintenance window Sat 02:00-04:00 UTC: open now, until Sat 2026-12-05 04:00 UTC",
			`"open": true`},
		{"the default window for a file naming none", website(img131, 3), website(img132, 3), nightly, thursday,
			"Window: maintenance window Mon-Sun 22:00-23:00 UTC: closed; restarts and switchovers wait until it opens Thu 2026-12-03 22:00 UTC (in 12h 0m)",
			`"next_start": "2026-12-03T22:00:00Z"`},
		{"no restarts: no window", website(img131, 3), website(img131, 3, "  postgresql:\n    parameters:\n      work_mem: \"8MB\"\n"), nightly, thursday, "", ""},
		{"no window anywhere", website(img131, 3), website(img132, 3), window.Schedule{}, thursday, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired := mustLoad(t, tt.head)
			p, err := Make(desired, Converged(mustLoad(t, tt.base)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			WithWindows(p, desired, tt.def, tt.now)
			var text, md, js bytes.Buffer
			if err := RenderText(&text, p, TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := RenderMarkdown(&md, p); err != nil {
				t.Fatal(err)
			}
			if err := RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if p.Clusters[0].Window != nil || strings.Contains(text.String(), "Window:") || strings.Contains(js.String(), "maintenance_window") {
					t.Errorf("a window where none applies:\n%s\n%s", text.String(), js.String())
				}
				return
			}
			if !strings.Contains(text.String(), tt.want) {
				t.Errorf("text plan lacks %q:\n%s", tt.want, text.String())
			}
			if !strings.Contains(md.String(), strings.TrimPrefix(tt.want, "Window: ")) {
				t.Errorf("Markdown plan lacks the window:\n%s", md.String())
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, js.Bytes()); err != nil {
				t.Fatal(err)
			}
			wantCompact := strings.NewReplacer(`": `, `":`, `, "`, `,"`).Replace(tt.wantJSON)
			if !strings.Contains(compact.String(), wantCompact) {
				t.Errorf("JSON plan lacks %s:\n%s", wantCompact, compact.String())
			}
		})
	}
}

func TestRoughly(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:              "under a minute",
		45 * time.Minute:              "45m",
		2*time.Hour + 5*time.Minute:   "2h 5m",
		50*time.Hour + 30*time.Second: "2d 2h 1m",
		72 * time.Hour:                "3d 0h 0m",
	} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%s) = %q, want %q", d, got, want)
		}
	}
}
