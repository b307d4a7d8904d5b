package apply

import (
	"crypto/rand"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// TestNoCreateOverAPlantedSecret: a new cluster whose superuser Secret
// someone created first is refused before any pod could start with that
// password (no StatefulSet), with the way out; an apply interrupted after
// pgsync created the Secrets resumes.
func TestNoCreateOverAPlantedSecret(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn, c := env.ns, env.cs, env.dyn, env.c
	access := true // pgsync generates web-superuser only while the superuser has access
	c.Spec.EnableSuperuserAccess = &access
	e := &Executor{Client: cs, Dynamic: dyn, Random: rand.Reader, InstanceImage: "localhost:5000/pgsync:dev"}
	planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-superuser", Namespace: ns},
		StringData: map[string]string{"username": "postgres", "password": "chosen-by-someone-else"}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, planted, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	objs, err := e.render(Target{Desired: c}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = e.applyAll(ctx, Target{Desired: c}, objs)
	if err == nil || !strings.Contains(err.Error(), "Secret "+ns+"/web-superuser exists and pgsync did not create it") {
		t.Fatalf("create over a planted Secret: %v", err)
	}
	if _, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("StatefulSet created anyway (err %v)", err)
	}
	if err := cs.CoreV1().Secrets(ns).Delete(ctx, "web-superuser", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// As told: deleted; pgsync creates it, and a second apply of the new
	// cluster (as after a crash before the StatefulSet) goes through.
	if err := e.applyAll(ctx, Target{Desired: c}, objs); err != nil {
		t.Fatal(err)
	}
	if err := e.applyAll(ctx, Target{Desired: c}, objs); err != nil {
		t.Fatalf("re-applying a new cluster over the Secrets pgsync created: %v", err)
	}
}
