package apply

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestManagedServicesAPI: spec.managed.services against a real API
// server. Added, the disabled default Service is deleted and the
// additional ones are created with pgsync's selector and labels, the
// other Services untouched; changed, a patch Service keeps its identity
// and a replace Service is re-created — carrying a change the server
// refuses in place, which a patch Service's apply is refused; a Service
// left labelled as the cluster's is drift, and the next apply deletes
// it; removed from Git, the additional Services go and the default comes
// back; the cluster's deletion takes every Service.
func TestManagedServicesAPI(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn := env.ns, env.cs, env.dyn
	e := &Executor{Client: cs, Dynamic: dyn, Random: rand.Reader, InstanceImage: "localhost:5000/pgsync:dev"}
	three := int32(3)
	load := func(services string) *cluster.Cluster {
		t.Helper()
		y := fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: web\n  namespace: %s\nspec:\n  imageName: localhost:5000/postgresql:15.18\n  instances: 3\n  storage:\n    size: 1Gi\n%s", ns, services)
		set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatal(err)
		}
		return set.Clusters[0]
	}
	apply := func(c *cluster.Cluster) error {
		t.Helper()
		objs, err := e.render(Target{Desired: c}, "", &three)
		if err != nil {
			t.Fatal(err)
		}
		return e.applyAll(ctx, Target{Desired: c}, objs)
	}
	services := func() map[string]*corev1.Service {
		t.Helper()
		list, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*corev1.Service{}
		for i := range list.Items {
			out[list.Items[i].Name] = &list.Items[i]
		}
		return out
	}
	names := func(m map[string]*corev1.Service) string {
		var out []string
		for n := range m {
			out = append(out, n)
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	serviceDrift := func(c *cluster.Cluster) []string {
		t.Helper()
		drift, err := observe.Drift(ctx, dyn, c, kube.Options{InstanceImage: e.InstanceImage, TargetPrimary: "web-0", Replicas: &three})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range drift {
			if strings.HasPrefix(d, "Service ") {
				out = append(out, d)
			}
		}
		return out
	}
	spec := func(lbClass string, port int, lbStrategy string) string {
		return fmt.Sprintf(`  managed:
    services:
      disabledDefaultServices: [ro]
      additional:
      - selectorType: rw
        updateStrategy: %s
        serviceTemplate:
          metadata: {name: web-lb, labels: {team: shop}, annotations: {example.com/lb: internal}}
          spec: {type: LoadBalancer, loadBalancerClass: %s, loadBalancerSourceRanges: [203.0.113.0/24], externalTrafficPolicy: Local}
      - selectorType: r
        serviceTemplate:
          metadata: {name: web-any}
          spec: {ports: [{port: %d}]}
`, lbStrategy, lbClass, port)
	}

	plain := load("")
	if err := apply(plain); err != nil {
		t.Fatal(err)
	}
	before := services()
	if got := names(before); got != "web-hl web-r web-ro web-rw" {
		t.Fatalf("Services without managed.services: %s", got)
	}
	if d := serviceDrift(plain); len(d) != 0 {
		t.Errorf("drift of a cluster without managed.services: %v", d)
	}

	// Added.
	with := load(spec("example.com/a", 6432, "replace"))
	if err := apply(with); err != nil {
		t.Fatal(err)
	}
	now := services()
	if got := names(now); got != "web-any web-hl web-lb web-r web-rw" {
		t.Fatalf("Services with managed.services: %s, want web-ro gone and web-any, web-lb", got)
	}
	for _, n := range []string{"web-rw", "web-r", "web-hl"} {
		if now[n].UID != before[n].UID {
			t.Errorf("%s was re-created", n)
		}
	}
	lb, anyS := now["web-lb"], now["web-any"]
	if lb.Spec.Type != corev1.ServiceTypeLoadBalancer || *lb.Spec.LoadBalancerClass != "example.com/a" ||
		lb.Spec.Selector[pc.LabelRole] != pc.RolePrimary || lb.Labels["team"] != "shop" || lb.Labels[pc.LabelCluster] != "web" ||
		lb.Annotations["example.com/lb"] != "internal" || lb.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal ||
		lb.Spec.Ports[0].NodePort == 0 || lb.Spec.Ports[0].TargetPort.IntValue() != 5432 {
		t.Errorf("web-lb: %+v %+v", lb.ObjectMeta.Labels, lb.Spec)
	}
	if anyS.Spec.Ports[0].Port != 6432 || anyS.Spec.Ports[0].TargetPort.IntValue() != 5432 || len(anyS.Spec.Selector) != 1 {
		t.Errorf("web-any: %+v", anyS.Spec)
	}
	if d := serviceDrift(with); len(d) != 0 {
		t.Errorf("drift right after the apply: %v", d)
	}

	// Changed: web-any (patch) keeps its identity, web-lb (replace) is
	// re-created with the class the server refuses to change in place.
	changed := load(spec("example.com/b", 6433, "replace"))
	if err := apply(changed); err != nil {
		t.Fatal(err)
	}
	now = services()
	if now["web-any"].UID != anyS.UID || now["web-any"].Spec.Ports[0].Port != 6433 {
		t.Errorf("web-any (patch): uid %s→%s port %d, want the same object on 6433", anyS.UID, now["web-any"].UID, now["web-any"].Spec.Ports[0].Port)
	}
	if now["web-lb"].UID == lb.UID || *now["web-lb"].Spec.LoadBalancerClass != "example.com/b" {
		t.Errorf("web-lb (replace): uid %s→%s class %s, want a new object of class example.com/b", lb.UID, now["web-lb"].UID, *now["web-lb"].Spec.LoadBalancerClass)
	}
	unchanged := now["web-lb"].UID
	if err := apply(changed); err != nil {
		t.Fatal(err)
	}
	if services()["web-lb"].UID != unchanged {
		t.Error("web-lb (replace) was re-created by an apply that changed nothing")
	}
	err := apply(load(spec("example.com/c", 6433, "patch")))
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "loadBalancerClass") {
		t.Errorf("changing the class of a patch Service: %v, want the server's refusal", err)
	}
	if err := apply(changed); err != nil {
		t.Fatal(err)
	}

	// Left behind: a Service labelled as the cluster's that the spec does
	// not render.
	left := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-old", Namespace: ns,
		Labels: map[string]string{pc.LabelManagedBy: pc.ManagedBy, pc.LabelCluster: "web"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, left, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := left.DeepCopy()
	other.Name, other.Labels = "someone-else", map[string]string{pc.LabelCluster: "web"}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := serviceDrift(changed); !slices.Equal(d, []string{"Service web-old: not in the spec"}) {
		t.Errorf("drift with a Service left behind: %v", d)
	}
	if err := apply(changed); err != nil {
		t.Fatal(err)
	}
	if got := names(services()); got != "someone-else web-any web-hl web-lb web-r web-rw" {
		t.Errorf("after pruning: %s, want web-old gone (someone-else is not pgsync's)", got)
	}

	// Removed from Git.
	if err := apply(plain); err != nil {
		t.Fatal(err)
	}
	if got := names(services()); got != "someone-else web-hl web-r web-ro web-rw" {
		t.Errorf("after removing managed.services: %s", got)
	}

	// Deleted with the cluster.
	if err := apply(changed); err != nil {
		t.Fatal(err)
	}
	if err := e.deleteCluster(ctx, Target{Desired: changed}); err != nil {
		t.Fatal(err)
	}
	if got := names(services()); got != "someone-else" {
		t.Errorf("after deleting the cluster: %s, want only someone-else", got)
	}
}
