package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
)

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
