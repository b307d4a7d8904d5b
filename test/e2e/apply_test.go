package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// websiteYAML is the article's cluster with the local images.
func websiteYAML(ns, image string, instances int, extra string) string {
	return clusterfile.Cluster{Name: "website", Namespace: ns, Image: image, Instances: instances,
		Description: "Cluster for the website", Extra: extra}.YAML()
}

// websiteTest is how the apply tests start: the test's namespace in the
// local cluster, a context bounded by timeout, the pods, their logs and
// the Events dumped when the test fails, and an empty Git repository.
func websiteTest(t *testing.T, timeout time.Duration) (context.Context, *kubeenv.Env, *gitRepo) {
	t.Helper()
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if t.Failed() {
			dumpPods(t, env.Client, env.Namespace, "website")
		}
	})
	return ctx, env, newGitRepo(t, env.Namespace)
}

// createWebsite commits content and creates the cluster with pgsync apply.
func createWebsite(ctx context.Context, t *testing.T, env *kubeenv.Env, repo *gitRepo, content, msg string) {
	t.Helper()
	repo.commit(content, msg)
	if out, code := pgsyncApply(ctx, t, env, repo); code != 0 {
		t.Fatalf("apply (create) exited %d:\n%s", code, out)
	}
}

// gitRepo is a real Git repository holding one Cluster file.
type gitRepo struct {
	t    *testing.T
	dir  string
	file string
}

func newGitRepo(t *testing.T, ns string) *gitRepo {
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.file = filepath.Join(r.dir, "clusters", ns, "website.yaml")
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) git(args ...string) {
	r.t.Helper()
	cmd := osexec.Command("git", append([]string{"-C", r.dir, "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// output runs git and returns its stdout.
func (r *gitRepo) output(args ...string) string {
	r.t.Helper()
	out, err := osexec.Command("git", append([]string{"-C", r.dir}, args...)...).Output()
	if err != nil {
		r.t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}

func (r *gitRepo) commit(content, msg string) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Dir(r.file), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(r.file, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
}

// pgsyncApply runs the real CLI's apply and returns its output and exit
// code.
func pgsyncApply(ctx context.Context, t *testing.T, env *kubeenv.Env, repo *gitRepo, extra ...string) (string, int) {
	t.Helper()
	return pgsyncCLI(ctx, t, append([]string{"apply", "--auto-approve", "--repo", repo.dir, "--path", "clusters",
		"--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace,
		"--instance-image", pgsyncImage, "--instance-image-pull-policy", "Always"}, extra...)...)
}

// TestApplyRollingUpdate is the article's scenario through `pgsync apply`:
// the website cluster created primary first then each standby, then
// 15.18 → 15.20 → 15.18 under a continuous write load through
// website-rw: one write pause (the switchover), nothing answered
// read-only, no acknowledged commit lost; then a broken image halts the
// rollout with the primary untouched, and a fixing commit resumes.
func TestApplyRollingUpdate(t *testing.T) {
	ctx, env, repo := websiteTest(t, 25*time.Minute)
	cs, ns := env.Client, env.Namespace
	repo.commit(websiteYAML(ns, image1518, 3, ""), "website at 15.18")

	start := time.Now()
	out, code := pgsyncApply(ctx, t, env, repo)
	t.Logf("create: %.1f s\n%s", time.Since(start).Seconds(), out)
	if code != 0 {
		t.Fatalf("apply (create) exited %d", code)
	}
	checkCreatedInOrder(ctx, t, cs, ns)

	super := kubeenv.SecretPassword(ctx, t, cs, ns, "website-superuser")
	app := kubeenv.SecretPassword(ctx, t, cs, ns, "website-app")
	rw, err := cs.CoreV1().Services(ns).Get(ctx, "website-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rwDSN := dsn(rw.Spec.ClusterIP, "app", app, "app")
	conn := instConnect(ctx, t, rwDSN)
	mustExec(ctx, t, conn, "CREATE TABLE probe (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())")
	conn.Close(ctx)

	// kube-proxy syncs for every namespace: a previous test's namespace
	// still tearing its pods down would delay this test's -rw changes
	// (seen once in CI: read-only answers right after that teardown).
	othersGone(ctx, t, cs, ns)
	rollouts := []string{image1520, image1518}
	for i, image := range rollouts {
		w := &rwWriter{dsn: rwDSN}
		wctx, stopWriter := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.run(wctx) }()
		time.Sleep(time.Second)
		before := primaryOf(ctx, t, cs, ns)
		repo.commit(websiteYAML(ns, image, 3, ""), "website at "+image)
		var extra []string
		if i == 0 {
			// The first rollout goes through a saved plan: refused once
			// Git has moved, then made again and carried out as saved.
			saved := savePlan(ctx, t, env, repo)
			repo.commit(websiteYAML(ns, image, 3, "")+"# a comment\n", "a commit after the plan was saved")
			if out, code := pgsyncApply(ctx, t, env, repo, saved); code != 1 || !strings.Contains(out, "stale") {
				t.Errorf("apply of a saved plan after a new commit: exit %d, want 1 and stale:\n%s", code, out)
			}
			extra = []string{savePlan(ctx, t, env, repo)}
		}
		var watch *statusWatch
		if i == 0 {
			watch = watchStatus(ctx, t, env)
		}
		start := time.Now()
		out, code := pgsyncApply(ctx, t, env, repo, extra...)
		took := time.Since(start)
		time.Sleep(time.Second)
		stopWriter()
		<-done
		t.Logf("rollout %d to %s: %.1f s\n%s", i+1, image, took.Seconds(), out)
		if code != 0 {
			t.Fatalf("apply (rollout to %s) exited %d", image, code)
		}
		after := primaryOf(ctx, t, cs, ns)
		if after == before {
			t.Errorf("rollout %d: primary still %s: no switchover", i+1, after)
		}
		if watch != nil {
			watch.check(t, before, after)
		}
		checkWrites(ctx, t, w, superDSNOf(ctx, t, cs, ns, super, after))
		checkAllAt(ctx, t, cs, ns, 3, image, after)
		checkHASlots(ctx, t, superDSNOf(ctx, t, cs, ns, super, after), after)
		// Converged: a second apply has nothing to do.
		if out, code := pgsyncApply(ctx, t, env, repo); code != 0 || !strings.Contains(out, "No changes") {
			t.Errorf("apply after rollout %d: exit %d, want no changes:\n%s", i+1, code, out)
		}
	}

	// A broken image: the first standby restarted onto it never becomes
	// ready; the rollout halts and the primary is untouched and writable.
	primary := primaryOf(ctx, t, cs, ns)
	uid := podUID(ctx, t, cs, ns, primary)
	repo.commit(websiteYAML(ns, "localhost:5000/postgresql:15.99-missing", 3, ""), "a tag that does not exist")
	out, code = pgsyncApply(ctx, t, env, repo, "--step-timeout", "45s")
	t.Logf("broken image:\n%s", out)
	if code != 1 || !strings.Contains(out, "halted") {
		t.Fatalf("apply of a broken image: exit %d, want 1 and halted", code)
	}
	if podUID(ctx, t, cs, ns, primary) != uid {
		t.Errorf("the primary %s was touched by a halted rollout", primary)
	}
	conn = instConnect(ctx, t, rwDSN)
	mustExec(ctx, t, conn, "INSERT INTO probe (seq) VALUES (-1)")
	conn.Close(ctx)
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "website", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sts.Annotations[podcontract.AnnHalted] == "" {
		t.Errorf("halted StatefulSet has no %s annotation", podcontract.AnnHalted)
	}
	// A rerun of the same commit touches nothing further.
	out, code = pgsyncApply(ctx, t, env, repo, "--step-timeout", "45s")
	if code != 1 || podUID(ctx, t, cs, ns, primary) != uid {
		t.Errorf("rerun on a halted rollout: exit %d, primary replaced %v:\n%s", code, podUID(ctx, t, cs, ns, primary) != uid, out)
	}
	// The fixing commit resumes.
	repo.commit(websiteYAML(ns, image1518, 3, ""), "back to 15.18")
	out, code = pgsyncApply(ctx, t, env, repo)
	t.Logf("fix:\n%s", out)
	if code != 0 {
		t.Fatalf("apply of the fixing commit exited %d", code)
	}
	checkAllAt(ctx, t, cs, ns, 3, image1518, primaryOf(ctx, t, cs, ns))
	if sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "website", metav1.GetOptions{}); err != nil || sts.Annotations[podcontract.AnnHalted] != "" {
		t.Errorf("halt marker after the fix: %v (err %v)", sts.Annotations[podcontract.AnnHalted], err)
	}
}

// statusWatch is `pgsync status -w` running beside a rollout.
type statusWatch struct {
	cmd *osexec.Cmd
	out *bytes.Buffer
}

func watchStatus(ctx context.Context, t *testing.T, env *kubeenv.Env) *statusWatch {
	t.Helper()
	w := &statusWatch{out: &bytes.Buffer{}}
	w.cmd = osexec.CommandContext(ctx, insttest.Binary(t), "status", env.Namespace+"/website", "-w", "--interval", "500ms",
		"--kubeconfig", env.Kubeconfig)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

// check stops the watch: it printed the cluster again as it changed, and
// its snapshots show the primary moving from before to after.
func (w *statusWatch) check(t *testing.T, before, after string) {
	t.Helper()
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
	snaps := strings.Split(w.out.String(), "\n--- ")
	first, last := snaps[0], snaps[len(snaps)-1]
	t.Logf("status -w printed %d snapshots", len(snaps))
	if len(snaps) < 3 || !strings.Contains(first, "primary "+before) || !strings.Contains(last, "primary "+after) {
		t.Errorf("status -w: %d snapshots, first names primary %s: %v, last names %s: %v; output:\n%s", len(snaps),
			before, strings.Contains(first, "primary "+before), after, strings.Contains(last, "primary "+after), w.out.String())
	}
}

// savePlan runs `pgsync plan --live --format json --out FILE`.
func savePlan(ctx context.Context, t *testing.T, env *kubeenv.Env, repo *gitRepo) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "plan.json")
	cmd := osexec.CommandContext(ctx, insttest.Binary(t), "plan", "--repo", repo.dir, "--path", "clusters",
		"--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace, "--format", "json", "--out", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgsync plan --out: %v\n%s", err, out)
	}
	return file
}

// othersGone waits (at most two minutes) until no other namespace is
// being deleted.
func othersGone(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, n := range list.Items {
			if n.Name != ns && n.Status.Phase == corev1.NamespaceTerminating {
				busy = true
			}
		}
		if !busy {
			return
		}
	}
	t.Log("another namespace is still being deleted after two minutes; going on")
}

// checkCreatedInOrder: each standby's pod was created after the previous
// instance became Ready.
func checkCreatedInOrder(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	var readyAt []time.Time
	for i := 0; i < 3; i++ {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("website-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created := p.CreationTimestamp.Time
		if i > 0 && created.Before(readyAt[i-1]) {
			t.Errorf("website-%d created at %s, before website-%d was Ready (%s)", i, created.Format(time.RFC3339), i-1, readyAt[i-1].Format(time.RFC3339))
		}
		var ready time.Time
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = c.LastTransitionTime.Time
			}
		}
		readyAt = append(readyAt, ready)
		t.Logf("website-%d created %s, Ready %s", i, created.Format("15:04:05"), ready.Format("15:04:05"))
	}
}

func primaryOf(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "website-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		t.Fatal("website-primary has no holder")
	}
	return *l.Spec.HolderIdentity
}

func podUID(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(p.UID)
}

func superDSNOf(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, password, pod string) string {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dsn(p.Status.PodIP, "postgres", password, "app")
}

// checkWrites: every acknowledged commit is on the new primary, no write
// was answered read-only, and there was one pause (the switchover).
func checkWrites(ctx context.Context, t *testing.T, w *rwWriter, primaryDSN string) {
	t.Helper()
	acked, gap, _, errs := w.result()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	for _, e := range errs {
		if strings.Contains(e, "read-only") {
			t.Errorf("a write was answered read-only: %s", e)
			break
		}
	}
	pauses := w.pauses(200 * time.Millisecond)
	t.Logf("writes: %d acknowledged, longest pause %.0f ms, interruptions (gaps over 200 ms, those under 3 s apart joined): %v, %d failed attempts: %s",
		len(acked), float64(gap.Milliseconds()), pauses, len(errs), summarize(errs))
	if len(pauses) > 1 {
		t.Errorf("%d write interruptions (gaps over 200 ms, those under 3 s apart joined), want one (the switchover): %v", len(pauses), pauses)
	}
	c := instConnect(ctx, t, primaryDSN)
	defer c.Close(ctx)
	present := map[int64]bool{}
	rows, err := c.Query(ctx, "SELECT seq FROM probe")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		present[s] = true
	}
	rows.Close()
	lost := 0
	for _, s := range acked {
		if !present[s] {
			lost++
		}
	}
	if lost != 0 {
		t.Errorf("%d of %d acknowledged commits lost", lost, len(acked))
	}
	if _, err := c.Exec(ctx, "TRUNCATE probe"); err != nil {
		t.Fatal(err)
	}
}

// pauses lists the interruptions of writes: gaps between acknowledged
// commits longer than min, where gaps less than 3 s apart are one
// interruption (a switchover can show as two: the old primary's stop, then
// the route to the new one settling, with a few commits between), written
// as their gaps joined by "+".
func (w *rwWriter) pauses(min time.Duration) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	const apart = 3 * time.Second
	var out []string
	var lastEnd time.Time
	for i := 1; i < len(w.ackedAt); i++ {
		d := w.ackedAt[i].Sub(w.ackedAt[i-1])
		if d <= min {
			continue
		}
		gap := d.Round(time.Millisecond).String()
		if len(out) > 0 && w.ackedAt[i-1].Sub(lastEnd) < apart {
			out[len(out)-1] += "+" + gap
		} else {
			out = append(out, gap)
		}
		lastEnd = w.ackedAt[i]
	}
	return out
}

// checkAllAt: the website cluster's n pods all run image, primary is the
// primary and every other pod a streaming standby.
func checkAllAt(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, n int, image, primary string) {
	t.Helper()
	images := map[string]string{}
	for i := range n {
		images[fmt.Sprintf("website-%d", i)] = image
	}
	checkInstances(ctx, t, cs, ns, "website", n, primary, images)
}

func dumpPods(t *testing.T, cs kubernetes.Interface, ns, cluster string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + cluster})
	if err != nil {
		t.Logf("dump: %v", err)
		return
	}
	for _, p := range list.Items {
		t.Logf("pod %s phase %s image %s revision %s", p.Name, p.Status.Phase, p.Spec.Containers[0].Image, p.Annotations[podcontract.AnnRevision])
		raw, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: "postgres", TailLines: ptrTo(int64(30))}).DoRaw(ctx)
		if err == nil {
			t.Logf("%s log:\n%s", p.Name, raw)
		}
	}
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range evs.Items {
			t.Logf("event %s %s %s: %s", e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
		}
	}
}
