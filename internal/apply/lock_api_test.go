package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/test/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

func testCluster(t *testing.T, ns string) *cluster.Cluster {
	t.Helper()
	y := fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: web\n  namespace: %s\nspec:\n  imageName: localhost:5000/postgresql:15.18\n  instances: 3\n  storage:\n    size: 1Gi\n", ns)
	set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(y)}})
	if err != nil {
		t.Fatal(err)
	}
	return set.Clusters[0]
}

// apiEnv is a namespace of the shared test API server, its clients and
// a test cluster in it.
type apiEnv struct {
	ns  string
	cs  kubernetes.Interface
	dyn dynamic.Interface
	c   *cluster.Cluster
}

func newAPIEnv(t *testing.T) (context.Context, apiEnv) {
	t.Helper()
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx, apiEnv{ns: ns, cs: cs, dyn: dyn, c: testCluster(t, ns)}
}

// TestApplyLock: one writer per cluster. A second apply fails at once
// naming the holder; after Release, or once the holder stops renewing
// for the Lease's duration, another apply takes it.
func TestApplyLock(t *testing.T) {
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := testCluster(t, ns)
	now := time.Now()
	clock := func() time.Time { return now }
	e := &Executor{Client: cs, Now: clock}

	first, err := e.Acquire(ctx, c, "apply-A")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Acquire(ctx, c, "apply-B")
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Holder != "apply-A" {
		t.Fatalf("second Acquire: %v, want a LockedError naming apply-A", err)
	}
	t.Logf("second apply: %v", err)
	first.Release(ctx)
	second, err := e.Acquire(ctx, c, "apply-B")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	// apply-B is killed: it stops renewing. Within DefaultLockDuration C waits;
	// past it, C takes over.
	second.cancel()
	<-second.done
	now = now.Add(DefaultLockDuration / 2)
	if _, err := e.Acquire(ctx, c, "apply-C"); !errors.As(err, &locked) || locked.Holder != "apply-B" {
		t.Fatalf("Acquire before expiry: %v, want apply-B still holding", err)
	}
	now = now.Add(DefaultLockDuration)
	third, err := e.Acquire(ctx, c, "apply-C")
	if err != nil {
		t.Fatalf("Acquire after expiry: %v", err)
	}
	third.cancel()
	<-third.done

	// --lock-duration 8s: the Lease says so, and a killed holder blocks
	// the next taker 8 s, not 30.
	short := &Executor{Client: cs, Now: clock, LockDuration: 8 * time.Second}
	now = now.Add(DefaultLockDuration + time.Second)
	fourth, err := short.Acquire(ctx, c, "apply-D")
	if err != nil {
		t.Fatalf("Acquire with an 8s lock: %v", err)
	}
	if d := deref(fourth.lease.Spec.LeaseDurationSeconds); d != 8 {
		t.Errorf("Lease duration %d s, want 8", d)
	}
	fourth.cancel()
	<-fourth.done
	now = now.Add(7 * time.Second)
	if _, err := short.Acquire(ctx, c, "apply-E"); !errors.As(err, &locked) || locked.Holder != "apply-D" {
		t.Fatalf("Acquire 7 s after an 8 s lock's renewal: %v, want apply-D still holding", err)
	}
	now = now.Add(2 * time.Second)
	fifth, err := short.Acquire(ctx, c, "apply-E")
	if err != nil {
		t.Fatalf("Acquire 9 s after an 8 s lock's renewal: %v", err)
	}
	fifth.Release(ctx)
}

// TestCheckLockDuration: whole seconds, within the bounds.
func TestCheckLockDuration(t *testing.T) {
	for d, ok := range map[time.Duration]bool{
		DefaultLockDuration: true, MinLockDuration: true, MaxLockDuration: true,
		5 * time.Second: false, 11 * time.Minute: false, 8500 * time.Millisecond: false, 0: false, -time.Minute: false,
	} {
		if err := CheckLockDuration(d); (err == nil) != ok {
			t.Errorf("CheckLockDuration(%s) = %v, want ok %v", d, err, ok)
		}
	}
}
