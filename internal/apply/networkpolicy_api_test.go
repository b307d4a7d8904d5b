package apply

import (
	"crypto/rand"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
)

// TestNetworkPolicyAppliedAndPruned: the cluster's NetworkPolicy is
// applied with its other objects (before the StatefulSet), follows a
// changed pgsync.io/clients on the next apply, and is deleted with the
// cluster on a prune.
func TestNetworkPolicyAppliedAndPruned(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn, c := env.ns, env.cs, env.dyn, env.c
	e := &Executor{Client: cs, Dynamic: dyn, Random: rand.Reader, InstanceImage: "localhost:5000/pgsync:dev"}
	apply := func(c *cluster.Cluster) {
		t.Helper()
		three := int32(3)
		objs, err := e.render(Target{Desired: c}, "", &three)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.applyAll(ctx, Target{Desired: c}, objs); err != nil {
			t.Fatal(err)
		}
	}
	ports := func() string {
		t.Helper()
		np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var rules []string
		for _, r := range np.Spec.Ingress {
			var p []string
			for _, port := range r.Ports {
				p = append(p, port.Port.String())
			}
			rules = append(rules, strings.Join(p, "+"))
		}
		return strings.Join(rules, " ")
	}
	apply(c)
	if got, want := ports(), "5432+8000 5432 8000"; got != want {
		t.Errorf("NetworkPolicy web admits %s, want %s (own pods, the namespace's, pgsync's)", got, want)
	}

	only := *c
	only.Metadata.Annotations = map[string]string{"pgsync.io/clients": "cluster"}
	apply(&only)
	if got, want := ports(), "5432+8000 8000"; got != want {
		t.Errorf("with pgsync.io/clients: cluster, NetworkPolicy web admits %s, want %s", got, want)
	}

	if err := e.deleteCluster(ctx, Target{Desired: &only}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("NetworkPolicy web after the prune: %v, want NotFound", err)
	}
}
