package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// checkLive runs the real CLI against the freshly created 3-instance
// cluster: the live plan of the same Cluster file is a no-op, status shows
// a primary and two streaming standbys, and a commit bumping 15.18 → 15.20
// plans exactly the rolling update.
func checkLive(ctx context.Context, t *testing.T, env *kubeenv.Env, ns string) {
	t.Helper()
	bin := insttest.Binary(t)
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := osexec.CommandContext(ctx, "git", append([]string{"-C", repo, "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(image string) {
		t.Helper()
		dir := filepath.Join(repo, "clusters", ns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pg.yaml"), []byte(instClusterYAML(ns, 3, image)), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "-A")
		git("commit", "-q", "-m", "pg at "+image)
	}
	git("init", "-q", "-b", "main")
	write(image1518)

	pgsync := func(args ...string) (string, int) {
		t.Helper()
		cmd := osexec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *osexec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("pgsync %v: %v", args, err)
		}
		if stderr.Len() > 0 {
			t.Logf("pgsync %s: stderr:\n%s", args[0], stderr.String())
		}
		return stdout.String(), code
	}
	live := []string{"--repo", repo, "--path", "clusters", "--kubeconfig", env.Kubeconfig, "--namespace", ns}

	type planDoc struct {
		Mode     string `json:"mode"`
		Clusters []struct {
			Name   string `json:"name"`
			Action string `json:"action"`
			Steps  []struct {
				Action   string `json:"action"`
				Instance string `json:"instance"`
				From, To string
				Reason   string `json:"reason"`
			} `json:"steps"`
		} `json:"clusters"`
	}
	readPlan := func(wantCode int) planDoc {
		t.Helper()
		out, code := pgsync(append([]string{"plan", "--format", "json", "--detailed-exitcode"}, live...)...)
		var doc planDoc
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("plan JSON: %v\n%s", err, out)
		}
		if code != wantCode || doc.Mode != "live" || len(doc.Clusters) != 1 {
			t.Fatalf("live plan: exit %d (want %d), mode %q, %d clusters:\n%s", code, wantCode, doc.Mode, len(doc.Clusters), out)
		}
		return doc
	}

	// Right after creation: nothing to do.
	if doc := readPlan(0); doc.Clusters[0].Action != "no-op" {
		t.Errorf("live plan right after creation: %s, want no-op: %+v", doc.Clusters[0].Action, doc.Clusters[0].Steps)
	}
	text, _ := pgsync(append([]string{"plan"}, live...)...)
	if !strings.Contains(text, "against the live clusters") {
		t.Errorf("text plan does not say it is live:\n%s", text)
	}

	// Status: a primary and two streaming standbys, converged.
	out, code := pgsync("status", ns+"/"+instClusterName, "-o", "json", "--kubeconfig", env.Kubeconfig)
	var st struct {
		Clusters []struct {
			Primary   string `json:"primary"`
			Converged bool   `json:"converged"`
			Instances []struct {
				Name     string `json:"name"`
				Role     string `json:"role"`
				Ready    bool   `json:"ready"`
				Image    string `json:"image"`
				Timeline uint32 `json:"timeline"`
			} `json:"instances"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || len(st.Clusters) != 1 {
		t.Fatalf("status: exit %d, %v:\n%s", code, err, out)
	}
	c := st.Clusters[0]
	roles := map[string]string{}
	for _, in := range c.Instances {
		roles[in.Name] = in.Role
		if !in.Ready || in.Image != image1518 || in.Timeline == 0 {
			t.Errorf("status of %s: ready %v, image %s, timeline %d", in.Name, in.Ready, in.Image, in.Timeline)
		}
	}
	if want := map[string]string{"pg-0": "primary", "pg-1": "standby", "pg-2": "standby"}; !equalMaps(roles, want) || c.Primary != "pg-0" || !c.Converged {
		t.Errorf("status: roles %v (want %v), primary %s, converged %v", roles, want, c.Primary, c.Converged)
	}
	table, _ := pgsync("status", "--kubeconfig", env.Kubeconfig, "-n", ns)
	t.Logf("pgsync status:\n%s", table)

	// A commit bumping the image: exactly the rolling update.
	write(image1520)
	doc := readPlan(2)
	var got []string
	for _, s := range doc.Clusters[0].Steps {
		got = append(got, s.Action+" "+s.Instance)
	}
	// The standbys restart most lagging first and the least lagging takes
	// over (ties: the lower ordinal); which that is depends on the lag the
	// observer saw a moment ago, so either order is the rolling update,
	// with the switchover to the standby restarted last.
	want := []string{"update-objects ", "restart-instance pg-2", "restart-instance pg-1", "switchover pg-0", "restart-instance pg-0"}
	other := []string{"update-objects ", "restart-instance pg-1", "restart-instance pg-2", "switchover pg-0", "restart-instance pg-0"}
	if g := strings.Join(got, "|"); g != strings.Join(want, "|") && g != strings.Join(other, "|") {
		t.Errorf("live plan of 15.18 → 15.20:\n got %q\nwant %q (or pg-1 first)", got, want)
	}
	if s := doc.Clusters[0].Steps; len(s) == 5 && (s[3].From != "pg-0" || s[3].To != s[2].Instance) {
		t.Errorf("switchover %s → %s, want pg-0 → %s (the standby restarted last)", s[3].From, s[3].To, s[2].Instance)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
