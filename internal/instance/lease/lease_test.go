package lease_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/instance/lease"
	"github.com/pgsync/pgsync/internal/instance/role"
	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

func waitView(t *testing.T, k *lease.Kube, what string, ok func(role.Lease) bool) role.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := k.Current()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen; last view %+v", what, v)
		}
		select {
		case <-k.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestLeaseProtocol drives the Lease through bootstrap, a switchover
// hand-off and the refusals that keep two instances from both holding it,
// against a real kube-apiserver, and checks the watch delivers each change.
func TestLeaseProtocol(t *testing.T) {
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := lease.New(cs, ns, "pg", 10*time.Second, time.Now, log)
	b := lease.New(cs, ns, "pg", 10*time.Second, time.Now, log)
	go a.Run(ctx)
	go b.Run(ctx)
	if !a.WaitSynced(ctx) || !b.WaitSynced(ctx) {
		t.Fatal("informers did not sync")
	}
	if v := a.Current(); v.Exists {
		t.Fatalf("missing Lease seen as %+v", v)
	}
	_, err = cs.CoordinationV1().Leases(ns).Create(ctx, &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: "pg-primary", Annotations: map[string]string{podcontract.AnnTargetPrimary: "pg-0"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, b, "created Lease", func(v role.Lease) bool { return v.Exists && v.Target == "pg-0" && !v.Initialized })

	if _, err := b.Acquire(ctx, "pg-1", "42"); err == nil {
		t.Fatal("a non-target acquired the Lease")
	}
	if _, err := a.Acquire(ctx, "pg-0", "42"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "pg-1", "h1:5432"); !errors.Is(err, lease.ErrNotHolder) {
		t.Errorf("publish by a non-holder: %v", err)
	}
	if err := a.Publish(ctx, "pg-0", "h0:5432"); err != nil {
		t.Fatal(err)
	}
	v := waitView(t, b, "holder pg-0 published", func(v role.Lease) bool { return v.Holder == "pg-0" && v.PrimaryAddress != "" })
	if v.PrimaryAddress != "h0:5432" || !v.Initialized {
		t.Errorf("after acquire: %+v", v)
	}
	if _, err := b.Renew(ctx, "pg-1", 0); !errors.Is(err, lease.ErrNotHolder) {
		t.Errorf("renew by a non-holder: %v", err)
	}
	if err := b.Release(ctx, "pg-1", 7); !errors.Is(err, lease.ErrNotHolder) {
		t.Errorf("release by a non-holder: %v", err)
	}
	sent, err := a.Renew(ctx, "pg-0", 0x3000060)
	if err != nil {
		t.Fatal(err)
	}
	if rt, d := a.RenewTime(); !rt.Equal(sent.Truncate(time.Microsecond)) && rt.Sub(sent).Abs() > time.Millisecond || d != 10*time.Second {
		t.Errorf("renewTime %v (sent %v), duration %v", rt, sent, d)
	}

	// Switchover hand-off: target → pg-1; pg-0 releases with its final LSN.
	patch := `{"metadata":{"annotations":{"pgsync.io/target-primary":"pg-1"}}}`
	if _, err := cs.CoordinationV1().Leases(ns).Patch(ctx, "pg-primary", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitView(t, a, "target pg-1", func(v role.Lease) bool { return v.Target == "pg-1" })
	if _, err := b.Acquire(ctx, "pg-1", ""); err == nil {
		t.Fatal("the target took the Lease before the holder released it")
	}
	if err := a.Release(ctx, "pg-0", 0x4029368); err != nil {
		t.Fatal(err)
	}
	v = waitView(t, b, "released", func(v role.Lease) bool { return v.Holder == "" })
	if !v.HasFinalLSN || v.FinalLSN != 0x4029368 || v.ReleasedBy != "pg-0" || v.PrimaryAddress != "" {
		t.Errorf("after release: %+v", v)
	}
	if _, err := a.Acquire(ctx, "pg-0", ""); err == nil {
		t.Fatal("the old holder took the Lease back while the target is pg-1")
	}
	if _, err := b.Acquire(ctx, "pg-1", "43"); err == nil {
		t.Fatal("an instance of another database system (identifier) acquired the Lease")
	}
	if _, err := b.Acquire(ctx, "pg-1", "42"); err != nil {
		t.Fatal(err)
	}
	v = waitView(t, a, "holder pg-1", func(v role.Lease) bool { return v.Holder == "pg-1" })
	if v.HasFinalLSN || v.ReleasedBy != "" || v.PrimaryAddress != "" {
		t.Errorf("after the second acquire (not yet published): %+v", v)
	}
	if err := b.Publish(ctx, "pg-1", "h1:5432"); err != nil {
		t.Fatal(err)
	}
	v = waitView(t, a, "pg-1 published", func(v role.Lease) bool { return v.PrimaryAddress != "" })
	if v.PrimaryAddress != "h1:5432" {
		t.Errorf("after the second acquire: %+v", v)
	}
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{})
	if err != nil || l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 2 {
		t.Errorf("leaseTransitions = %v (%v), want 2", l.Spec.LeaseTransitions, err)
	}

	// Routing: one EndpointSlice write moves -rw; labels follow.
	for _, p := range []string{"pg-0", "pg-1"} {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(26)),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{Name: "c", Image: "x", SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
			}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Route(ctx, "pg-0", "198.18.0.10", 5432, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Route(ctx, "pg-1", "198.18.0.11", 5432, "pg-0"); err != nil {
		t.Fatal(err)
	}
	es, err := cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, "pg-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "198.18.0.11" || es.Labels["kubernetes.io/service-name"] != "pg-rw" {
		t.Errorf("EndpointSlice: %+v", es)
	}
	for pod, want := range map[string]string{"pg-0": "replica", "pg-1": "primary"} {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil || p.Labels[podcontract.LabelRole] != want {
			t.Errorf("%s role label %q (%v), want %s", pod, p.Labels[podcontract.LabelRole], err, want)
		}
	}
}

// TestTakeOver: the failover write. Two standbys race for a Lease whose
// holder stopped renewing; exactly one wins. A take-over judged on a
// renewal that was followed by another is refused; the record carries the
// old holder's last published LSN and the failover clock restarts.
func TestTakeOver(t *testing.T) {
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = cs.CoordinationV1().Leases(ns).Create(ctx, &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: "pg-primary", Annotations: map[string]string{podcontract.AnnTargetPrimary: "pg-0"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ks := map[string]*lease.Kube{}
	for _, n := range []string{"pg-0", "pg-1", "pg-2"} {
		ks[n] = lease.New(cs, ns, "pg", 10*time.Second, time.Now, log)
		go ks[n].Run(ctx)
		if !ks[n].WaitSynced(ctx) {
			t.Fatal("informer did not sync")
		}
	}
	if _, err := ks["pg-0"].Acquire(ctx, "pg-0", "42"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks["pg-0"].Renew(ctx, "pg-0", 0x3000060); err != nil {
		t.Fatal(err)
	}
	waitView(t, ks["pg-1"], "renewal seen", func(v role.Lease) bool { return v.Holder == "pg-0" })
	var seen1 time.Time
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h, rt, at, d := ks["pg-1"].Seen()
		if h == "pg-0" && !rt.IsZero() {
			if l, _ := cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{}); l != nil && l.Spec.RenewTime.Time.Equal(rt) {
				seen1 = at
				if d != 10*time.Second {
					t.Errorf("Seen duration %v", d)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("pg-1 did not see the last renewal")
		}
	}
	_, stale, _, _ := ks["pg-1"].Seen()
	// The holder renews once more: a take-over judged on the older
	// renewal must fail.
	if _, err := ks["pg-0"].Renew(ctx, "pg-0", 0x3000100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks["pg-2"].TakeOver(ctx, "pg-2", "pg-0", stale, podcontract.Failover{}); err == nil {
		t.Fatal("took over a Lease renewed after the renewal judged expired")
	}
	waitView(t, ks["pg-1"], "second renewal", func(v role.Lease) bool { return v.Holder == "pg-0" })
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := l.Spec.RenewTime.Time
	// Both standbys judge the last renewal expired and race.
	type res struct {
		who string
		rec podcontract.Failover
		err error
	}
	out := make(chan res, 2)
	for _, n := range []string{"pg-1", "pg-2"} {
		go func() {
			_, rec, err := ks[n].TakeOver(ctx, n, "pg-0", last, podcontract.Failover{ReceivedLSN: "0/3000100"})
			out <- res{n, rec, err}
		}()
	}
	var winner string
	for range 2 {
		r := <-out
		if r.err == nil {
			if winner != "" {
				t.Fatalf("both %s and %s took the Lease over", winner, r.who)
			}
			winner = r.who
			if r.rec.From != "pg-0" || r.rec.To != r.who || r.rec.FromLSN != "0/3000100" {
				t.Errorf("failover record %+v", r.rec)
			}
		}
	}
	if winner == "" {
		t.Fatal("nobody took the Lease over")
	}
	v := waitView(t, ks["pg-0"], "new holder", func(v role.Lease) bool { return v.Holder == winner })
	if v.Target != winner || v.PrimaryAddress != "" {
		t.Errorf("after the take-over: %+v", v)
	}
	if _, err := ks["pg-0"].Renew(ctx, "pg-0", 1); !errors.Is(err, lease.ErrNotHolder) {
		t.Errorf("the old holder renewed after the take-over: %v", err)
	}
	if rec, ok := ks["pg-0"].LastFailover(); !ok || rec.To != winner {
		t.Errorf("LastFailover %+v %v", rec, ok)
	}
	l, _ = cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{})
	if _, ok := l.Annotations[podcontract.AnnPrimaryLSN]; ok || *l.Spec.LeaseTransitions != 2 {
		t.Errorf("after the take-over: annotations %v, transitions %d", l.Annotations, *l.Spec.LeaseTransitions)
	}
	if _, _, at, _ := ks["pg-1"].Seen(); !at.After(seen1) {
		t.Error("the failover clock did not restart at the new holder")
	}
	rec, _ := ks[winner].LastFailover()
	rec.PromotedLSN = "0/3000200"
	loser := map[string]string{"pg-1": "pg-2", "pg-2": "pg-1"}[winner]
	if err := ks[loser].RecordFailover(ctx, loser, rec); err == nil {
		t.Error("a non-holder rewrote the failover record")
	}
	if err := ks[winner].RecordFailover(ctx, winner, rec); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
