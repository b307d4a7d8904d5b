package kubeenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
	"github.com/pgsync/pgsync/test/prereq"
)

// E2EEnv asks Cluster to start the local cluster when it is not running
// (`make e2e` sets it); without it, or PGSYNC_REQUIRE_INTEGRATION=1, a test
// needing the cluster skips.
const E2EEnv = "PGSYNC_E2E"

// Env is the local single-node cluster as one test sees it.
type Env struct {
	Config     *rest.Config         // admin (system:masters)
	Client     kubernetes.Interface // built from Config
	Namespace  string               // unique to the test, PodSecurity `restricted` enforced
	Kubeconfig string               // path of the admin kubeconfig, for kubectl
}

// KubeconfigPath is where `make kube-up` writes the admin kubeconfig.
func KubeconfigPath() string { return kubelayout.Kubeconfig(kubelayout.StateDir()) }

var cluster struct {
	once    sync.Once
	cfg     *rest.Config
	missing string
	err     error
}

// Cluster returns the running local cluster (hack/kube: `make kube-up`) with a
// namespace for t, deleted when t ends. When the cluster is not running it is
// started with hack/kube's kubelocal if PGSYNC_E2E=1 or
// PGSYNC_REQUIRE_INTEGRATION=1 (and left running for the next tests; `make
// kube-down` stops it); otherwise t skips.
func Cluster(t testing.TB) *Env {
	t.Helper()
	cluster.once.Do(func() { cluster.cfg, cluster.missing, cluster.err = connectCluster(t) })
	if cluster.missing != "" {
		prereq.Missing(t, "kubeenv: %s", cluster.missing)
	}
	if cluster.err != nil {
		t.Fatalf("kubeenv: local cluster: %v", cluster.err)
	}
	cfg := rest.CopyConfig(cluster.cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubeenv: client: %v", err)
	}
	return &Env{Config: cfg, Client: cs, Namespace: Namespace(t, cfg), Kubeconfig: KubeconfigPath()}
}

func connectCluster(t testing.TB) (*rest.Config, string, error) {
	path := KubeconfigPath()
	cfg, err := readyConfig(path)
	if err == nil {
		return cfg, "", nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Sprintf("the local cluster's admin kubeconfig %s is readable by root only and this test runs as uid %d: run it as root (CI does)", path, os.Geteuid()), nil
	}
	if os.Getenv(E2EEnv) != "1" && !prereq.Required() {
		return nil, fmt.Sprintf("the local cluster is not running (%v): run `make kube-up`, or `make e2e`", err), nil
	}
	if os.Geteuid() != 0 {
		return nil, "starting the local cluster needs root (containerd, kubelet, iptables)", nil
	}
	root, err := kubelayout.Root()
	if err != nil {
		return nil, "", err
	}
	// From a warm cache kube-up takes well under a minute; a cold one builds
	// for about half an hour.
	need := 3 * time.Minute
	if !cacheWarm(root) {
		need = 45 * time.Minute
	}
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, has := d.Deadline(); has && time.Until(dl) < need {
			return nil, fmt.Sprintf("the local cluster is not running and starting it needs about %s, more than this test binary's -timeout leaves: run `make kube-up` first", need), nil
		}
	}
	bin := filepath.Join(kubelayout.CacheDir(), "kubelocal")
	t.Logf("kubeenv: starting the local cluster with %s up", bin)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./hack/kube/kubelocal")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("build kubelocal: %w\n%s", err, out)
	}
	upCmd := exec.Command(bin, "up")
	upCmd.Dir = root
	if out, err := upCmd.CombinedOutput(); err != nil {
		// kubelocal exits 4 when the kernel lacks what the cluster needs:
		// this machine cannot run it, which is a missing prerequisite.
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == exitNoKernelSupport {
			return nil, lastLine(out), nil
		}
		return nil, "", fmt.Errorf("kubelocal up: %w\n%s", err, tail(out, 4000))
	}
	cfg, err = readyConfig(path)
	if err != nil {
		return nil, "", fmt.Errorf("the local cluster after kubelocal up: %w", err)
	}
	return cfg, "", nil
}

// exitNoKernelSupport is kubelocal's exit code for a kernel lacking what the
// cluster needs (hack/kube/kubelocal/kernel.go).
const exitNoKernelSupport = 4

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// readyConfig loads the kubeconfig at path and checks /readyz.
func readyConfig(path string) (*rest.Config, error) {
	if _, err := os.ReadFile(path); err != nil {
		return nil, fmt.Errorf("no admin kubeconfig: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/readyz", nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no ready API server behind %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/readyz: HTTP %d", cfg.Host, resp.StatusCode)
	}
	return cfg, nil
}

// cacheWarm reports whether hack/kube's binaries and images are all cached.
func cacheWarm(root string) bool {
	vers, err := kubelayout.Versions(root)
	if err != nil {
		return false
	}
	files := []string{kubelayout.CoreDNSBin(kubelayout.CacheDir(), vers["COREDNS_VERSION"])}
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		files = append(files, kubelayout.KubeBin(kubelayout.CacheDir(), vers["KUBE_VERSION"], c))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	index, err := os.ReadFile(filepath.Join(kubelayout.LayoutDir(kubelayout.CacheDir()), "index.json"))
	if err != nil {
		return false
	}
	for _, ref := range []string{"postgresql:15.18", "postgresql:15.20", "pause:3.10"} {
		if !strings.Contains(string(index), `"`+ref+`"`) {
			return false
		}
	}
	return true
}
