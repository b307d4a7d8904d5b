package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
	"github.com/pgsync/pgsync/test/prereq"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

// observerUser is the ServiceAccount deploy/observer creates.
const observerUser = "system:serviceaccount:pgsync:pgsync-observer"

// TestAPILivePlanAsObserver: deploy/observer applied as documented
// (kubectl apply -k), the live plan run by the CLI with nothing but a token
// of its ServiceAccount, against a cluster applied from the same Git
// commit: a no-op, then, after a hand edit, exit 2 naming the drift. The
// same token cannot really write, read a Secret or delete a pod.
func TestAPILivePlanAsObserver(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		prereq.Missing(t, "kubectl is not installed: deploy/observer is applied with kubectl apply -k, as documented")
	}
	admin := kubeenv.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adminKC := filepath.Join(dir, "admin.kubeconfig")
	writeKubeconfig(t, adminKC, admin, &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertData, ClientKeyData: admin.KeyData})
	if out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", adminKC, "apply", "-k", "../../deploy/observer").CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k deploy/observer: %v\n%s", err, out)
	}

	// The cluster, applied from what Git holds, with its pods running.
	ns := kubeenv.Namespace(t, admin)
	clusterYAML := fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: web, namespace: %s}
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: 3
  storage: {size: 1Gi}
  postgresql:
    parameters: {max_connections: "120"}
`, ns)
	set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(clusterYAML)}})
	if err != nil {
		t.Fatal(err)
	}
	c := set.Clusters[0]
	o, err := kube.Render(c, kube.Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := podsim.Apply(ctx, dyn, o); err != nil {
		t.Fatal(err)
	}
	// The CLI reads /status at the pod IP on the manager's port, 8000.
	ips := []string{"127.77.0.1", "127.77.0.2", "127.77.0.3"}
	srv, err := podsim.Serve(ips, pc.HTTPPort)
	if errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("%v: this test serves the instances' /status on port %d of %v, as the CLI reads it; something else holds the port", err, pc.HTTPPort, ips)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, ip := range ips {
		if err := podsim.CreateClaim(ctx, cs, sts, i, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := podsim.CreatePod(ctx, cs, sts, i, podsim.Pod{IP: ip, Ready: true}); err != nil {
			t.Fatal(err)
		}
		st := pc.Status{Cluster: "web", Instance: fmt.Sprintf("web-%d", i), Role: pc.StatusStandby, Timeline: 1,
			ReplayedLSN: "0/3000000", ConfigRevision: revision.Config(c), PendingRestart: []string{}}
		if i == 0 {
			st.Role, st.ReplayedLSN, st.CurrentLSN = pc.StatusPrimary, "", "0/3000000"
		}
		srv.Set(ip, st)
	}
	if err := podsim.HoldLease(ctx, cs, ns, "web-primary", "web-0"); err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t)
	repo.commit("web", map[string]string{"clusters/web.yaml": clusterYAML})

	// Nothing but a token of pgsync/pgsync-observer.
	tok, err := cs.CoreV1().ServiceAccounts("pgsync").CreateToken(ctx, "pgsync-observer",
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of pgsync/pgsync-observer: %v", err)
	}
	observerKC := filepath.Join(dir, "observer.kubeconfig")
	writeKubeconfig(t, observerKC, admin, &clientcmdapi.AuthInfo{Token: tok.Status.Token})
	obsCfg := &rest.Config{Host: admin.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}}
	obs, err := kubernetes.NewForConfig(obsCfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := obs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || who.Status.UserInfo.Username != observerUser {
		t.Fatalf("the token authenticates as %v (%v), want %s", who, err, observerUser)
	}

	// A real (not dry-run) patch is refused by the admission policy, with
	// its message. The policy takes effect a moment after it is created.
	patch := []byte(`{"metadata":{"labels":{"example.com/touched":"yes"}}}`)
	var refusal error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, refusal = obs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{})
		if refusal != nil || time.Now().After(deadline) {
			break
		}
		// It went through before the policy was active: undo it.
		if _, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.JSONPatchType,
			[]byte(`[{"op":"remove","path":"/metadata/labels/example.com~1touched"}]`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !apierrors.IsForbidden(refusal) || !strings.Contains(refusal.Error(), "pgsync-observer may only make dry-run requests") {
		t.Fatalf("a real patch by the observer: %v; want Forbidden by the dry-run-only policy", refusal)
	}
	// The same patch as a dry run passes (what drift detection relies on).
	if _, err := obs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("a dry-run patch by the observer: %v", err)
	}
	// A subresource write granted by some other role is refused too: the
	// policy covers every subresource, not only what the observer's role
	// grants today.
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"statefulsets/scale"}, Verbs: []string{"patch"}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "scale"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "pgsync", Name: "pgsync-observer"}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	scale := []byte(`{"spec":{"replicas":1}}`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// RBAC's cache picks the binding up a moment later: dry runs pass
		// once it has.
		_, err := obs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, scale, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, "scale")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a dry-run scale patch with the scale role bound: %v", err)
		}
	}
	if _, err := obs.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, scale, metav1.PatchOptions{}, "scale"); !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), "pgsync-observer may only make dry-run requests") {
		t.Errorf("a real scale patch by the observer, with a role allowing it: %v; want Forbidden by the dry-run-only policy", err)
	}
	if err := cs.RbacV1().RoleBindings(ns).Delete(ctx, "scale", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.RbacV1().Roles(ns).Delete(ctx, "scale", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	if _, err := obs.CoreV1().Secrets(ns).Get(ctx, "web-superuser", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the observer gets a Secret: %v; want Forbidden", err)
	}
	if _, err := obs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the observer lists Secrets: %v; want Forbidden", err)
	}
	for _, dry := range [][]string{nil, {metav1.DryRunAll}} {
		if err := obs.CoreV1().Pods(ns).Delete(ctx, "web-1", metav1.DeleteOptions{DryRun: dry}); !apierrors.IsForbidden(err) {
			t.Errorf("the observer deletes a pod (dry run %v): %v; want Forbidden", dry, err)
		}
	}
	for _, ra := range []authzv1.ResourceAttributes{
		{Namespace: ns, Resource: "pods", Subresource: "exec", Verb: "create", Name: "web-0"},
		{Namespace: ns, Resource: "pods", Verb: "delete", Name: "web-0"},
		{Namespace: ns, Resource: "pods", Verb: "patch", Name: "web-0"},
		{Namespace: ns, Resource: "secrets", Verb: "get", Name: "web-superuser"},
		{Namespace: ns, Resource: "persistentvolumeclaims", Verb: "delete", Name: "pgdata-web-0"},
		{Namespace: ns, Group: "apps", Resource: "statefulsets", Verb: "delete", Name: "web"},
		{Namespace: ns, Group: "apps", Resource: "statefulsets", Subresource: "scale", Verb: "patch", Name: "web"},
		{Namespace: ns, Group: "rbac.authorization.k8s.io", Resource: "roles", Verb: "patch", Name: "web"},
		{Namespace: ns, Resource: "pods", Subresource: "proxy", Verb: "get", Name: "web-0"},
	} {
		sar, err := obs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			t.Errorf("the observer may %s %s/%s %s", ra.Verb, ra.Resource, ra.Subresource, ra.Name)
		}
	}
	// What observation and drift read, in every namespace: one List per
	// kind.
	for _, ra := range []authzv1.ResourceAttributes{
		{Group: "apps", Resource: "statefulsets", Verb: "list"},
		{Resource: "pods", Verb: "list"},
		{Resource: "persistentvolumeclaims", Verb: "list"},
		{Group: "coordination.k8s.io", Resource: "leases", Verb: "list"},
		{Resource: "services", Verb: "list"},
		{Resource: "configmaps", Verb: "list"},
		{Resource: "serviceaccounts", Verb: "list"},
		{Group: "discovery.k8s.io", Resource: "endpointslices", Verb: "list"},
		{Group: "policy", Resource: "poddisruptionbudgets", Verb: "list"},
		{Group: "networking.k8s.io", Resource: "networkpolicies", Verb: "list"},
		{Group: "rbac.authorization.k8s.io", Resource: "roles", Verb: "list"},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Verb: "list"},
	} {
		sar, err := obs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !sar.Status.Allowed {
			t.Errorf("the observer may not %s %s in every namespace", ra.Verb, ra.Resource)
		}
	}
	if got, _ := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{}); got.Labels["example.com/touched"] != "" {
		t.Fatal("a patch by the observer changed the StatefulSet")
	}

	// The live plan as the observer: converged.
	res := pgsync(t, "plan", "--kubeconfig", observerKC, "--repo", repo.dir, "--detailed-exitcode", "--format", "json")
	if res.code != 0 {
		t.Fatalf("live plan as the observer: exit %d, want 0 (no-op)\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	var doc struct {
		Mode     string `json:"mode"`
		Clusters []struct{ Namespace, Name, Action string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, res.stdout)
	}
	if len(doc.Clusters) != 1 || doc.Clusters[0].Namespace != ns || doc.Clusters[0].Action != "no-op" {
		t.Errorf("live plan: %+v; want %s/web no-op\nstderr:\n%s", doc, ns, res.stderr)
	}
	if strings.Contains(res.stderr, "level=WARN") {
		t.Errorf("live plan warned:\n%s", res.stderr)
	}

	// kubectl edit of web-rw's port, by an administrator: drift, exit 2.
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "web-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port = 5433
	if _, err := cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	res = pgsync(t, "plan", "--kubeconfig", observerKC, "--repo", repo.dir, "--detailed-exitcode")
	if res.code != 2 {
		t.Fatalf("live plan after a hand edit: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"Planning " + desiredShort(repo) + " against the live clusters.",
		"~ " + ns + "/web will be updated", "undo drift in objects pgsync owns: Service web-rw: spec.ports[0].port",
		"Plan: 0 to create, 1 to update, 0 to delete, 0 to orphan, 0 unchanged."} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("live plan text lacks %q:\n%s", want, res.stdout)
		}
	}
	// The plan only looked: the port is still the edited one.
	if got, _ := cs.CoreV1().Services(ns).Get(ctx, "web-rw", metav1.GetOptions{}); got.Spec.Ports[0].Port != 5433 {
		t.Errorf("the live plan changed web-rw: %+v", got.Spec.Ports)
	}
}

func desiredShort(r *gitRepo) string { return r.git("rev-parse", "--short=12", "HEAD") }

func writeKubeconfig(t *testing.T, path string, cfg *rest.Config, user *clientcmdapi.AuthInfo) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubeenv"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = user
	kc.Contexts["kubeenv"] = &clientcmdapi.Context{Cluster: "kubeenv", AuthInfo: "user"}
	kc.CurrentContext = "kubeenv"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

func ptrTo[T any](v T) *T { return &v }
