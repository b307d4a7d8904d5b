// Package rollout measures what a user of `pgsync apply` sees during the
// article's rolling minor update in the local Kubernetes: how long writes
// through NAME-rw stop per rolling update (one switchover), how long a
// whole 3-instance rolling update takes end to end, and where the time
// goes — against a hand-driven baseline in the same run: the switchover
// the existing e2e drives by setting the Lease's target annotation.
//
// Run with the local Kubernetes up (make kube-up):
//
//	go test -run '^$' -bench Rollout -benchtime=1x -timeout 40m ./bench/rollout
//
// BENCH_ROLLOUTS sets the number of rolling updates (6) and of baseline
// switchovers (the same).
package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/benchstat"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

const (
	image1518   = "localhost:5000/postgresql:15.18"
	image1520   = "localhost:5000/postgresql:15.20"
	pgsyncImage = "localhost:5000/pgsync:dev"
)

func TestMain(m *testing.M) {
	code := kubeenv.Main(m)
	insttest.RemoveBinary()
	os.Exit(code)
}

func clusterYAML(ns, image string) string {
	return clusterfile.Cluster{Name: "website", Namespace: ns, Image: image, Instances: 3}.YAML()
}

type bench struct {
	b    *testing.B
	env  *kubeenv.Env
	repo string
}

func (x *bench) git(args ...string) {
	x.b.Helper()
	cmd := exec.Command("git", append([]string{"-C", x.repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		x.b.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func (x *bench) commit(image string) {
	x.b.Helper()
	file := filepath.Join(x.repo, "clusters", "website.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		x.b.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(clusterYAML(x.env.Namespace, image)), 0o644); err != nil {
		x.b.Fatal(err)
	}
	x.git("add", "-A")
	x.git("commit", "-q", "-m", image)
}

func (x *bench) apply(ctx context.Context) string {
	x.b.Helper()
	cmd := exec.CommandContext(ctx, insttest.Binary(x.b), "apply", "--auto-approve", "--repo", x.repo, "--path", "clusters",
		"--kubeconfig", x.env.Kubeconfig, "--namespace", x.env.Namespace, "--instance-image", pgsyncImage,
		"--instance-image-pull-policy", "Always")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		x.b.Fatalf("pgsync apply: %v\n%s", err, out.String())
	}
	return out.String()
}

// stepLine is apply's progress line of a finished step.
var stepLine = regexp.MustCompile(`^\s+\d+\. ([a-z-]+)(?: [a-z0-9-]+)?(?: \((standby|primary)\))?.*: done in (\S+)$`)

// steps reads each finished step's kind and duration from apply's output.
func steps(out string) map[string][]time.Duration {
	got := map[string][]time.Duration{}
	for _, line := range strings.Split(out, "\n") {
		m := stepLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d, err := time.ParseDuration(m[3])
		if err != nil {
			continue
		}
		kind := m[1]
		if kind == "restart-instance" {
			kind += " (" + m[2] + ")"
		}
		got[kind] = append(got[kind], d)
	}
	return got
}

// logFailures says when a write gap was and what the writer was answered
// during it, grouped by message.
func logFailures(b *testing.B, w *insttest.Writer, from, to time.Time) {
	count := map[string]int{}
	var order []string
	for _, f := range w.Failures(from, to) {
		msg := f.Err
		if len(msg) > 120 {
			msg = msg[:120]
		}
		if count[msg] == 0 {
			order = append(order, msg)
		}
		count[msg]++
	}
	b.Logf("  gap %s → %s", from.UTC().Format("15:04:05.000"), to.UTC().Format("15:04:05.000"))
	for _, m := range order {
		b.Logf("    %d× %s", count[m], m)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func BenchmarkRollout(b *testing.B) {
	n := 6
	if v, err := strconv.Atoi(os.Getenv("BENCH_ROLLOUTS")); err == nil && v > 0 {
		n = v
	}
	env := kubeenv.Cluster(b)
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	x := &bench{b: b, env: env, repo: b.TempDir()}
	x.git("init", "-q", "-b", "main")
	x.commit(image1518)
	x.apply(ctx)

	cs, ns := env.Client, env.Namespace
	app := kubeenv.SecretPassword(ctx, b, cs, ns, "website-app")
	rw, err := cs.CoreV1().Services(ns).Get(ctx, "website-rw", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dsn := fmt.Sprintf("host=%s port=5432 user=app password=%s dbname=app sslmode=require connect_timeout=3", rw.Spec.ClusterIP, app)
	if err := insttest.CreateProbeTable(ctx, dsn); err != nil {
		b.Fatal(err)
	}
	w := insttest.StartWriter(dsn, 1)
	if err := w.WaitAcks(100, time.Minute); err != nil {
		b.Fatal(err)
	}

	var pgsyncGaps, baseGaps, totals []time.Duration
	perStep := map[string][]time.Duration{}
	var phases []restartPhases
	image := image1518
	b.ResetTimer()
	for i := 0; i < n; i++ {
		// pgsync: a whole rolling update.
		if image == image1518 {
			image = image1520
		} else {
			image = image1518
		}
		x.commit(image)
		before := podsNow(ctx, b, cs, ns)
		t0 := time.Now()
		out := x.apply(ctx)
		t1 := time.Now()
		if err := w.WaitAcks(100, time.Minute); err != nil {
			b.Fatal(err)
		}
		gap, gapFrom, gapTo := insttest.GapBounds(w.Acks(), t0, time.Now())
		pgsyncGaps, totals = append(pgsyncGaps, gap), append(totals, t1.Sub(t0))
		logFailures(b, w, gapFrom, gapTo)
		for k, v := range steps(out) {
			perStep[k] = append(perStep[k], v...)
		}
		phases = append(phases, restarts(ctx, b, cs, ns, before)...)
		b.Logf("rollout %d to %s: %.1f s, write pause %.0f ms", i+1, image, t1.Sub(t0).Seconds(), ms(gap))

		// Baseline: a switchover driven by hand through the Lease, once
		// the rollout's endpoint changes are 2 s old — as pgsync waits
		// for them to be still (kube-proxy's minSyncPeriod would
		// otherwise delay the -rw change by up to a second).
		time.Sleep(2 * time.Second)
		target := standby(ctx, b, cs, ns)
		t2 := time.Now()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, podcontract.AnnTargetPrimary, target)
		if _, err := cs.CoordinationV1().Leases(ns).Patch(ctx, "website-primary", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		waitHolder(ctx, b, cs, ns, target)
		if err := w.WaitAcks(100, time.Minute); err != nil {
			b.Fatal(err)
		}
		g, gFrom, gTo := insttest.GapBounds(w.Acks(), t2, time.Now())
		baseGaps = append(baseGaps, g)
		logFailures(b, w, gFrom, gTo)
		b.Logf("baseline switchover %d to %s: write pause %.0f ms", i+1, target, ms(g))
		// The StatefulSet's PDBs follow the target: the next apply
		// re-renders with the Lease's live target.
		time.Sleep(3 * time.Second) // let the old primary rejoin before the next rollout's preconditions
	}
	b.StopTimer()
	acks := w.Stop()
	primary := holder(ctx, b, cs, ns)
	super := kubeenv.SecretPassword(ctx, b, cs, ns, "website-superuser")
	p, err := cs.CoreV1().Pods(ns).Get(ctx, primary, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	missing, err := insttest.Missing(ctx, fmt.Sprintf("host=%s port=5432 user=postgres password=%s dbname=app sslmode=require", p.Status.PodIP, super), acks)
	if err != nil {
		b.Fatal(err)
	}

	pm, bm := benchstat.Median(pgsyncGaps), benchstat.Median(baseGaps)
	b.ReportMetric(ms(pm), "pause-median-ms")
	b.ReportMetric(ms(slices.Max(pgsyncGaps)), "pause-max-ms")
	b.ReportMetric(ms(bm), "baseline-median-ms")
	b.ReportMetric(float64(pm)/float64(bm), "ratio")
	b.ReportMetric(benchstat.Median(totals).Seconds(), "rollout-median-s")
	b.ReportMetric(slices.Max(totals).Seconds(), "rollout-max-s")
	b.ReportMetric(float64(len(missing)), "lost")
	b.Logf("write pause per rolling update: median %.0f ms, max %.0f ms; baseline switchover median %.0f ms, max %.0f ms; ratio %.2f; %d acknowledged, %d lost",
		ms(pm), ms(slices.Max(pgsyncGaps)), ms(bm), ms(slices.Max(baseGaps)), float64(pm)/float64(bm), len(acks), len(missing))
	b.Logf("rolling update end to end: median %.1f s, max %.1f s", benchstat.Median(totals).Seconds(), slices.Max(totals).Seconds())
	for _, k := range []string{"update-objects", "restart-instance (standby)", "switchover", "reload-config"} {
		if v := perStep[k]; len(v) > 0 {
			b.Logf("step %s: median %.0f ms over %d", k, ms(benchstat.Median(v)), len(v))
		}
	}
	var del, start, ready []time.Duration
	for _, r := range phases {
		del, start, ready = append(del, r.gone), append(start, r.started), append(ready, r.ready)
	}
	b.Logf("a restarted instance (%d): old pod gone → new pod created %.1f s, created → postgres container started %.1f s, started → Ready %.1f s (medians; the API's timestamps have 1 s resolution)",
		len(phases), benchstat.Median(del).Seconds(), benchstat.Median(start).Seconds(), benchstat.Median(ready).Seconds())
	if len(missing) > 0 {
		b.Errorf("%d acknowledged commits lost: %v", len(missing), missing)
	}
}

type podInfo struct {
	uid     types.UID
	deleted time.Time
}

func podsNow(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns string) map[string]podInfo {
	b.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=website"})
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]podInfo{}
	for _, p := range list.Items {
		out[p.Name] = podInfo{uid: p.UID}
	}
	return out
}

// restartPhases of one restarted instance: from the step's start (the old
// pod's deletion, approximated by the previous pod's disappearance: the
// new pod's creation) to container start and Ready.
type restartPhases struct{ gone, started, ready time.Duration }

func restarts(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns string, before map[string]podInfo) []restartPhases {
	b.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=website"})
	if err != nil {
		b.Fatal(err)
	}
	evs, _ := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,reason=Killing"})
	var out []restartPhases
	for _, p := range list.Items {
		if before[p.Name].uid == p.UID {
			continue
		}
		var killed time.Time
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == p.Name && e.InvolvedObject.UID == before[p.Name].uid {
				killed = e.FirstTimestamp.Time
				if !e.EventTime.IsZero() {
					killed = e.EventTime.Time
				}
			}
		}
		var started, ready time.Time
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == podcontract.ContainerPostgres && c.State.Running != nil {
				started = c.State.Running.StartedAt.Time
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = c.LastTransitionTime.Time
			}
		}
		created := p.CreationTimestamp.Time
		r := restartPhases{started: started.Sub(created), ready: ready.Sub(started)}
		if !killed.IsZero() {
			r.gone = created.Sub(killed)
		}
		out = append(out, r)
	}
	return out
}

func holder(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns string) string {
	b.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "website-primary", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func waitHolder(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns, want string) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if holder(ctx, b, cs, ns) == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("the Lease never went to %s", want)
}

// standby is a streaming standby (the lowest ordinal that is not the
// primary and whose manager says it streams).
func standby(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns string) string {
	b.Helper()
	primary := holder(ctx, b, cs, ns)
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("website-%d", i)
		if name != primary {
			return name
		}
	}
	b.Fatal(errors.New("no standby"))
	return ""
}
