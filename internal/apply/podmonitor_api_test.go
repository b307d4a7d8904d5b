package apply

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestPodMonitorAPI: enablePodMonitor against a real API server. Without
// the PodMonitor CRD the cluster is refused before anything is created.
// With it (test/kubeenv/testdata/podmonitor-crd.yaml): enabled, the
// objects step creates PodMonitor NAME, owned by pgsync, the server's
// default action no drift; a changed relabeling is applied; a hand edit
// is drift the next step undoes; one of that name pgsync does not own is
// refused, never taken over; disabled, the step deletes it; the
// cluster's deletion takes it.
func TestPodMonitorAPI(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn := env.ns, env.cs, env.dyn
	e := &Executor{Client: cs, Dynamic: dyn, Random: rand.Reader, InstanceImage: "localhost:5000/pgsync:dev"}
	r := &Run{Exec: e}
	key := cluster.Key{Namespace: ns, Name: "web"}
	pms := dyn.Resource(kube.PodMonitorResource).Namespace(ns)
	load := func(monitoring string) *cluster.Cluster {
		t.Helper()
		y := fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: web\n  namespace: %s\nspec:\n  imageName: localhost:5000/postgresql:15.18\n  instances: 3\n  storage:\n    size: 1Gi\n%s", ns, monitoring)
		set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatal(err)
		}
		return set.Clusters[0]
	}
	live := func() *observe.Cluster {
		t.Helper()
		l, err := r.observe(ctx, key)
		if err != nil || l == nil {
			t.Fatalf("observe: %v, %v", l, err)
		}
		return l
	}
	step := func(desired *cluster.Cluster, want string) StepResult {
		t.Helper()
		res := r.Once(ctx, key, desired, "", live(), 1, nil)
		if res.Outcome != Progressing || res.Step == nil || res.Step.Action != plan.StepUpdateObjects {
			t.Fatalf("Once: %s %v %v, want an update-objects step", res.Outcome, res.Step, res.Err)
		}
		if !strings.Contains(res.Step.Reason, want) {
			t.Errorf("step reason %q, want it to say %q", res.Step.Reason, want)
		}
		return res
	}
	podMonitorDrift := func(l *observe.Cluster) []string {
		var out []string
		for _, d := range l.Observed.Drift {
			if strings.HasPrefix(d, "PodMonitor ") {
				out = append(out, d)
			}
		}
		return out
	}
	relabel := func(target string) string {
		return "  monitoring:\n    enablePodMonitor: true\n    podMonitorRelabelings:\n    - {sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: " + target + "}\n" +
			"    podMonitorMetricRelabelings:\n    - {sourceLabels: [__name__], regex: 'go_.*', action: drop}\n"
	}
	with, plain := load(relabel("node")), load("  monitoring: {}\n")

	// No CRD: refused at the field, before anything exists.
	res := r.Once(ctx, key, with, "", nil, 1, nil)
	if res.Outcome != Failed || res.Err == nil || !strings.Contains(res.Err.Error(),
		"web.yaml:12:23: spec.monitoring.enablePodMonitor: the API server has no PodMonitor kind (monitoring.coreos.com/v1): install the Prometheus Operator's CRDs or set enablePodMonitor: false") {
		t.Fatalf("without the CRD: %s %v", res.Outcome, res.Err)
	}
	if _, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused cluster's StatefulSet: %v, want NotFound", err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "web-params", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused cluster's ConfigMap: %v, want NotFound", err)
	}

	kubeenv.InstallCRD(t, kubeenv.APIServer(t), "../../test/kubeenv/testdata/podmonitor-crd.yaml")
	three := int32(3)
	objs, err := e.render(Target{Desired: plain}, "", &three)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.applyAll(ctx, Target{Desired: plain}, objs); err != nil {
		t.Fatal(err)
	}

	// Enabled.
	res = step(with, "create PodMonitor web")
	pm, err := pms.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := pm.GetLabels(); l[pc.LabelManagedBy] != pc.ManagedBy || l[pc.LabelCluster] != "web" {
		t.Errorf("PodMonitor labels %v", l)
	}
	sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if len(sel) != 1 || sel[pc.LabelCluster] != "web" || len(eps) != 1 {
		t.Fatalf("PodMonitor spec %v", pm.Object["spec"])
	}
	ep := eps[0].(map[string]any)
	rl := ep["relabelings"].([]any)[0].(map[string]any)
	mrl := ep["metricRelabelings"].([]any)[0].(map[string]any)
	if ep["port"] != "metrics" || rl["targetLabel"] != "node" || rl["action"] != "replace" || mrl["action"] != "drop" || mrl["regex"] != "go_.*" {
		t.Errorf("endpoint %v", ep)
	}
	if d := podMonitorDrift(res.Live); d != nil {
		t.Errorf("drift right after the apply (the server's default action is not drift): %v", d)
	}

	// Changed.
	changed := load(relabel("instance_node"))
	step(changed, "apply the new spec")
	pm, err = pms.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eps, _, _ = unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if got := eps[0].(map[string]any)["relabelings"].([]any)[0].(map[string]any)["targetLabel"]; got != "instance_node" {
		t.Errorf("targetLabel after the change: %v", got)
	}

	// Edited by hand: drift, undone by the next step.
	if _, err := pms.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"selector":{"matchLabels":{"app":"other"}}}}`), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	if d := podMonitorDrift(live()); len(d) == 0 {
		t.Error("a hand-edited selector is no drift")
	}
	res = step(changed, "undo drift in objects pgsync owns: PodMonitor web")
	if d := podMonitorDrift(res.Live); d != nil {
		t.Errorf("drift after undoing it: %v", d)
	}

	// Disabled: deleted.
	res = step(plain, "delete PodMonitor web (enablePodMonitor is off)")
	if _, err := pms.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("PodMonitor after enablePodMonitor: false: %v, want NotFound", err)
	}
	if d := podMonitorDrift(res.Live); d != nil {
		t.Errorf("drift without a PodMonitor: %v", d)
	}

	// Someone else's PodMonitor of that name: refused, kept.
	theirs := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "theirs"}}}}}
	if _, err := pms.Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	res = r.Once(ctx, key, with, "", live(), 1, nil)
	if res.Outcome != Failed || !strings.Contains(fmt.Sprint(res.Err), "one of that name exists and pgsync does not own it") {
		t.Errorf("over someone else's PodMonitor: %s %v", res.Outcome, res.Err)
	}
	pm, err = pms.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels"); sel["app"] != "theirs" {
		t.Errorf("someone else's PodMonitor was changed: %v", pm.Object["spec"])
	}
	if l := live(); l.Observed.Spec.Spec.PodMonitorOn() || podMonitorDrift(l) != nil {
		t.Errorf("the refused step changed the cluster: applied spec with enablePodMonitor %v, drift %v", l.Observed.Spec.Spec.PodMonitorOn(), podMonitorDrift(l))
	}
	if err := pms.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Deleted with the cluster.
	step(with, "create PodMonitor web")
	pr := &Run{Exec: e, Options: plan.Options{Prune: true}}
	if res := pr.Once(ctx, key, nil, "", live(), 1, nil); res.Outcome != Converged || res.Step == nil || res.Step.Action != plan.StepDeleteCluster {
		t.Fatalf("removed from Git: %s %v %v", res.Outcome, res.Step, res.Err)
	}
	if _, err := pms.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("PodMonitor after the cluster's deletion: %v, want NotFound", err)
	}
}
