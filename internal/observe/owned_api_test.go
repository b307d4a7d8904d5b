package observe

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestAPIUnchangedIsSound: whenever unchanged lets drift skip the dry
// run, the dry run would indeed have changed nothing — checked object by
// object against the real server after each edit another manager (or an
// older pgsync) can make. Right after an apply, every object but the
// StatefulSet (whose claim template is an atomic list the server
// defaults into) takes the fast path.
func TestAPIUnchangedIsSound(t *testing.T) {
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: web, namespace: ` + ns + `}
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: 3
  storage: {size: 1Gi}
  postgresql:
    parameters: {work_mem: 8MB}
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 512Mi}
  affinity:
    nodeSelector: {disk: ssd}
    tolerations:
    - {key: dedicated, operator: Equal, value: pg, effect: NoExecute, tolerationSeconds: 30}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kube.Render(set.Clusters[0], kube.Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs.List() {
		if _, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// check returns the objects that took the fast path, and fails when
	// one did that the dry run would change.
	check := func(step string) []string {
		t.Helper()
		var fast []string
		for _, obj := range objs.List() {
			body, err := kube.ApplyBody(obj)
			if err != nil {
				t.Fatal(err)
			}
			what := body.GetKind() + "/" + body.GetName()
			gvr, err := kube.ResourceOf(body.GroupVersionKind())
			if err != nil {
				t.Fatal(err)
			}
			live, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, body.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !unchanged(body, live) {
				continue
			}
			fast = append(fast, what)
			if noDryRun[body.GetKind()] {
				continue // never dry-run; diffRendered decides
			}
			after, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{DryRun: true, Force: true})
			if apierrors.IsInvalid(err) {
				t.Errorf("%s: %s skips the dry run, which the server refuses: %v", step, what, err)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := diffObjects(live, after); len(d) != 0 {
				t.Errorf("%s: %s skips the dry run, which would change %v", step, what, d)
			}
		}
		return fast
	}
	var all []string
	for _, obj := range objs.List() {
		if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "StatefulSet" {
			m, _ := obj.(metav1.Object)
			all = append(all, k+"/"+m.GetName())
		}
	}
	if d := cmp.Diff(all, check("just applied")); d != "" {
		t.Errorf("just applied: objects taking the fast path (-want +got):\n%s", d)
	}

	// update applies edit to a live object as another manager's Update.
	update := func(resource, name string, edit func(u *unstructured.Unstructured)) {
		t.Helper()
		gvr := resourceNamed(t, objs.List(), resource)
		u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edit(u)
		if _, err := dyn.Resource(gvr).Namespace(ns).Update(ctx, u, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatalf("update %s %s: %v", resource, name, err)
		}
	}
	set1 := func(v any, path ...string) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			if err := unstructured.SetNestedField(u.Object, v, path...); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps := []struct {
		name             string
		resource, object string
		edit             func(*unstructured.Unstructured)
		// slow: the edit must take the object off the fast path.
		slow bool
	}{
		{"another manager's label", "services", "web-r", func(u *unstructured.Unstructured) {
			l := u.GetLabels()
			l["example.com/team"] = "a"
			u.SetLabels(l)
		}, false},
		{"pgsync's label removed", "services", "web-ro", func(u *unstructured.Unstructured) {
			l := u.GetLabels()
			delete(l, "app.kubernetes.io/managed-by")
			u.SetLabels(l)
		}, true},
		{"a ConfigMap value changed", "configmaps", "web-params", set1(`{"work_mem":"16MB"}`, "data", "parameters.json"), true},
		{"a ConfigMap key added", "configmaps", "web-params", set1("x", "data", "extra"), false},
		{"the Lease's target moved", "leases", "web-primary", func(u *unstructured.Unstructured) {
			a := u.GetAnnotations()
			a["pgsync.io/target-primary"] = "web-1"
			u.SetAnnotations(a)
		}, true},
		{"a Service port", "services", "web-rw", func(u *unstructured.Unstructured) {
			ports, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
			ports[0].(map[string]any)["port"] = int64(5433)
			_ = unstructured.SetNestedSlice(u.Object, ports, "spec", "ports")
		}, true},
		{"an EndpointSlice port (atomic list)", "endpointslices", "web-rw", func(u *unstructured.Unstructured) {
			ports, _, _ := unstructured.NestedSlice(u.Object, "ports")
			ports[0].(map[string]any)["port"] = int64(6432)
			_ = unstructured.SetNestedSlice(u.Object, ports, "ports")
		}, true},
		{"a PodDisruptionBudget's minAvailable", "poddisruptionbudgets", "web-standby", set1(int64(0), "spec", "minAvailable"), true},
		// A field pgsync does not render: not pgsync's, fast and right.
		{"the ServiceAccount's token automount", "serviceaccounts", "web", set1(true, "automountServiceAccountToken"), false},
		{"a node selector key added (atomic map)", "statefulsets", "web", set1("b", "spec", "template", "spec", "nodeSelector", "zone"), true},
	}
	for _, st := range steps {
		update(st.resource, st.object, st.edit)
		fast := check(st.name)
		kind := map[string]string{"services": "Service", "configmaps": "ConfigMap", "leases": "Lease", "endpointslices": "EndpointSlice",
			"poddisruptionbudgets": "PodDisruptionBudget", "serviceaccounts": "ServiceAccount", "statefulsets": "StatefulSet"}[st.resource]
		isFast := false
		for _, f := range fast {
			if f == kind+"/"+st.object {
				isFast = true
			}
		}
		if st.slow && isFast {
			t.Errorf("%s: %s/%s still takes the fast path", st.name, kind, st.object)
		}
	}

	// An older pgsync applied one more label than it renders now: the
	// apply would remove it.
	older := objs.R.DeepCopy()
	older.Labels["pgsync.io/legacy"] = "yes"
	if _, err := kube.Apply(ctx, dyn, older, kube.ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range check("a label only an older render had") {
		if f == "Service/web-r" {
			t.Error("a label only an older render had: Service/web-r takes the fast path")
		}
	}
}

func resourceNamed(t *testing.T, objs []runtime.Object, resource string) (gvr schema.GroupVersionResource) {
	t.Helper()
	for _, obj := range objs {
		g, err := kube.ResourceOf(obj.GetObjectKind().GroupVersionKind())
		if err == nil && g.Resource == resource {
			return g
		}
	}
	t.Fatalf("no rendered kind is %s", resource)
	return gvr
}
