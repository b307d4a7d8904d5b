package apply

import (
	"crypto/rand"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/kube"
)

// TestApplyRetakesHandEditedPort: a Service port edited by hand (another
// field manager, as kubectl edit) makes a forced server-side apply
// invalid — two ports named "postgres" — so update-objects would fail
// forever; apply puts the ports back and owns them again.
func TestApplyRetakesHandEditedPort(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn, c := env.ns, env.cs, env.dyn, env.c
	e := &Executor{Client: cs, Dynamic: dyn, Random: rand.Reader, InstanceImage: "localhost:5000/pgsync:dev"}
	tgt := Target{Desired: c}
	objs, err := e.render(tgt, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.applyAll(ctx, tgt, objs); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "web-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port = 5433
	if _, err := cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if err := e.applyAll(ctx, tgt, objs); err != nil {
		t.Fatalf("apply after a hand-edited port: %v", err)
	}
	svc, err = cs.CoreV1().Services(ns).Get(ctx, "web-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5432 {
		t.Errorf("web-rw ports after apply: %+v, want only 5432", svc.Spec.Ports)
	}
	// And pgsync owns them again: a plain apply is accepted.
	if _, err := kube.Apply(ctx, dyn, objs.RW, kube.ApplyOptions{}); err != nil {
		t.Errorf("non-forced apply after the retake: %v", err)
	}
}
