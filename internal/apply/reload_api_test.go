package apply

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// loadedConfigs stands in for the managers' /status: each instance's
// role and the config revision it has loaded.
type loadedConfigs struct {
	mu     sync.Mutex
	config map[string]string
}

func (l *loadedConfigs) Status(_ context.Context, p *corev1.Pod) (pc.Status, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	role := pc.StatusStandby
	if strings.HasSuffix(p.Name, "-0") {
		role = pc.StatusPrimary
	}
	return pc.Status{Instance: p.Name, Role: role, ConfigRevision: l.config[p.Name]}, nil
}

func (l *loadedConfigs) load(name, rev string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.config[name] = rev
}

// TestReloadAnnotatesPodsBehind: reload-config annotates the pod of each
// ready instance still on another config (the kubelet answers a pod
// update by refreshing its ConfigMap volume), again 2 s and then 4 s
// later on the executor's clock while it stays behind and not sooner,
// never a pod that is not ready; it completes once every ready instance
// has loaded the config. Only the API server runs: no kubelet, so the
// loading is the test's.
func TestReloadAnnotatesPodsBehind(t *testing.T) {
	ctx, env := newAPIEnv(t)
	ns, cs, dyn, c := env.ns, env.cs, env.dyn, env.c
	want := revision.Config(c)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	status := &loadedConfigs{config: map[string]string{}}
	e := &Executor{Client: cs, Dynamic: dyn, Status: status, InstanceImage: "localhost:5000/pgsync:dev",
		Random: rand.Reader, Poll: 5 * time.Millisecond, Now: clock}

	// The objects as update-objects leaves them, and the pods the
	// StatefulSet controller would have made: web-0 and web-1 ready on an
	// older config, web-2 not ready.
	replicas := int32(3)
	objs, err := e.render(Target{Desired: c}, "", &replicas)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.applyAll(ctx, Target{Desired: c}, objs); err != nil {
		t.Fatal(err)
	}
	pods := cs.CoreV1().Pods(ns)
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		status.load(name, "v1-older")
		tmpl := objs.StatefulSet.Spec.Template.DeepCopy()
		p := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
		p.Name = name
		p.Labels[pc.LabelPodName] = name
		for _, vct := range objs.StatefulSet.Spec.VolumeClaimTemplates {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: vct.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vct.Name + "-" + name}}})
		}
		p, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready := corev1.ConditionTrue
		if i == 2 {
			ready = corev1.ConditionFalse
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	live, err := e.observeOne(ctx, Target{Desired: c})
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- e.reload(ctx, Target{Desired: c, Live: live}) }()
	requested := func() map[string]string {
		out := map[string]string{}
		for i := range 3 {
			name := fmt.Sprintf("web-%d", i)
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out[name] = p.Annotations[pc.AnnConfigRequested]
		}
		return out
	}
	// changed waits until both ready pods carry a request other than
	// before's, for want; web-2 never gets one.
	changed := func(what string, before map[string]string) map[string]string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := requested()
			if got["web-2"] != "" {
				t.Fatalf("%s: web-2, not ready, was annotated: %q", what, got["web-2"])
			}
			ok := true
			for _, name := range []string{"web-0", "web-1"} {
				ok = ok && got[name] != before[name] && strings.HasPrefix(got[name], want+" ")
			}
			if ok {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: requests %q (before %q), want new ones for %s on web-0 and web-1", what, got, before, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// unchanged: many polls later, still before's.
	unchanged := func(what string, before map[string]string) {
		t.Helper()
		time.Sleep(200 * time.Millisecond)
		if got := requested(); got["web-0"] != before["web-0"] || got["web-1"] != before["web-1"] || got["web-2"] != "" {
			t.Fatalf("%s: requests %q, want still %q", what, got, before)
		}
	}

	first := changed("at once", map[string]string{})
	advance(1900 * time.Millisecond)
	unchanged("1.9 s later", first)
	advance(200 * time.Millisecond)
	second := changed("2.1 s later", first)
	advance(3800 * time.Millisecond)
	unchanged("3.8 s after the second", second)
	advance(300 * time.Millisecond)
	changed("4.1 s after the second", second)

	status.load("web-0", want)
	status.load("web-1", want)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reload once both ready instances loaded %s: %v", want, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reload did not complete once both ready instances loaded the config")
	}
}
