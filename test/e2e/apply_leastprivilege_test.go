package e2e

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/prereq"
)

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
