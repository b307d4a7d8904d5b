package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// TestSwitchoverSaysReplicationMode: a switchover of a cluster with
// synchronous replication says its mode; an asynchronous one's text is
// unchanged.
func TestSwitchoverSaysReplicationMode(t *testing.T) {
	for _, tc := range []struct{ name, extra, want string }{
		{"async", "", ""},
		{"synchronous", "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n", "synchronous replication (ANY 1, required)"},
		{"legacy", "  minSyncReplicas: 1\n  maxSyncReplicas: 1\n", "synchronous replication (legacy, ANY 1..1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, head := mustLoad(t, website(img131, 3, tc.extra))[0], mustLoad(t, website(img131, 2, tc.extra))[0]
			observed := Converged([]*cluster.Cluster{base})
			observed.Clusters[0].Primary = 2
			p, err := Make([]*cluster.Cluster{head}, observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var reason string
			for _, st := range p.Clusters[0].Steps {
				if st.Action == StepSwitchover {
					reason = st.Reason
				}
			}
			if reason == "" {
				t.Fatal("no switchover planned")
			}
			if got := strings.Contains(reason, "synchronous replication"); got != (tc.want != "") || !strings.Contains(reason, tc.want) {
				t.Errorf("reason %q, want it to say %q", reason, tc.want)
			}
		})
	}
}

// TestSynchronousFilesPlanOffline: the CloudNativePG-style synchronous
// replication files plan offline as written, each a create whose changes
// list its synchronous settings.
func TestSynchronousFilesPlanOffline(t *testing.T) {
	paths, _ := filepath.Glob("../cluster/testdata/cnpg/sync-*.yaml")
	if len(paths) < 4 {
		t.Fatalf("found %d files", len(paths))
	}
	for _, f := range paths {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Make(mustLoad(t, string(data)), Observed{}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cp := p.Clusters[0]
		if got := strings.Join(steps(cp), ", "); !strings.Contains(got, "create-instance") {
			t.Errorf("%s: steps %s", f, got)
		}
		var listed bool
		for _, ch := range cp.Changes {
			listed = listed || strings.Contains(ch.Path, "ync")
		}
		if !listed {
			t.Errorf("%s: the plan lists no synchronous setting", f)
		}
	}
}
