package observe

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestSyncListed: the switchover targets the planner may choose with
// synchronous replication are the cluster's instances in the newest set
// the primary published on its Lease.
func TestSyncListed(t *testing.T) {
	load := func(sync string) *cluster.Cluster {
		y := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: web, namespace: x}\nspec:\n  imageName: localhost:5000/postgresql:15.18\n  instances: 3\n  storage: {size: 1Gi}\n" + sync
		set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatal(err)
		}
		return set.Clusters[0]
	}
	on := load("  postgresql:\n    synchronous: {method: any, number: 1, maxStandbyNamesFromCluster: 1}\n")
	off := load("")
	sets := func(s ...pc.SyncSet) map[string]string {
		return map[string]string{pc.AnnSyncSets: pc.FormatSyncSets(s)}
	}
	for _, tc := range []struct {
		name string
		spec *cluster.Cluster
		ann  map[string]string
		want []string
	}{
		{"newest set", on, sets(pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"web-1"}},
			pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"web-2", "outside"}}), []string{"web-2"}},
		{"asynchronous spec", off, sets(pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"web-1"}}), nil},
		{"nothing waits", on, sets(pc.SyncSet{Number: 0}), nil},
		{"only names of no instance", on, sets(pc.SyncSet{Method: "any", Number: 1, Standbys: []string{"outside"}}), nil},
		{"no annotation", on, nil, nil},
		{"unreadable", on, map[string]string{pc.AnnSyncSets: "{"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{Observed: plan.ObservedCluster{Spec: tc.spec}, Lease: &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: tc.ann}}}
			for i := range 3 {
				c.Instances = append(c.Instances, Instance{Name: []string{"web-0", "web-1", "web-2"}[i], Ordinal: i})
			}
			var got []string
			for n := range syncListed(c) {
				got = append(got, n)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("listed (-want +got):\n%s", d)
			}
		})
	}
}
