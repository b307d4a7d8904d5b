package kubeenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
	"github.com/pgsync/pgsync/hack/kube/pki"
	"github.com/pgsync/pgsync/test/prereq"
)

// ServiceCIDR is the Service range of every kube-apiserver kubeenv starts; it
// matches the local cluster's (see docs/local-kubernetes.md).
const ServiceCIDR = "198.19.0.0/16"

// shared is the one etcd + kube-apiserver of this test process.
var shared struct {
	mu      sync.Mutex
	started bool
	srv     *apiServer
	missing string // a prerequisite is missing: skip (or fail in CI)
	err     error  // prerequisites present but start-up failed
}

type apiServer struct {
	dir        string
	etcd       *proc
	apiserver  *proc
	cfg        *rest.Config
	kubeconfig string
}

// APIServer returns an admin (system:masters) config for a kube-apiserver
// backed by its own etcd, both on random 127.0.0.1 ports with a temporary
// data directory and generated PKI. The first call in a test process starts
// them (about 5 s, plus a build of kube-apiserver if it is not in the cache);
// later calls share them. They stop when Main returns, or, without a
// TestMain, when the test process exits (the children die with it; the data
// directory is removed by the next run).
//
// Only the API server runs: no controller-manager, scheduler or nodes, so
// pods are admitted but never run, and deleted namespaces stay Terminating.
// Authorization is Node,RBAC; admission has the defaults including
// PodSecurity; the Service range is ServiceCIDR.
func APIServer(t testing.TB) *rest.Config {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.started {
		shared.started = true
		shared.srv, shared.missing, shared.err = startAPIServer(t)
		if shared.srv != nil {
			t.Logf("kubeenv: kube-apiserver at %s, kubeconfig %s", shared.srv.cfg.Host, shared.srv.kubeconfig)
		}
	}
	if shared.missing != "" {
		prereq.Missing(t, "kubeenv: %s", shared.missing)
	}
	if shared.err != nil {
		t.Fatalf("kubeenv: start etcd + kube-apiserver: %v", shared.err)
	}
	return rest.CopyConfig(shared.srv.cfg)
}

// Main runs the tests of a package and then stops the shared API server:
//
//	func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubeenv: stop: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	return code
}

// startAPIServer returns either a running server, or the reason a
// prerequisite is missing, or a start-up error.
func startAPIServer(t testing.TB) (*apiServer, string, error) {
	t.Helper()
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return nil, "etcd is not installed (apt-get install etcd-server, or make kube-deps)", nil
	}
	root, err := kubelayout.Root()
	if err != nil {
		return nil, "", err
	}
	vers, err := kubelayout.Versions(root)
	if err != nil {
		return nil, "", err
	}
	apiserverBin, err := kubeBin(t, root, vers["KUBE_VERSION"], "kube-apiserver")
	if err != nil {
		return nil, err.Error(), nil
	}
	removeStaleDirs()
	// Ports are picked free and then handed to the child, so another process
	// can take one in between; a second attempt with new ports covers that.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startOnce(etcd, apiserverBin)
		if err == nil {
			return s, "", nil
		}
		lastErr = err
	}
	return nil, "", lastErr
}

const dirPrefix = "pgsync-kubeenv-"

// removeStaleDirs deletes data directories of earlier test processes that are
// gone (a test binary without TestMain leaves its directory behind).
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(d)
		}
	}
}

func startOnce(etcdBin, apiserverBin string) (s *apiServer, err error) {
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s = &apiServer{dir: dir}
	defer func() {
		if err != nil {
			_ = s.stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return s, fmt.Errorf("write owner.pid: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return s, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiPort := ports[2]

	s.etcd, err = startProc("etcd", filepath.Join(dir, "etcd.log"), etcdBin,
		"--name=kubeenv",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubeenv="+peerURL,
		"--initial-cluster-state=new",
	)
	if err != nil {
		return s, err
	}
	if err := waitHTTP(s.etcd, http.DefaultClient, etcdURL+"/health", `"health":"true"`, 30*time.Second); err != nil {
		return s, err
	}

	certs := filepath.Join(dir, "pki")
	files, admin, err := writeAPIServerPKI(certs)
	if err != nil {
		return s, err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	s.apiserver, err = startProc("kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), apiserverBin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+certs,
		"--tls-cert-file="+files.serverCert,
		"--tls-private-key-file="+files.serverKey,
		"--client-ca-file="+files.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+files.saPub,
		"--service-account-signing-key-file="+files.saKey,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--profiling=false",
	)
	if err != nil {
		return s, err
	}
	s.cfg = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   admin.caPEM,
			CertData: admin.certPEM,
			KeyData:  admin.keyPEM,
		},
		QPS:   50,
		Burst: 100,
	}
	client, err := rest.HTTPClientFor(s.cfg)
	if err != nil {
		return s, fmt.Errorf("admin client: %w", err)
	}
	if err := waitHTTP(s.apiserver, client, host+"/readyz", "ok", 120*time.Second); err != nil {
		return s, err
	}
	s.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(s.kubeconfig, s.cfg); err != nil {
		return s, err
	}
	return s, nil
}

func (s *apiServer) stop() error {
	var errs []error
	for _, p := range []*proc{s.apiserver, s.etcd} {
		if p != nil {
			errs = append(errs, p.stop(15*time.Second))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the directory and its logs for a look
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.dir, err)
	}
	return nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitHTTP polls url until it answers 200 with a body containing want, the
// process exits, or the timeout passes.
func waitHTTP(p *proc, client *http.Client, url, want string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before it was ready; log tail:\n%s", p.name, p.err, tailFile(p.log, 3000))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body[:n]), want) {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body[:n])
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %s (last: %s); log tail:\n%s", p.name, url, timeout, last, tailFile(p.log, 3000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type apiServerFiles struct {
	caCert, serverCert, serverKey, saKey, saPub string
}

type adminCreds struct {
	caPEM, certPEM, keyPEM []byte
}

func writeAPIServerPKI(dir string) (apiServerFiles, adminCreds, error) {
	now := time.Now()
	f := apiServerFiles{
		caCert:     filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey:  filepath.Join(dir, "apiserver.key"),
		saKey:      filepath.Join(dir, "sa.key"),
		saPub:      filepath.Join(dir, "sa.pub"),
	}
	ca, err := pki.NewCA("kubeenv-ca", now)
	if err != nil {
		return f, adminCreds{}, err
	}
	if err := ca.WriteCA(f.caCert, filepath.Join(dir, "ca.key")); err != nil {
		return f, adminCreds{}, err
	}
	srv, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("198.19.0.1")},
		Server:     true,
	}, now)
	if err != nil {
		return f, adminCreds{}, err
	}
	if err := srv.Write(f.serverCert, f.serverKey); err != nil {
		return f, adminCreds{}, err
	}
	if err := pki.WriteServiceAccountKey(f.saKey, f.saPub); err != nil {
		return f, adminCreds{}, err
	}
	adm, err := ca.Issue(pki.Request{CommonName: "kubeenv-admin", Organization: []string{"system:masters"}, Client: true}, now)
	if err != nil {
		return f, adminCreds{}, err
	}
	return f, adminCreds{caPEM: ca.CertPEM, certPEM: adm.CertPEM, keyPEM: adm.KeyPEM}, nil
}

// WriteKubeconfig saves cfg (a client certificate's) as a kubeconfig for
// kubectl or a pgsync process under test.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubeenv"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["kubeenv"] = &clientcmdapi.Context{Cluster: "kubeenv", AuthInfo: "admin"}
	kc.CurrentContext = "kubeenv"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
