package apply

import (
	"crypto/rand"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestNoCreateOverAnUnmanagedStatefulSet: an orphaned cluster put back in
// Git is not observed (no managed-by label), so it is planned as a new
// cluster; creating it over the running StatefulSet would apply replicas
// 0 and scale its pods away. Apply refuses, saying how to re-adopt it.
func TestNoCreateOverAnUnmanagedStatefulSet(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn, c := env.ns, env.cs, env.dyn, env.c
	e := &Executor{Client: cs, Dynamic: dyn, Random: rand.Reader, InstanceImage: "localhost:5000/pgsync:dev"}
	three := int32(3)
	objs, err := e.render(Target{Desired: c}, "", &three)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.applyAll(ctx, Target{Desired: c}, objs); err != nil {
		t.Fatal(err)
	}
	orphan := []byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":null}}}`)
	if _, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, orphan, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	objs, err = e.render(Target{Desired: c}, "", nil) // a new cluster: replicas 0
	if err != nil {
		t.Fatal(err)
	}
	err = e.applyAll(ctx, Target{Desired: c}, objs)
	if err == nil || !strings.Contains(err.Error(), "pgsync does not manage it") || !strings.Contains(err.Error(), "kubectl -n "+ns+" label statefulset web") {
		t.Fatalf("create over an orphaned StatefulSet: %v; want a refusal that says how to re-adopt", err)
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 3 {
		t.Errorf("the orphaned StatefulSet's replicas went to %d", *sts.Spec.Replicas)
	}
}
