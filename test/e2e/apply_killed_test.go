package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestApplyKilledResumes: a 15.18 → 15.20 rollout of the 3-instance
// website cluster by the real binary, SIGKILLed three times — at a step
// boundary (update-objects done), while a restarted standby comes up, and
// right after the switchover was triggered (the Lease's target written).
// A rerun while a killed run's apply Lease is fresh, and a second apply
// while one runs, fail at once naming the holder; each rerun after the
// lock expired goes on from where the cluster is. Across all the runs
// every instance is replaced exactly once, no step done by one run is
// started again by a later one (but an update-objects undoing what a kill
// left half-applied), the primary moves once, its disruption budgets
// follow it, and the data written before is there.
func TestApplyKilledResumes(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 3, ""), "website at 15.18")
	super := kubeenv.SecretPassword(ctx, t, cs, ns, "website-superuser")
	primaryDSN := superDSNOf(ctx, t, cs, ns, super, "website-0")
	conn := instConnect(ctx, t, primaryDSN)
	mustExec(ctx, t, conn, "CREATE TABLE kept AS SELECT generate_series(1, 1000) AS n")
	conn.Close(ctx)

	hist := recordHistory(ctx, t, cs, ns, "website")
	repo.commit(websiteYAML(ns, image1520, 3, ""), "website at 15.20")
	var outputs []string // every run's output, in order

	// Run 1: killed at the boundary after update-objects.
	r1 := startApply(ctx, t, env, repo)
	r1.waitLine(ctx, t, regexp.MustCompile(`^  1\. update-objects: done`))
	r1.kill(t)
	outputs = append(outputs, r1.output())
	t.Logf("run 1, killed after update-objects:\n%s", r1.output())

	// Its Lease is fresh: a rerun now is refused at once, naming it.
	start := time.Now()
	out, code := pgsyncApply(ctx, t, env, repo)
	if took := time.Since(start); code != 1 || !strings.Contains(out, "is being applied by "+r1.owner()) || took > killedLock {
		t.Errorf("apply while the killed run's lock is fresh: exit %d after %s, want 1 at once naming %q:\n%s", code, took.Round(time.Millisecond), r1.owner(), out)
	}
	waitApplyLockFree(ctx, t, cs, ns, "website-apply")

	// Run 2: killed while the standby it restarted comes up.
	r2 := startApply(ctx, t, env, repo)
	m := r2.waitLine(ctx, t, regexp.MustCompile(`^  \d+\. restart-instance (website-\d) .*…$`))
	name := m[1]
	old := hist.first(name)
	var p *corev1.Pod
	waitUntil(ctx, t, "a new pod "+name, 50*time.Millisecond, func() bool {
		if r2.exited() {
			t.Fatalf("run 2 ended before %s was replaced:\n%s", name, r2.output())
		}
		got, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && got.UID != old {
			p = got
			return true
		}
		return false
	})
	r2.kill(t)
	outputs = append(outputs, r2.output())
	t.Logf("run 2, killed when the new %s was %s:\n%s", name, podState(*p), r2.output())
	if isReady(*p) {
		t.Logf("note: the new %s was already Ready when run 2 was killed", name)
	}
	waitApplyLockFree(ctx, t, cs, ns, "website-apply")

	// Run 3: a second apply while it runs is refused at once; killed right
	// after it triggered the switchover.
	r3 := startApply(ctx, t, env, repo)
	r3.waitLine(ctx, t, regexp.MustCompile(`^  \d+\. \S+.* …$`))
	type result struct {
		out  string
		code int
		took time.Duration
	}
	second := make(chan result, 1)
	r := startApply(ctx, t, env, repo)
	go func() {
		start := time.Now()
		<-r.done
		second <- result{r.output(), r.cmd.ProcessState.ExitCode(), time.Since(start)}
	}()
	var target string // the planner picks the standby with the least lag
	waitUntil(ctx, t, "the switchover is triggered (the Lease's target moves)", 20*time.Millisecond, func() bool {
		if r3.exited() {
			t.Fatalf("run 3 ended before the switchover:\n%s", r3.output())
		}
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "website-primary", metav1.GetOptions{})
		if err == nil && l.Annotations[podcontract.AnnTargetPrimary] != "website-0" {
			target = l.Annotations[podcontract.AnnTargetPrimary]
			return true
		}
		return false
	})
	r3.kill(t)
	outputs = append(outputs, r3.output())
	t.Logf("run 3, killed after the switchover to %s was triggered:\n%s", target, r3.output())
	res := <-second
	if res.code != 1 || !strings.Contains(res.out, "is being applied by "+r3.owner()) || res.took > killedLock {
		t.Errorf("a second apply while run 3 ran: exit %d after %s, want 1 at once naming %q:\n%s", res.code, res.took.Round(time.Millisecond), r3.owner(), res.out)
	}
	waitApplyLockFree(ctx, t, cs, ns, "website-apply")

	// Run 4 finishes: only the former primary is left.
	out, code = pgsyncApply(ctx, t, env, repo)
	outputs = append(outputs, out)
	t.Logf("run 4:\n%s", out)
	if code != 0 {
		t.Fatalf("run 4 exited %d", code)
	}
	// Run 3 may have died inside the switchover's apply, after the Lease
	// and before the disruption budgets: then update-objects puts them
	// back first, as drift.
	got := startedSteps(out)
	if len(got) == 2 && got[0] == "update-objects" && strings.Contains(out, "undo drift in objects pgsync owns: PodDisruptionBudget") {
		got = got[1:]
	}
	if strings.Join(got, ",") != "restart-instance website-0" {
		t.Errorf("run 4 started %q, want only restart-instance website-0 (the rest was done), after an update-objects only to undo drift", startedSteps(out))
	}
	if out, code := pgsyncApply(ctx, t, env, repo); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("apply after run 4: exit %d, want no changes:\n%s", code, out)
	}
	hist.stop()

	checkNoStepRepeated(t, outputs)
	checkAllAt(ctx, t, cs, ns, 3, image1520, target)
	checkBudgets(ctx, t, cs, ns, "website", target)
	hist.check(t, []string{"website-0", "website-1", "website-2"}, 1, []string{"website-0", target})
	conn = instConnect(ctx, t, superDSNOf(ctx, t, cs, ns, super, target))
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n); err != nil || n != 1000 {
		t.Errorf("rows written before the rollout: %d (%v), want 1000", n, err)
	}
}

// bgApply is a `pgsync apply` running in the background.
type bgApply struct {
	cmd  *osexec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (b *bgApply) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *bgApply) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// killedLock is the --lock-duration of the runs startApply starts (to be
// killed): the next run waits out their lock, and 30 s three times was a
// minute of the tier doing nothing.
const killedLock = 12 * time.Second

func startApply(ctx context.Context, t *testing.T, env *kubeenv.Env, repo *gitRepo) *bgApply {
	t.Helper()
	b := &bgApply{done: make(chan struct{})}
	b.cmd = osexec.CommandContext(ctx, insttest.Binary(t), "apply", "--auto-approve", "--repo", repo.dir, "--path", "clusters",
		"--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace,
		"--instance-image", pgsyncImage, "--instance-image-pull-policy", "Always", "--lock-duration", killedLock.String())
	b.cmd.Stdout, b.cmd.Stderr = b, b
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start pgsync apply: %v", err)
	}
	go func() { defer close(b.done); _ = b.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

func (b *bgApply) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// owner is the holder name the run writes in the apply Lease.
func (b *bgApply) owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("pgsync-apply %s/%d", host, b.cmd.Process.Pid)
}

// waitLine waits until a line of the output matches re and returns the
// match; it fails if the run ends first.
func (b *bgApply) waitLine(ctx context.Context, t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		for _, line := range strings.Split(b.output(), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		}
		select {
		case <-b.done:
			t.Fatalf("pgsync apply ended (%v) before printing a line matching %s:\n%s", b.cmd.ProcessState, re, b.output())
		case <-ctx.Done():
			t.Fatalf("waiting for a line matching %s: %v\n%s", re, ctx.Err(), b.output())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL: no deferred release, no last event.
func (b *bgApply) kill(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
		t.Fatalf("pgsync apply had already ended (%v) when it was to be killed:\n%s", b.cmd.ProcessState, b.output())
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done
}

// waitApplyLockFree waits until the apply Lease name can be taken: free,
// or not renewed for its duration (a killed holder).
func waitApplyLockFree(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("apply Lease %s: %v", name, err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return
	}
	expires := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second + 200*time.Millisecond)
	t.Logf("waiting %.1f s for the lock of %s to expire", time.Until(expires).Seconds(), *l.Spec.HolderIdentity)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(time.Until(expires)):
	}
}

// waitUntil polls cond for at most two minutes.
func waitUntil(ctx context.Context, t *testing.T, what string, poll time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v", what, ctx.Err())
		case <-time.After(poll):
		}
	}
}

var progressLine = regexp.MustCompile(`^  \d+\. ([a-z-]+)(?: ([a-z0-9-]+))?.* …$`)

// startedSteps lists "action instance" of each step apply started, in
// order, from its progress lines.
func startedSteps(out string) []string {
	var steps []string
	for _, line := range strings.Split(out, "\n") {
		if m := progressLine.FindStringSubmatch(line); m != nil {
			steps = append(steps, strings.TrimSpace(m[1]+" "+m[2]))
		}
	}
	return steps
}

var doneLine = regexp.MustCompile(`^  \d+\. ([a-z-]+)(?: ([a-z0-9-]+))?.*: done in `)

// checkNoStepRepeated: no step a run finished is started by a later run
// (but update-objects, which a later run plans again to undo drift a
// killed run left).
func checkNoStepRepeated(t *testing.T, outputs []string) {
	t.Helper()
	done := map[string]int{}
	for i, out := range outputs {
		for _, s := range startedSteps(out) {
			if run, ok := done[s]; ok && s != "update-objects" {
				t.Errorf("run %d started %s, which run %d had done", i+1, s, run)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if m := doneLine.FindStringSubmatch(line); m != nil {
				done[strings.TrimSpace(m[1]+" "+m[2])] = i + 1
			}
		}
	}
}

// history records, while a test runs, every pod UID seen per instance,
// the primary Lease's holders in order and its transitions.
type history struct {
	mu               sync.Mutex
	uids             map[string][]types.UID
	restarts         map[types.UID]int32
	holders          []string
	transitions0     int32
	transitions      int32
	cancel           context.CancelFunc
	done             chan struct{}
	cluster, ns      string
	cs               kubernetes.Interface
	lastErr          error
	firstTransitions bool
}

func recordHistory(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string) *history {
	t.Helper()
	h := &history{uids: map[string][]types.UID{}, restarts: map[types.UID]int32{}, cluster: cluster, ns: ns, cs: cs, done: make(chan struct{})}
	h.poll(ctx)
	if h.lastErr != nil {
		t.Fatal(h.lastErr)
	}
	rctx, cancel := context.WithCancel(ctx)
	h.cancel = cancel
	go func() {
		defer close(h.done)
		for {
			select {
			case <-rctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			h.poll(rctx)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *history) poll(ctx context.Context) {
	list, err := h.cs.CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + h.cluster})
	l, lerr := h.cs.CoordinationV1().Leases(h.ns).Get(ctx, h.cluster+"-primary", metav1.GetOptions{})
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || lerr != nil {
		if ctx.Err() == nil {
			h.lastErr = errors.Join(err, lerr)
		}
		return
	}
	for _, p := range list.Items {
		seen := h.uids[p.Name]
		if len(seen) == 0 || seen[len(seen)-1] != p.UID {
			h.uids[p.Name] = append(seen, p.UID)
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount > h.restarts[p.UID] {
				h.restarts[p.UID] = c.RestartCount
			}
		}
	}
	if holder := deref(l.Spec.HolderIdentity); holder != "" && (len(h.holders) == 0 || h.holders[len(h.holders)-1] != holder) {
		h.holders = append(h.holders, holder)
	}
	n := int32(0)
	if l.Spec.LeaseTransitions != nil {
		n = *l.Spec.LeaseTransitions
	}
	if !h.firstTransitions {
		h.transitions0, h.firstTransitions = n, true
	}
	h.transitions = n
}

func (h *history) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// first is the first UID seen of pod name.
func (h *history) first(name string) types.UID {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.uids[name]) == 0 {
		return ""
	}
	return h.uids[name][0]
}

// check: each pod was replaced exactly once, no container restarted in
// place, the Lease moved transitions times through holders.
func (h *history) check(t *testing.T, pods []string, transitions int32, holders []string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastErr != nil {
		t.Errorf("recording the history: %v", h.lastErr)
	}
	for _, name := range pods {
		if n := len(h.uids[name]); n != 2 {
			t.Errorf("%s: %d pods seen (%v), want 2: replaced exactly once", name, n, h.uids[name])
		}
	}
	for uid, n := range h.restarts {
		if n > 0 {
			t.Errorf("pod %s: a container restarted %d times in place", uid, n)
		}
	}
	if got := h.transitions - h.transitions0; got != transitions || strings.Join(h.holders, ",") != strings.Join(holders, ",") {
		t.Errorf("primary Lease: %d transitions through %v, want %d through %v", got, h.holders, transitions, holders)
	}
	t.Logf("history: pods %v; Lease holders %v, %d transitions", h.uids, h.holders, h.transitions-h.transitions0)
}
