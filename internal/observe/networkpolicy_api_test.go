package observe_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestAPINetworkPolicyDrift: a cluster applied before pgsync rendered a
// NetworkPolicy (or whose policy was deleted) drifts by the missing
// policy, which the plan's update-objects step re-applies; a rule added
// by hand to pgsync's policy is drift too.
func TestAPINetworkPolicyDrift(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.5.1")
	web := loadCluster(t, ns, "web", 1)
	e.deploy(ctx, t, srv, web, kube.Options{TargetPrimary: "web-0", Commit: commit}, "web-0", []instance{
		{pod: running("127.0.5.1"), status: primary(web, 0, "0/3000000")},
	})
	drift := func(step string, want []string) {
		t.Helper()
		f := observeNS(ctx, t, e, srv, ns)
		if err := f.FindDrift(ctx, e.dyn, nil); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, find(t, f, ns, "web").Observed.Drift); d != "" {
			t.Errorf("%s: drift (-want +got):\n%s", step, d)
		}
	}
	drift("just applied", nil)

	np, err := e.cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
	if _, err := e.cs.NetworkingV1().NetworkPolicies(ns).Update(ctx, np, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	drift("a rule admitting everything added by hand", []string{"NetworkPolicy web: spec.ingress"})

	if err := e.cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	drift("deleted", []string{"NetworkPolicy web: missing"})
}
