package kubeenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestAPIServerServesVersionAndRBAC(t *testing.T) {
	cfg := APIServer(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	root, err := kubelayout.Root()
	if err != nil {
		t.Fatal(err)
	}
	vers, err := kubelayout.Versions(root)
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != vers["KUBE_VERSION"] {
		t.Errorf("server version %q, want %q (the -X ldflags of hack/kube/build.sh)", v.GitVersion, vers["KUBE_VERSION"])
	}
	// RBAC is on: an unprivileged identity is refused.
	anon := *cfg
	anon.Impersonate.UserName = "someone"
	acs, err := kubernetes.NewForConfig(&anon)
	if err != nil {
		t.Fatal(err)
	}
	_, err = acs.CoreV1().Secrets("default").List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list secrets as an unprivileged user: got %v, want Forbidden", err)
	}
}

func TestNamespaceEnforcesRestricted(t *testing.T) {
	cfg := APIServer(t)
	ns := Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod := func(name string, sc *corev1.SecurityContext) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "c", Image: "localhost:5000/none:1", SecurityContext: sc,
			}}},
		}
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("root", nil), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("pod without a security context: got %v, want a PodSecurity restricted refusal", err)
	}
	no, yes := false, true
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("ok", &corev1.SecurityContext{
		RunAsNonRoot:             &yes,
		AllowPrivilegeEscalation: &no,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}), metav1.CreateOptions{})
	if err != nil {
		t.Errorf("restricted-compliant pod refused: %v", err)
	}
}

func TestNamePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"TestX":                             "t-testx-",
		"TestA/sub_case":                    "t-testa-sub-case-",
		"Test" + strings.Repeat("Long", 20): "t-" + ("test" + strings.Repeat("long", 20))[:38] + "-",
	} {
		if got := namePrefix(in); got != want {
			t.Errorf("namePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkAPIServerStart measures a fresh etcd + kube-apiserver start to
// /readyz and its stop: the baseline the local cluster's warm start is
// compared with (hack/kube/bench.sh).
func BenchmarkAPIServerStart(b *testing.B) {
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		b.Skip("etcd is not installed")
	}
	root, err := kubelayout.Root()
	if err != nil {
		b.Fatal(err)
	}
	vers, err := kubelayout.Versions(root)
	if err != nil {
		b.Fatal(err)
	}
	bin, err := kubeBin(b, root, vers["KUBE_VERSION"], "kube-apiserver")
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		s, err := startOnce(etcd, bin)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.stop(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClusterNamespaceIsRestrictedAndGoesAway(t *testing.T) {
	var name string
	var cs kubernetes.Interface
	t.Run("use", func(t *testing.T) {
		env := Cluster(t)
		name, cs = env.Namespace, env.Client
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("enforce label = %q, want restricted", got)
		}
	})
	if cs == nil {
		t.Skip("no cluster")
	}
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("namespace %s was not deleted after its test", name)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
