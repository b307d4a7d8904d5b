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

// TestSwitchoverTargetsASynchronousStandby: with synchronous replication
// a rolling update switches over to a standby the primary lists in
// synchronous_standby_names, even a more lagging one; to the least
// lagging otherwise, and when none is listed.
func TestSwitchoverTargetsASynchronousStandby(t *testing.T) {
	sync := "  postgresql:\n    synchronous:\n      method: any\n      number: 1\n      maxStandbyNamesFromCluster: 1\n"
	for _, tc := range []struct {
		name       string
		restricted bool
		listed     []int
		want       string
	}{
		{"listed standby, though it lags", true, []int{3}, "website-0→website-3"},
		{"not restricted: least lag", false, []int{3}, "website-0→website-1"},
		{"none listed: least lag", true, nil, "website-0→website-1"},
		{"two listed: the least lagging of them", true, []int{2, 3}, "website-0→website-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, head := mustLoad(t, website(img131, 4, sync))[0], mustLoad(t, website(img132, 4, sync))[0]
			observed := Converged([]*cluster.Cluster{base})
			oc := &observed.Clusters[0]
			oc.SyncRestricted = tc.restricted
			for i, lag := range []int64{0, 10, 100, 500} {
				oc.Instances[i].LagBytes = lag
			}
			for _, o := range tc.listed {
				oc.Instances[o].SyncListed = true
			}
			p, err := Make([]*cluster.Cluster{head}, observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for _, st := range steps(p.Clusters[0]) {
				if strings.HasPrefix(st, "switchover ") {
					got = st
				}
			}
			if !strings.HasSuffix(got, tc.want) {
				t.Errorf("switchover %q, want %s\n%v", got, tc.want, steps(p.Clusters[0]))
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
