// Package failover measures what a client of NAME-rw sees when the
// primary dies in the local Kubernetes: write unavailability from the
// primary pod's deletion with a grace period of 0 (its postgres and
// manager killed at once, the pod kept from coming back) to the first
// acknowledged write through NAME-rw, and the acknowledged commits the
// failover lost (asynchronous replication) — against a baseline in the
// same run: the planned role change, a switchover driven by hand through
// the Lease's target annotation (bench/rollout's baseline).
//
// Run with the local Kubernetes up (make kube-up):
//
//	go test -run '^$' -bench Failover -benchtime=1x -timeout 60m ./bench/failover
//
// BENCH_FAILOVERS sets the number of failovers (10) and of baseline
// switchovers (the same); BENCH_FAILOVER_LEASE a Lease duration for the
// cluster (its pgsync.io/lease-duration annotation; the managers' default,
// 15s, when unset). Besides the times it reports what the Lease costs:
// the Lease writes a minute while nothing happens (measured over
// BENCH_FAILOVER_QUIET, 60s, before the first round) and the holder
// changes nobody asked for (false failovers) during the whole run.
package failover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/benchstat"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

const (
	image       = "localhost:5000/postgresql:15.18"
	pgsyncImage = "localhost:5000/pgsync:dev"
	cluster     = "website"
	// pin keeps a deleted pod Pending: no node has the label.
	pinLabel = "pgsync.io/bench-no-such-node"
)

func TestMain(m *testing.M) {
	code := kubeenv.Main(m)
	insttest.RemoveBinary()
	os.Exit(code)
}

type bench struct {
	b   *testing.B
	env *kubeenv.Env
	cs  kubernetes.Interface
	ns  string
}

func (x *bench) apply(ctx context.Context) {
	x.b.Helper()
	repo := x.b.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			x.b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	file := filepath.Join(repo, "clusters", cluster+".yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		x.b.Fatal(err)
	}
	cf := clusterfile.Cluster{Name: cluster, Namespace: x.ns, Image: image, Instances: 3}
	if d := os.Getenv("BENCH_FAILOVER_LEASE"); d != "" {
		cf.Annotations = map[string]string{pc.AnnLeaseDuration: d}
	}
	y := cf.YAML()
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		x.b.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "website")
	cmd := exec.CommandContext(ctx, insttest.Binary(x.b), "apply", "--auto-approve", "--repo", repo, "--path", "clusters",
		"--kubeconfig", x.env.Kubeconfig, "--namespace", x.ns, "--instance-image", pgsyncImage,
		"--instance-image-pull-policy", "Always")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		x.b.Fatalf("pgsync apply: %v\n%s", err, out.String())
	}
}

// leaseWatch counts the primary Lease's writes and its holder changes,
// polling fast enough to see every renewal.
type leaseWatch struct {
	mu      sync.Mutex
	writes  int
	changes int
}

func (x *bench) watchLease(ctx context.Context) *leaseWatch {
	lw := &leaseWatch{}
	go func() {
		var rv, holder string
		for ctx.Err() == nil {
			l, err := x.cs.CoordinationV1().Leases(x.ns).Get(ctx, cluster+"-primary", metav1.GetOptions{})
			if err == nil {
				h := ""
				if l.Spec.HolderIdentity != nil {
					h = *l.Spec.HolderIdentity
				}
				lw.mu.Lock()
				if rv != "" && l.ResourceVersion != rv {
					lw.writes++
				}
				if holder != "" && h != "" && h != holder {
					lw.changes++
				}
				lw.mu.Unlock()
				rv = l.ResourceVersion
				if h != "" {
					holder = h
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return lw
}

func (lw *leaseWatch) counts() (writes, changes int) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.writes, lw.changes
}

func (x *bench) holder(ctx context.Context) string {
	l, err := x.cs.CoordinationV1().Leases(x.ns).Get(ctx, cluster+"-primary", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// status is an instance manager's /status, or nil.
func status(ctx context.Context, ip string) map[string]any {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, strconv.Itoa(pc.HTTPPort))+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st map[string]any
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return st
}

// waitHealthy waits for a primary holding the Lease and two standbys
// streaming from it, all Ready: the state every round starts from.
func (x *bench) waitHealthy(ctx context.Context) string {
	x.b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		primary := x.holder(ctx)
		pods, err := x.cs.CoreV1().Pods(x.ns).List(ctx, metav1.ListOptions{LabelSelector: pc.LabelCluster + "=" + cluster})
		if err != nil || primary == "" || len(pods.Items) != 3 {
			continue
		}
		streaming := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || !ready(p) {
				break
			}
			st := status(ctx, p.Status.PodIP)
			if p.Name == primary {
				if st == nil || st["role"] != "primary" {
					break
				}
				continue
			}
			if st != nil && st["role"] == "standby" && st["streaming"] == true {
				streaming++
			}
		}
		if streaming == 2 {
			return primary
		}
	}
	x.b.Fatal("the cluster did not become healthy (a primary and two streaming standbys) within 5 minutes")
	return ""
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (x *bench) pin(ctx context.Context, on bool) {
	x.b.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"nodeSelector":{%q:"x"}}}}}`, pinLabel)
	if !on {
		patch = `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`
	}
	if _, err := x.cs.AppsV1().StatefulSets(x.ns).Patch(ctx, cluster, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		x.b.Fatal(err)
	}
}

// standby is a streaming standby other than primary (waitHealthy saw
// both streaming).
func (x *bench) standby(ctx context.Context, primary string) string {
	for i := 0; i < 3; i++ {
		if name := fmt.Sprintf("%s-%d", cluster, i); name != primary {
			return name
		}
	}
	return ""
}

func (x *bench) deletePod(ctx context.Context, name string, grace *int64) {
	x.b.Helper()
	if err := x.cs.CoreV1().Pods(x.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace}); err != nil {
		x.b.Fatal(err)
	}
}

func (x *bench) waitNewHolder(ctx context.Context, old string) string {
	x.b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if h := x.holder(ctx); h != "" && h != old {
			return h
		}
	}
	x.b.Fatalf("no instance took the Lease over from %s within 2 minutes", old)
	return ""
}

func BenchmarkFailover(b *testing.B) {
	n := 10
	if v, err := strconv.Atoi(os.Getenv("BENCH_FAILOVERS")); err == nil && v > 0 {
		n = v
	}
	env := kubeenv.Cluster(b)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	x := &bench{b: b, env: env, cs: env.Client, ns: env.Namespace}
	x.apply(ctx)
	x.waitHealthy(ctx)

	rw, err := x.cs.CoreV1().Services(x.ns).Get(ctx, cluster+"-rw", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	app, super := kubeenv.SecretPassword(ctx, b, x.cs, x.ns, cluster+"-app"), kubeenv.SecretPassword(ctx, b, x.cs, x.ns, cluster+"-superuser")
	dsn := fmt.Sprintf("host=%s port=%d user=app password=%s dbname=app sslmode=require connect_timeout=2", rw.Spec.ClusterIP, pc.PostgresPort, app)
	if err := insttest.CreateProbeTable(ctx, dsn); err != nil {
		b.Fatal(err)
	}
	w := insttest.StartWriter(dsn, 1)
	defer w.Stop()
	if err := w.WaitAcks(100, time.Minute); err != nil {
		b.Fatal(err)
	}
	lw := x.watchLease(ctx)
	quiet := time.Minute
	if d, err := time.ParseDuration(os.Getenv("BENCH_FAILOVER_QUIET")); err == nil && d > 0 {
		quiet = d
	}
	time.Sleep(quiet)
	quietWrites, quietChanges := lw.counts()
	perMinute := float64(quietWrites) / quiet.Minutes()
	superDSN := func(pod string) string {
		p, err := x.cs.CoreV1().Pods(x.ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=app sslmode=require connect_timeout=3", p.Status.PodIP, pc.PostgresPort, super)
	}

	var failovers, takeovers, baselines []time.Duration
	var lostPer []int
	lostSoFar := 0
	zero := int64(0)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		// A failover: the primary's pod deleted with no grace period and
		// kept Pending, so only the standbys can bring writes back.
		old := x.waitHealthy(ctx)
		time.Sleep(2 * time.Second) // the writer settled on the current primary
		x.pin(ctx, true)
		t0 := time.Now()
		x.deletePod(ctx, old, &zero)
		now := x.waitNewHolder(ctx, old)
		took := time.Since(t0)
		if err := w.WaitAcks(50, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		acks := w.Acks()
		// The longest pause after the deletion is the failover's; writes
		// are back at its end. (Writes in flight when the deletion is
		// sent are still acknowledged: the kill lands a moment later.)
		pause, _, pauseEnd := insttest.GapBounds(acks, t0, time.Now())
		back := pauseEnd.Sub(t0)
		missing, err := insttest.Missing(ctx, superDSN(now), acks)
		if err != nil {
			b.Fatal(err)
		}
		lost := len(missing) - lostSoFar
		lostSoFar = len(missing)
		failovers, takeovers, lostPer = append(failovers, back), append(takeovers, took), append(lostPer, lost)
		b.Logf("failover %d: %s killed, %s took the Lease after %.1f s; writes back after %.1f s (pause %.1f s); %d acknowledged commits lost",
			i+1, old, now, took.Seconds(), back.Seconds(), pause.Seconds(), lost)
		x.pin(ctx, false)
		x.deletePod(ctx, old, &zero) // the Pending pod, recreated unpinned: it rejoins

		// Baseline: the planned role change, a switchover driven by hand
		// through the Lease's target (as bench/rollout's baseline).
		old = x.waitHealthy(ctx)
		time.Sleep(2 * time.Second)
		target := x.standby(ctx, old)
		t1 := time.Now()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, pc.AnnTargetPrimary, target)
		if _, err := x.cs.CoordinationV1().Leases(x.ns).Patch(ctx, cluster+"-primary", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		x.waitNewHolder(ctx, old)
		if err := w.WaitAcks(50, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		gap := insttest.MaxGap(w.Acks(), t1, time.Now())
		baselines = append(baselines, gap)
		b.Logf("baseline %d: switchover %s → %s; longest write pause %.0f ms", i+1, old, target, float64(gap.Milliseconds()))
	}
	b.StopTimer()
	acks := w.Stop()
	final := x.waitHealthy(ctx)
	missing, err := insttest.Missing(ctx, superDSN(final), acks)
	if err != nil {
		b.Fatal(err)
	}

	fm, bm := benchstat.Median(failovers), benchstat.Median(baselines)
	b.ReportMetric(fm.Seconds(), "unavailable-median-s")
	b.ReportMetric(slices.Max(failovers).Seconds(), "unavailable-max-s")
	b.ReportMetric(benchstat.Median(takeovers).Seconds(), "takeover-median-s")
	b.ReportMetric(bm.Seconds(), "baseline-median-s")
	b.ReportMetric(float64(fm)/float64(bm), "ratio")
	b.ReportMetric(float64(slices.Max(lostPer)), "lost-max")
	b.ReportMetric(float64(len(missing)), "lost-total")
	_, changes := lw.counts()
	// Each round changes the holder twice: the failover and the switchover.
	unasked := changes - 2*n
	b.ReportMetric(perMinute, "lease-writes/min")
	b.ReportMetric(float64(unasked), "false-failovers")
	b.Logf("the Lease while nothing happens: %.1f writes a minute (over %s, %d holder changes); holder changes nobody asked for during the run: %d (%d seen, %d asked)",
		perMinute, quiet, quietChanges, unasked, changes, 2*n)
	b.Logf("write unavailability per failover: median %.1f s, max %.1f s (Lease taken over: median %.1f s); baseline switchover: median %.0f ms, max %.0f ms; ratio %.1f",
		fm.Seconds(), slices.Max(failovers).Seconds(), benchstat.Median(takeovers).Seconds(), float64(bm.Milliseconds()), float64(slices.Max(baselines).Milliseconds()), float64(fm)/float64(bm))
	b.Logf("acknowledged commits lost per failover: %v (%d in all of %d acknowledged)", lostPer, len(missing), len(acks))
}
