package plan

import (
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
