package daemon

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/fleet"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	"github.com/pgsync/pgsync/internal/revision"
	"github.com/pgsync/pgsync/internal/window"
)

func load(t *testing.T, y string) *cluster.Cluster {
	t.Helper()
	set, err := cluster.Load([]cluster.File{{Path: "c.yaml", Data: []byte(y)}})
	if err != nil {
		t.Fatal(err)
	}
	return set.Clusters[0]
}

const spec = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: web
  namespace: shop
  annotations:
    pgsync.io/wave: "2"
    pgsync.io/maintenance-window: "Sat 02:00-04:00 UTC"
spec:
  imageName: localhost:5000/postgresql:%s
  instances: 3
  storage: {size: 1Gi}
`

// TestFleetCluster: what the daemon tells the fleet order about a cluster
// in the middle of a rolling update (one standby already restarted).
func TestFleetCluster(t *testing.T) {
	old := load(t, fmtSpec("15.18"))
	want := load(t, fmtSpec("15.20"))
	o := plan.Converged([]*cluster.Cluster{old}).Clusters[0]
	o.Spec = want // objects already applied
	o.Instances[2].Image, o.Instances[2].Revision = want.Spec.ImageName, revision.Restart(want)
	live := &observe.Cluster{Observed: o}
	live.StatefulSet = statefulSet()
	p, err := plan.Make([]*cluster.Cluster{want}, plan.Observed{Clusters: []plan.ObservedCluster{o}}, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fc := fleetCluster(want.Key(), want, live, &p.Clusters[0], window.Schedule{})
	if fc.Next != fleet.Disruptive || !fc.Restarts || !fc.Rolling || fc.Wave != 2 || fc.Window.IsZero() || fc.Suspended || fc.Halted {
		t.Errorf("mid-rollout cluster: %+v; want next disruptive, restarts, rolling, wave 2, its window", fc)
	}
	// Suspended live (kubectl annotate): no step at all.
	live.StatefulSet.Annotations["pgsync.io/suspend"] = "true"
	if fc := fleetCluster(want.Key(), want, live, &p.Clusters[0], window.Schedule{}); !fc.Suspended {
		t.Error("pgsync.io/suspend set live on the StatefulSet is not seen")
	}
}

func fmtSpec(tag string) string { return fmt.Sprintf(spec, tag) }

func statefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: map[string]string{}}}
}
