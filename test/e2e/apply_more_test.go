package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/prereq"
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

// TestApplySupervisedConfigVolumesScale runs one 2-instance cluster
// through, in turn: a supervised primary update (apply stops before the
// primary with exit 3 and the hint, a rerun touches nothing, `pgsync
// approve`, the next apply switches over and finishes); a reload-only
// parameter (work_mem) loaded everywhere with no pod replaced; a restart
// parameter (shared_buffers) rolled like an image change; a volume resize
// 1Gi → 2Gi with no pod replaced and no row lost; a scale up 2 → 4 (one
// new standby at a time, each ready and streaming); a `pgsync switchover
// --to website-3`; a scale down 4 → 2 that first moves the primary off
// website-3, then removes the highest ordinals, keeping their volumes;
// and disruption budgets left on the wrong instance put back.
func TestApplySupervisedConfigVolumesScale(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace
	t.Cleanup(func() {
		if t.Failed() {
			dumpPods(t, cs, ns, "website")
		}
	})
	key := ns + "/website"
	spec := clusterSpec{name: "website", image: image1518, instances: 2, extra: "  primaryUpdateStrategy: supervised\n"}
	repo := newGitRepo(t, ns)
	createWebsite(ctx, t, env, repo, spec.yaml(ns), "website, supervised")
	super := kubeenv.SecretPassword(ctx, t, cs, ns, "website-superuser")
	conn := instConnect(ctx, t, superDSNOf(ctx, t, cs, ns, super, "website-0"))
	mustExec(ctx, t, conn, "CREATE TABLE kept AS SELECT generate_series(1, 1000) AS n")
	conn.Close(ctx)
	run := func(what string, extra ...string) (string, int) {
		t.Helper()
		start := time.Now()
		out, code := pgsyncApply(ctx, t, env, repo, extra...)
		t.Logf("%s: exit %d in %.1f s\n%s", what, code, time.Since(start).Seconds(), out)
		return out, code
	}

	// Supervised: the standby is updated, the primary waits.
	uids := clusterPodUIDs(ctx, t, cs, ns, "website")
	spec.image = image1520
	repo.commit(spec.yaml(ns), "website at 15.20")
	out, code := run("supervised rollout")
	if code != 3 || !strings.Contains(out, "pgsync approve "+key) {
		t.Fatalf("supervised rollout: exit %d, want 3 and the hint `pgsync approve %s`", code, key)
	}
	now := clusterPodUIDs(ctx, t, cs, ns, "website")
	if now["website-0"] != uids["website-0"] || now["website-1"] == uids["website-1"] || primaryOf(ctx, t, cs, ns) != "website-0" {
		t.Errorf("waiting for approval: website-0 replaced %v (want false), website-1 replaced %v (want true), primary %s (want website-0)",
			now["website-0"] != uids["website-0"], now["website-1"] != uids["website-1"], primaryOf(ctx, t, cs, ns))
	}
	checkInstances(ctx, t, cs, ns, "website", 2, "website-0", map[string]string{"website-0": image1518, "website-1": image1520})
	if out, code := run("supervised rollout, again before approval"); code != 3 || len(startedSteps(out)) != 0 {
		t.Errorf("apply before approval: exit %d, steps %q; want 3 and none", code, startedSteps(out))
	}
	if got := clusterPodUIDs(ctx, t, cs, ns, "website"); got["website-0"] != now["website-0"] || got["website-1"] != now["website-1"] {
		t.Errorf("an apply waiting for approval replaced a pod: %v, then %v", now, got)
	}
	if out, code := pgsyncCLI(ctx, t, "approve", key, "--kubeconfig", env.Kubeconfig); code != 0 || !strings.Contains(out, "approved") {
		t.Fatalf("pgsync approve: exit %d:\n%s", code, out)
	}
	out, code = run("supervised rollout, approved")
	if code != 0 || strings.Join(startedSteps(out), ",") != "switchover website-0,restart-instance website-0" {
		t.Fatalf("apply after approval: exit %d, steps %q; want 0, the switchover and website-0's restart", code, startedSteps(out))
	}
	checkInstances(ctx, t, cs, ns, "website", 2, "website-1", map[string]string{"website-0": image1520, "website-1": image1520})
	checkReplacedOnce(t, uids, clusterPodUIDs(ctx, t, cs, ns, "website"))

	// A reload-only parameter: loaded everywhere when apply returns, no
	// pod replaced.
	uids = clusterPodUIDs(ctx, t, cs, ns, "website")
	spec.params = map[string]string{"work_mem": "12MB"}
	repo.commit(spec.yaml(ns), "work_mem 12MB")
	out, code = run("reload-only parameter")
	if code != 0 || strings.Join(startedSteps(out), ",") != "update-objects,reload-config" {
		t.Errorf("work_mem: exit %d, steps %q; want 0, update-objects and reload-config", code, startedSteps(out))
	}
	for name := range uids {
		if got := setting(ctx, t, superDSNOf(ctx, t, cs, ns, super, name), "work_mem"); got != "12MB" {
			t.Errorf("%s: work_mem %s once apply returned, want 12MB", name, got)
		}
	}
	if got := clusterPodUIDs(ctx, t, cs, ns, "website"); fmt.Sprint(got) != fmt.Sprint(uids) {
		t.Errorf("a reload-only change replaced pods: %v, then %v", uids, got)
	}

	// A restart parameter rolls the cluster like an image change (and the
	// cluster is no longer supervised: no approval).
	uids = clusterPodUIDs(ctx, t, cs, ns, "website")
	lease := primaryLease(ctx, t, cs, ns)
	spec.params["shared_buffers"] = "48MB"
	spec.extra = ""
	repo.commit(spec.yaml(ns), "shared_buffers 48MB, unsupervised")
	out, code = run("restart parameter")
	if want := "update-objects,restart-instance website-0,switchover website-1,restart-instance website-1"; code != 0 || strings.Join(startedSteps(out), ",") != want {
		t.Errorf("shared_buffers: exit %d, steps %q; want 0 and %s", code, startedSteps(out), want)
	}
	checkReplacedOnce(t, uids, clusterPodUIDs(ctx, t, cs, ns, "website"))
	if got := primaryLease(ctx, t, cs, ns); got.holder != "website-0" || got.transitions != lease.transitions+1 {
		t.Errorf("after the shared_buffers rollout: primary %s, Lease transitions %d → %d; want website-0 and one transition", got.holder, lease.transitions, got.transitions)
	}
	for name := range uids {
		dsn := superDSNOf(ctx, t, cs, ns, super, name)
		if got := setting(ctx, t, dsn, "shared_buffers"); got != "48MB" {
			t.Errorf("%s: shared_buffers %s, want 48MB", name, got)
		}
		if got := setting(ctx, t, dsn, "work_mem"); got != "12MB" {
			t.Errorf("%s: work_mem %s after its restart, want 12MB", name, got)
		}
	}

	// A volume resize: each claim grows in place, no pod is replaced.
	uids = clusterPodUIDs(ctx, t, cs, ns, "website")
	spec.size = "2Gi"
	repo.commit(spec.yaml(ns), "storage 2Gi")
	out, code = run("volume resize")
	if want := "update-objects,resize-volume website-0,resize-volume website-1"; code != 0 || strings.Join(startedSteps(out), ",") != want {
		t.Errorf("resize: exit %d, steps %q; want 0 and %s", code, startedSteps(out), want)
	}
	checkClaims(ctx, t, cs, ns, "website", []int{0, 1}, "2Gi")
	if got := clusterPodUIDs(ctx, t, cs, ns, "website"); fmt.Sprint(got) != fmt.Sprint(uids) {
		t.Errorf("a volume resize replaced pods: %v, then %v", uids, got)
	}
	checkRows(ctx, t, superDSNOf(ctx, t, cs, ns, super, "website-0"), 1000)

	// Scale up 2 → 4: one new standby at a time, from the new template.
	spec.instances = 4
	repo.commit(spec.yaml(ns), "4 instances")
	out, code = run("scale up")
	if want := "update-objects,create-instance website-2,create-instance website-3"; code != 0 || strings.Join(startedSteps(out), ",") != want {
		t.Errorf("scale up: exit %d, steps %q; want 0 and %s", code, startedSteps(out), want)
	}
	checkCreatedAfterReady(ctx, t, cs, ns, "website-1", "website-2")
	checkCreatedAfterReady(ctx, t, cs, ns, "website-2", "website-3")
	checkInstances(ctx, t, cs, ns, "website", 4, "website-0", nil)
	checkClaims(ctx, t, cs, ns, "website", []int{2, 3}, "2Gi")
	checkRows(ctx, t, superDSNOf(ctx, t, cs, ns, super, "website-3"), 1000)

	// The primary to the highest ordinal, on demand.
	if out, code := pgsyncCLI(ctx, t, "switchover", key, "--to", "website-3", "--kubeconfig", env.Kubeconfig); code != 0 {
		t.Fatalf("pgsync switchover --to website-3: exit %d:\n%s", code, out)
	}
	if got := primaryOf(ctx, t, cs, ns); got != "website-3" {
		t.Fatalf("after pgsync switchover --to website-3 the primary is %s", got)
	}
	if out, code := run("after the switchover"); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("apply after a switchover: exit %d, want no changes (the primary's place is not drift)", code)
	}

	// Scale down 4 → 2: the primary leaves website-3 first.
	uids = clusterPodUIDs(ctx, t, cs, ns, "website")
	spec.instances = 2
	repo.commit(spec.yaml(ns), "2 instances")
	out, code = run("scale down")
	steps := startedSteps(out)
	if code != 0 || len(steps) != 4 || steps[0] != "update-objects" || steps[1] != "switchover website-3" ||
		steps[2] != "remove-instance website-3" || steps[3] != "remove-instance website-2" {
		t.Errorf("scale down: exit %d, steps %q; want 0, update-objects, switchover website-3, remove website-3 then website-2", code, steps)
	}
	primary := primaryOf(ctx, t, cs, ns)
	if primary != "website-0" && primary != "website-1" {
		t.Errorf("after the scale down the primary is %s", primary)
	}
	checkInstances(ctx, t, cs, ns, "website", 2, primary, nil)
	got := clusterPodUIDs(ctx, t, cs, ns, "website")
	for _, name := range []string{"website-0", "website-1"} {
		if got[name] != uids[name] {
			t.Errorf("the scale down replaced %s", name)
		}
	}
	checkClaims(ctx, t, cs, ns, "website", []int{2, 3}, "2Gi") // kept
	checkRows(ctx, t, superDSNOf(ctx, t, cs, ns, super, primary), 1000)
	if out, code := run("converged"); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("apply after the scale down: exit %d, want no changes", code)
	}

	// The disruption budgets on the other instance, as a run killed
	// between the switchover's Lease and its budgets leaves them (seen in
	// TestApplyKilledResumes): apply undoes the drift, then has nothing
	// to do.
	other := "website-0"
	if primary == other {
		other = "website-1"
	}
	pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
	for name, patch := range map[string]string{
		"website-primary": fmt.Sprintf(`{"spec":{"selector":{"matchLabels":{%q:%q}}}}`, podcontract.LabelPodName, other),
		"website-standby": fmt.Sprintf(`{"spec":{"selector":{"matchExpressions":[{"key":%q,"operator":"NotIn","values":[%q]}]}}}`, podcontract.LabelPodName, other),
	} {
		if _, err := pdbs.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "e2e-hand-edit"}); err != nil {
			t.Fatalf("hand-edit PodDisruptionBudget %s: %v", name, err)
		}
	}
	out, code = run("budgets on the wrong instance")
	if code != 0 || strings.Join(startedSteps(out), ",") != "update-objects" {
		t.Errorf("drifted budgets: exit %d, steps %q; want 0 and update-objects", code, startedSteps(out))
	}
	checkBudgets(ctx, t, cs, ns, "website", primary)
	if out, code := run("drift undone"); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("apply after the drift was undone: exit %d, want no changes", code)
	}
}

// TestApplyLeastPrivilegeOrphanPrune runs pgsync apply with nothing but a
// token of pgsync/pgsync-apply (deploy/apply, applied as documented):
// it creates two clusters, reloads and rolls one (15.18 → 15.20, a
// switchover), grows the other's volume, approves and switches over on
// demand (`pgsync approve`, `pgsync switchover`); put back in Git after
// it was orphaned, a running cluster is refused until it is labelled as
// the refusal says, then is pgsync's again with its pods and primary;
// and, as each leaves Git, one is orphaned (it keeps running, no later
// apply sees it) and, with --prune, the other's workloads and Services
// are deleted while its volume and Secrets stay.
func TestApplyLeastPrivilegeOrphanPrune(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	kubectl, err := osexec.LookPath("kubectl")
	if err != nil {
		prereq.Missing(t, "kubectl is not installed: deploy/apply is applied with kubectl apply -k, as documented")
	}
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace
	t.Cleanup(func() {
		if t.Failed() {
			dumpPods(t, cs, ns, "a")
			dumpPods(t, cs, ns, "b")
		}
	})
	if out, err := osexec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig, "apply", "-k", "../../deploy/apply").CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k deploy/apply: %v\n%s", err, out)
	}
	tok, err := cs.CoreV1().ServiceAccounts("pgsync").CreateToken(ctx, "pgsync-apply",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of pgsync/pgsync-apply: %v", err)
	}
	lp := *env
	lp.Kubeconfig = tokenKubeconfig(t, env.Config, tok.Status.Token)
	lpCfg := rest.AnonymousClientConfig(env.Config)
	lpCfg.BearerToken = tok.Status.Token
	lpClient, err := kubernetes.NewForConfig(lpCfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := lpClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if want := "system:serviceaccount:pgsync:pgsync-apply"; err != nil || who.Status.UserInfo.Username != want {
		t.Fatalf("the token authenticates as %v (%v), want %s", who, err, want)
	}
	// The binding is in RBAC's cache a moment after it is created.
	waitUntil(ctx, t, "the token may list StatefulSets", 200*time.Millisecond, func() bool {
		_, err := lpClient.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
		return err == nil
	})

	repo := newGitRepo(t, ns)
	a := clusterSpec{name: "a", image: image1518, instances: 2}
	b := clusterSpec{name: "b", image: image1518, instances: 1}
	// The README keeps clusters/ in Git once the last cluster leaves it
	// (apply refuses a --path that does not exist).
	repo.commitFiles("a and b", map[string]string{"a.yaml": a.yaml(ns), "b.yaml": b.yaml(ns), "../README.md": "clusters\n"})
	run := func(what string, extra ...string) (string, int) {
		t.Helper()
		start := time.Now()
		out, code := pgsyncApply(ctx, t, &lp, repo, extra...)
		t.Logf("%s (as pgsync-apply): exit %d in %.1f s\n%s", what, code, time.Since(start).Seconds(), out)
		// What fails only in a log line (an Event, a lock renewal) counts.
		if strings.Contains(strings.ToLower(out), "forbidden") {
			t.Errorf("%s: a request of pgsync-apply was forbidden", what)
		}
		return out, code
	}
	if _, code := run("create a and b"); code != 0 {
		t.Fatalf("create as pgsync-apply exited %d", code)
	}
	// Really not admin: no Secret can be read.
	if _, err := lpClient.CoreV1().Secrets(ns).Get(ctx, "a-superuser", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get Secret a-superuser as pgsync-apply: %v, want Forbidden", err)
	}
	checkInstances(ctx, t, cs, ns, "a", 2, "a-0", nil)
	checkInstances(ctx, t, cs, ns, "b", 1, "b-0", nil)

	// Every other step kind: a reload and a rolling update of a, b's
	// volume grown.
	a.image, a.params = image1520, map[string]string{"work_mem": "12MB"}
	b.size = "2Gi"
	repo.commitFiles("a at 15.20 with work_mem 12MB, b on 2Gi", map[string]string{"a.yaml": a.yaml(ns), "b.yaml": b.yaml(ns)})
	out, code := run("roll a, grow b")
	if want := "update-objects,reload-config,restart-instance a-1,switchover a-0,restart-instance a-0,update-objects,resize-volume b-0"; code != 0 || strings.Join(startedSteps(out), ",") != want {
		t.Fatalf("roll a, grow b as pgsync-apply: exit %d, steps %q; want 0 and %s", code, startedSteps(out), want)
	}
	checkInstances(ctx, t, cs, ns, "a", 2, "a-1", map[string]string{"a-0": image1520, "a-1": image1520})
	checkClaims(ctx, t, cs, ns, "b", []int{0}, "2Gi")
	if out, code := pgsyncCLI(ctx, t, "approve", ns+"/a", "--kubeconfig", lp.Kubeconfig); code != 0 {
		t.Errorf("pgsync approve as pgsync-apply: exit %d:\n%s", code, out)
	}

	// a leaves Git and comes back while it runs (primary a-1): apply
	// refuses to create it over its running StatefulSet and says how to
	// take it back; labelled so, it is pgsync's again as it runs, its
	// pods and its primary kept.
	uids := clusterPodUIDs(ctx, t, cs, ns, "a")
	repo.commitFiles("a leaves", map[string]string{"a.yaml": ""})
	if out, code := run("a removed"); code != 0 || !strings.Contains(out, "1 orphaned") {
		t.Errorf("a removed from Git: exit %d, want 0 and 1 orphaned", code)
	}
	repo.commitFiles("a is back", map[string]string{"a.yaml": a.yaml(ns)})
	label := podcontract.LabelManagedBy + "=" + podcontract.ManagedBy
	if out, code := run("a back"); code != 1 || !strings.Contains(out, "label statefulset a "+label) {
		t.Errorf("a back in Git over its orphaned StatefulSet: exit %d, want 1 and how to label it", code)
	}
	if sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "a", metav1.GetOptions{}); err != nil || deref32(sts.Spec.Replicas) != 2 {
		t.Errorf("StatefulSet a after the refusal: %v, replicas %d; want 2 (its pods kept)", err, deref32(sts.Spec.Replicas))
	}
	if out, err := osexec.CommandContext(ctx, kubectl, "--kubeconfig", lp.Kubeconfig, "-n", ns, "label", "statefulset", "a", label).CombinedOutput(); err != nil {
		t.Fatalf("kubectl label statefulset a %s as pgsync-apply: %v\n%s", label, err, out)
	}
	if out, code := run("a labelled"); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("apply once a is labelled again: exit %d, want no changes", code)
	}
	if l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "a-primary", metav1.GetOptions{}); err != nil || deref(l.Spec.HolderIdentity) != "a-1" || l.Annotations[podcontract.AnnTargetPrimary] != "a-1" {
		t.Errorf("Lease a-primary of a taken back: %v; want holder and target a-1", err)
	}
	if got := clusterPodUIDs(ctx, t, cs, ns, "a"); fmt.Sprint(got) != fmt.Sprint(uids) {
		t.Errorf("a, removed from Git and back, had its pods replaced: %v, then %v", uids, got)
	}

	if out, code := pgsyncCLI(ctx, t, "switchover", ns+"/a", "--kubeconfig", lp.Kubeconfig); code != 0 || primaryOfCluster(ctx, t, cs, ns, "a") != "a-0" {
		t.Errorf("pgsync switchover as pgsync-apply: exit %d, primary %s (want a-0):\n%s", code, primaryOfCluster(ctx, t, cs, ns, "a"), out)
	}

	// a leaves Git: orphaned, still running, then invisible to apply.
	uids = clusterPodUIDs(ctx, t, cs, ns, "a")
	repo.commitFiles("a leaves", map[string]string{"a.yaml": ""})
	out, code = run("a removed")
	if code != 0 || !strings.Contains(out, "1 orphaned") {
		t.Errorf("a removed from Git: exit %d, want 0 and 1 orphaned", code)
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "a", metav1.GetOptions{})
	if err != nil || sts.Labels[podcontract.LabelManagedBy] != "" {
		t.Errorf("orphaned StatefulSet a: %v, labels %v; want it there without %s", err, sts.Labels, podcontract.LabelManagedBy)
	}
	if got := clusterPodUIDs(ctx, t, cs, ns, "a"); fmt.Sprint(got) != fmt.Sprint(uids) {
		t.Errorf("orphaning a replaced its pods: %v, then %v", uids, got)
	}
	checkInstances(ctx, t, cs, ns, "a", 2, "a-0", nil)
	out, code = run("after the orphan")
	if code != 0 || !strings.Contains(out, "No changes") || strings.Contains(out, ns+"/a") {
		t.Errorf("apply after the orphan: exit %d, want no changes and no mention of %s/a", code, ns)
	}

	// b leaves Git, applied with --prune: workloads and Services gone,
	// the volume and the Secrets kept.
	repo.commitFiles("b leaves", map[string]string{"b.yaml": ""})
	out, code = run("b removed, --prune", "--prune")
	if code != 0 || !strings.Contains(out, "delete-cluster") {
		t.Errorf("b removed with --prune: exit %d, want 0 and delete-cluster", code)
	}
	checkPruned(ctx, t, cs, ns, "b")
	if out, code := run("after the prune", "--prune"); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("apply --prune after the prune: exit %d, want no changes", code)
	}
	// The orphan was never touched by --prune.
	checkInstances(ctx, t, cs, ns, "a", 2, "a-0", nil)
}

// clusterSpec is a test Cluster file: the article's small cluster with
// what a test changes.
type clusterSpec struct {
	name, image string
	instances   int
	size        string            // default 1Gi
	params      map[string]string // besides max_connections and shared_buffers
	extra       string            // more spec lines, indented two spaces
}

func (c clusterSpec) yaml(ns string) string {
	params := map[string]string{"max_connections": `"50"`, "shared_buffers": "32MB"}
	for k, v := range c.params {
		params[k] = v
	}
	var lines []string
	for k, v := range params {
		lines = append(lines, fmt.Sprintf("      %s: %s\n", k, v))
	}
	sort.Strings(lines)
	size := c.size
	if size == "" {
		size = "1Gi"
	}
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: %s
  namespace: %s
spec:
  imageName: %s
  instances: %d
  startDelay: 300
  stopDelay: 15
  storage:
    storageClass: standard
    size: %s
  postgresql:
    parameters:
%s  resources:
    requests: {cpu: 50m, memory: 128Mi}
%s`, c.name, ns, c.image, c.instances, size, strings.Join(lines, ""), c.extra)
}

// commitFiles writes (or, with "", removes) files next to the repo's
// Cluster file and commits them.
func (r *gitRepo) commitFiles(msg string, files map[string]string) {
	r.t.Helper()
	dir := filepath.Dir(r.file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if content == "" {
			if err := os.Remove(path); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
}

// pgsyncCLI runs the real CLI with args and returns its output and exit
// code.
func pgsyncCLI(ctx context.Context, t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := osexec.CommandContext(ctx, insttest.Binary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *osexec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("pgsync %s: %v", args[0], err)
	}
	return out.String(), 0
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func deref32(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

type leaseState struct {
	holder      string
	transitions int32
}

func primaryLease(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) leaseState {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "website-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := leaseState{holder: deref(l.Spec.HolderIdentity)}
	if l.Spec.LeaseTransitions != nil {
		s.transitions = *l.Spec.LeaseTransitions
	}
	return s
}

func primaryOfCluster(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(ctx, cluster+"-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return deref(l.Spec.HolderIdentity)
}

// checkBudgets: the primary's disruption budget selects primary, the
// standbys' every other instance.
func checkBudgets(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster, primary string) {
	t.Helper()
	pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
	if p, err := pdbs.Get(ctx, cluster+"-primary", metav1.GetOptions{}); err != nil || p.Spec.Selector.MatchLabels[podcontract.LabelPodName] != primary {
		t.Errorf("PodDisruptionBudget %s-primary: %v, selector %v; want %s", cluster, err, p.Spec.Selector, primary)
	}
	if p, err := pdbs.Get(ctx, cluster+"-standby", metav1.GetOptions{}); err != nil || len(p.Spec.Selector.MatchExpressions) != 1 ||
		fmt.Sprint(p.Spec.Selector.MatchExpressions[0].Values) != "["+primary+"]" {
		t.Errorf("PodDisruptionBudget %s-standby: %v, selector %v; want all but %s", cluster, err, p.Spec.Selector, primary)
	}
}

// clusterPodUIDs maps each pod of cluster to its UID.
func clusterPodUIDs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string) map[string]types.UID {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for _, p := range list.Items {
		out[p.Name] = p.UID
	}
	return out
}

// checkReplacedOnce: every pod of before has a new UID (the history test
// counts replacements; here the step's completion was waited for).
func checkReplacedOnce(t *testing.T, before, after map[string]types.UID) {
	t.Helper()
	for name, uid := range before {
		if after[name] == uid {
			t.Errorf("%s was not replaced", name)
		}
	}
}

// checkInstances: exactly the pods NAME-0 … NAME-(n-1), each Ready, at
// images[name] when given, primary the primary and every other a
// streaming standby, as their /status says.
func checkInstances(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string, n int, primary string, images map[string]string) {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	var names, want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("%s-%d", cluster, i))
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		names = append(names, p.Name)
		if img, ok := images[p.Name]; ok && p.Spec.Containers[0].Image != img {
			t.Errorf("%s runs %s, want %s", p.Name, p.Spec.Containers[0].Image, img)
		}
		if !isReady(p) {
			t.Errorf("%s is not Ready (%s)", p.Name, podState(p))
			continue
		}
		st := instanceStatus(ctx, t, p.Status.PodIP)
		role := "standby"
		if p.Name == primary {
			role = "primary"
		}
		if st["role"] != role || (role == "standby" && st["streaming"] != true) {
			t.Errorf("%s: role %v streaming %v, want %s", p.Name, st["role"], st["streaming"], role)
		}
	}
	sort.Strings(names)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("pods of %s: %v, want %v", cluster, names, want)
	}
}

// checkCreatedAfterReady: pod later was created once pod earlier was Ready.
func checkCreatedAfterReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, earlier, later string) {
	t.Helper()
	e, err := cs.CoreV1().Pods(ns).Get(ctx, earlier, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cs.CoreV1().Pods(ns).Get(ctx, later, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ready time.Time
	for _, c := range e.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = c.LastTransitionTime.Time
		}
	}
	if ready.IsZero() || l.CreationTimestamp.Time.Before(ready) {
		t.Errorf("%s created at %s, before %s was Ready (%s)", later, l.CreationTimestamp.Format(time.RFC3339), earlier, ready.Format(time.RFC3339))
	}
}

// checkClaims: the data claims of the ordinals exist with at least size.
func checkClaims(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, cluster string, ordinals []int, size string) {
	t.Helper()
	want := resource.MustParse(size)
	for _, i := range ordinals {
		name := fmt.Sprintf("pgdata-%s-%d", cluster, i)
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("claim %s: %v", name, err)
			continue
		}
		if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.Cmp(want) < 0 {
			t.Errorf("claim %s: capacity %s, want %s", name, got.String(), size)
		}
	}
}

// checkRows: the table written at the start has its n rows.
func checkRows(ctx context.Context, t *testing.T, dsn string, n int) {
	t.Helper()
	c := instConnect(ctx, t, dsn)
	defer c.Close(ctx)
	var got int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&got); err != nil || got != n {
		t.Errorf("rows of kept: %d (%v), want %d", got, err, n)
	}
}

func setting(ctx context.Context, t *testing.T, dsn, name string) string {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatalf("current_setting(%s): %v", name, err)
	}
	return v
}

// checkPruned: what --prune deletes is gone, the claim and Secrets stay.
func checkPruned(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	gone := map[string]func() error{
		"StatefulSet " + name: func() error {
			_, err := cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		"Lease " + name + "-primary": func() error {
			_, err := cs.CoordinationV1().Leases(ns).Get(ctx, name+"-primary", metav1.GetOptions{})
			return err
		},
		"ConfigMap " + name + "-params": func() error {
			_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name+"-params", metav1.GetOptions{})
			return err
		},
		"Role " + name: func() error {
			_, err := cs.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		"RoleBinding " + name: func() error {
			_, err := cs.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		"ServiceAccount " + name: func() error {
			_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		"EndpointSlice " + name + "-rw": func() error {
			_, err := cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, name+"-rw", metav1.GetOptions{})
			return err
		},
		// The apply lock of a deleted cluster goes with it.
		"Lease " + name + "-apply": func() error {
			_, err := cs.CoordinationV1().Leases(ns).Get(ctx, name+"-apply", metav1.GetOptions{})
			return err
		},
	}
	for _, svc := range []string{"-rw", "-ro", "-r", "-hl"} {
		svc := name + svc
		gone["Service "+svc] = func() error {
			_, err := cs.CoreV1().Services(ns).Get(ctx, svc, metav1.GetOptions{})
			return err
		}
	}
	for _, pdb := range []string{"-primary", "-standby"} {
		pdb := name + pdb
		gone["PodDisruptionBudget "+pdb] = func() error {
			_, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, pdb, metav1.GetOptions{})
			return err
		}
	}
	for what, get := range gone {
		if err := get(); !apierrors.IsNotFound(err) {
			t.Errorf("after --prune, %s: %v, want NotFound", what, err)
		}
	}
	waitUntil(ctx, t, "pod "+name+"-0 is gone", 500*time.Millisecond, func() bool {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, name+"-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "pgdata-"+name+"-0", metav1.GetOptions{}); err != nil {
		t.Errorf("after --prune, claim pgdata-%s-0: %v, want it kept", name, err)
	}
	for _, s := range []string{name + "-superuser", name + "-app"} {
		if _, err := cs.CoreV1().Secrets(ns).Get(ctx, s, metav1.GetOptions{}); err != nil {
			t.Errorf("after --prune, Secret %s: %v, want it kept", s, err)
		}
	}
}

// tokenKubeconfig writes a kubeconfig holding only token, for the
// cluster of cfg.
func tokenKubeconfig(t *testing.T, cfg *rest.Config, token string) string {
	t.Helper()
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca, TLSServerName: cfg.ServerName}
	kc.AuthInfos["pgsync-apply"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["pgsync-apply"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "pgsync-apply"}
	kc.CurrentContext = "pgsync-apply"
	path := filepath.Join(t.TempDir(), "pgsync-apply.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
