// Package insttest runs real instance managers for tests and benchmarks:
// the pgsync binary (built once per test process), one process per
// instance with its own PGDATA, port and HTTP port on 127.0.0.1, as a
// non-root OS user, against a real kube-apiserver (test/kubeenv), plus a
// write probe that records every acknowledged commit.
//
// It is test infrastructure: only _test.go files and bench/ import it. It
// must not import `internal/plan`, `internal/apply` or `internal/gitsource`.
package insttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
	"github.com/pgsync/pgsync/internal/instance"
	"github.com/pgsync/pgsync/internal/instance/pgbin"
	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/prereq"
)

// Passwords used by the test clusters (test-only values).
const (
	SuperuserPassword   = "su-secret-Ω1"
	ReplicationPassword = "repl-secret-2"
	AppPassword         = "app-secret-3"
)

// Instance is one running (or stopped) instance manager.
type Instance struct {
	Name     string
	Port     int
	HTTPPort int
	PodIP    string
	PGData   string
	// WALDir is pg_wal with Cluster.SeparateWAL (a directory of wal/, the
	// volume).
	WALDir  string
	RunDir  string
	LogFile string
	// Kubeconfig is this manager's: it reaches the API server through its
	// own relay, so one instance can be partitioned alone (CutAPIFor).
	Kubeconfig string

	gate *apiGate
	cmd  *exec.Cmd
	done chan struct{}
}

// Address is the advertised host:port.
func (i *Instance) Address() string { return fmt.Sprintf("127.0.0.1:%d", i.Port) }

// Cluster is a test cluster of instance managers.
type Cluster struct {
	T          testing.TB
	Name       string
	Namespace  string
	Admin      kubernetes.Interface
	Dir        string
	Bin        string
	PGBin      pgbin.Dir
	Kubeconfig string
	Cred       *syscall.Credential
	Instances  []*Instance
	// LeaseDuration and StopDelay are passed to every manager started
	// afterwards.
	LeaseDuration time.Duration
	StopDelay     time.Duration
	// FailoverDelay is passed as --failover-delay when set.
	FailoverDelay time.Duration
	// SeparateWAL passes --wal-dir: pg_wal in a directory of its own
	// beside PGDATA's (spec.walStorage's second volume).
	SeparateWAL bool
	// ParametersFile is shared by all instances (like a ConfigMap).
	ParametersFile string
	// Env is added to every manager's environment after the defaults, so
	// it may override them (PGSYNC_APP_USER, PGSYNC_INITDB, …).
	Env []string

	// ReadOnlyRoot: each manager runs in its own mount namespace where
	// the root filesystem is read-only and only /tmp (which holds every
	// PGDATA, run directory and log of the test) and /run stay writable,
	// like a pod with readOnlyRootFilesystem and emptyDirs. Set when the
	// test runs as root and unshare(1) and setpriv(1) exist.
	ReadOnlyRoot bool

	mu sync.Mutex
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// RemoveBinary deletes the binary Binary built (about 50 MB in the
// temporary directory); TestMain calls it after the tests ran.
func RemoveBinary() {
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
}

// Binary returns the pgsync binary: $PGSYNC_BIN if set, else built once per
// process (CGO off, as shipped) into a directory any user can read.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PGSYNC_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgsync-bin-")
		if err != nil {
			buildErr = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		root, err := kubelayout.Root()
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "pgsync")
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildPath, "./cmd/pgsync")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build pgsync: %v", buildErr)
	}
	return buildPath
}

// NewCluster prepares n instances (not started) of cluster "name": a
// namespace, RBAC for the managers' identity, the Lease with target
// NAME-0, a selector-less NAME-rw Service, and pod objects to label.
func NewCluster(t testing.TB, name string, n int) *Cluster {
	t.Helper()
	bin, err := pgbin.Find(os.Getenv("PGSYNC_PG_BIN"), pgbin.DefaultGlobs)
	if err != nil {
		prereq.Missing(t, "PostgreSQL server binaries not found: %v", err)
	}
	var cred *syscall.Credential
	owner := [2]int{os.Getuid(), os.Getgid()}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			prereq.Missing(t, "running as root and there is no 'postgres' OS user to run postgres as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		owner = [2]int{uid, gid}
	}
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{T: t, Name: name, Namespace: ns, Admin: admin, Bin: Binary(t), PGBin: bin, Cred: cred,
		LeaseDuration: 8 * time.Second, StopDelay: 2 * time.Second}

	dir, err := os.MkdirTemp("", "pgi-")
	if err != nil {
		t.Fatal(err)
	}
	c.Dir = dir
	if cred != nil && strings.HasPrefix(dir, "/tmp/") {
		_, e1 := exec.LookPath("unshare")
		_, e2 := exec.LookPath("setpriv")
		c.ReadOnlyRoot = e1 == nil && e2 == nil
	}
	if !c.ReadOnlyRoot {
		t.Log("managers run without a read-only root filesystem (needs root, unshare, setpriv and the test directory under /tmp)")
	}
	must(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() {
		c.StopAll()
		if os.Getenv("PGSYNC_KEEP") != "" {
			t.Logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	c.ParametersFile = filepath.Join(dir, "parameters.json")
	must(t, os.WriteFile(c.ParametersFile, []byte(`{"max_connections": "50"}`), 0o644))

	user := "pgsync-instance:" + name
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	apiURL, err := url.Parse(cfg.Host)
	must(t, err)
	must(t, writeKubeconfig(c.Kubeconfig, cfg, cfg.Host, user))
	must(t, os.Chmod(c.Kubeconfig, 0o644))

	for i := 0; i < n; i++ {
		ports := FreePorts(t, 2)
		inst := &Instance{
			Name: fmt.Sprintf("%s-%d", name, i), Port: ports[0], HTTPPort: ports[1],
			PodIP:  fmt.Sprintf("198.18.0.%d", 10+i),
			PGData: filepath.Join(dir, fmt.Sprintf("i%d", i), "pgdata"),
			RunDir: filepath.Join(dir, fmt.Sprintf("i%d", i), "run"),
			WALDir: filepath.Join(dir, fmt.Sprintf("i%d", i), "wal", "pg_wal"),
		}
		inst.LogFile = filepath.Join(dir, fmt.Sprintf("i%d.log", i))
		inst.gate = newAPIGate(t, apiURL.Host)
		gated := *apiURL
		gated.Host = inst.gate.Addr()
		inst.Kubeconfig = filepath.Join(dir, fmt.Sprintf("i%d.kubeconfig", i))
		must(t, writeKubeconfig(inst.Kubeconfig, cfg, gated.String(), user))
		must(t, os.Chmod(inst.Kubeconfig, 0o644))
		base := filepath.Dir(inst.PGData)
		must(t, os.MkdirAll(base, 0o700))
		must(t, os.Chown(base, owner[0], owner[1]))
		c.Instances = append(c.Instances, inst)
	}

	ctx := context.Background()
	c.CreateRBAC(ctx)
	_, err = admin.CoordinationV1().Leases(ns).Create(ctx, &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-primary", Annotations: map[string]string{podcontract.AnnTargetPrimary: name + "-0"}},
	}, metav1.CreateOptions{})
	must(t, err)
	_, err = admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-rw", Labels: map[string]string{podcontract.LabelCluster: name}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "postgres", Port: 5432}}},
	}, metav1.CreateOptions{})
	must(t, err)
	for _, inst := range c.Instances {
		_, err = admin.CoreV1().Pods(ns).Create(ctx, restrictedPod(inst.Name, name), metav1.CreateOptions{})
		must(t, err)
	}
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// restrictedPod is a pod object (never scheduled: the API tier has no
// nodes) that passes the restricted Pod Security Standard.
func restrictedPod(name, cluster string) *corev1.Pod {
	f, tr := false, true
	uid := int64(26)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			podcontract.LabelCluster: cluster, podcontract.LabelInstance: name, podcontract.LabelRole: "replica"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &tr, RunAsUser: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{
				Name: "postgres", Image: "postgres:15", Command: []string{"/controller/pgsync", "instance", "run"},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &tr,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
		},
	}
}

// RoleName is the Role (and RoleBinding) granting the managers' identity
// exactly what an instance manager needs, by resourceNames.
func (c *Cluster) RoleName() string { return c.Name + "-instance" }

// CreateRBAC creates the Role and RoleBinding for the managers' identity.
func (c *Cluster) CreateRBAC(ctx context.Context) {
	var pods []string
	for _, i := range c.Instances {
		pods = append(pods, i.Name)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: c.RoleName()},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{c.Name + "-primary"},
				Verbs: []string{"get", "list", "watch", "update"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, ResourceNames: []string{c.Name + "-rw"},
				Verbs: []string{"get", "update"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: pods, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
		},
	}
	_, err := c.Admin.RbacV1().Roles(c.Namespace).Create(ctx, role, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		c.T.Fatal(err)
	}
	c.Bind(ctx)
}

// Bind (re)creates the RoleBinding; Unbind deletes it, so the managers can
// no longer renew the Lease.
func (c *Cluster) Bind(ctx context.Context) {
	_, err := c.Admin.RbacV1().RoleBindings(c.Namespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: c.RoleName()},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "pgsync-instance:" + c.Name}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: c.RoleName()},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		c.T.Fatal(err)
	}
}

// CutAPI makes the managers' connections to the API server hang, open
// but silent (a partition that drops packets); RestoreAPI ends that.
func (c *Cluster) CutAPI() {
	for i := range c.Instances {
		c.CutAPIFor(i)
	}
}

// RestoreAPI undoes CutAPI.
func (c *Cluster) RestoreAPI() {
	for i := range c.Instances {
		c.RestoreAPIFor(i)
	}
}

// CutAPIFor partitions instance i's manager alone from the API server
// (the others, and postgres's own connections, are untouched).
func (c *Cluster) CutAPIFor(i int) { c.Instances[i].gate.set(true) }

// RestoreAPIFor undoes CutAPIFor.
func (c *Cluster) RestoreAPIFor(i int) { c.Instances[i].gate.set(false) }

// Unbind removes the managers' permissions.
func (c *Cluster) Unbind(ctx context.Context) {
	err := c.Admin.RbacV1().RoleBindings(c.Namespace).Delete(ctx, c.RoleName(), metav1.DeleteOptions{})
	if err != nil {
		c.T.Fatal(err)
	}
}

// writeKubeconfig writes the admin credentials impersonating user (RBAC
// then applies to user alone), for the API server at server.
func writeKubeconfig(path string, cfg *rest.Config, server, user string) error {
	read := func(data []byte, file string) ([]byte, error) {
		if len(data) > 0 || file == "" {
			return data, nil
		}
		return os.ReadFile(file)
	}
	ca, err := read(cfg.CAData, cfg.CAFile)
	if err != nil {
		return err
	}
	cert, err := read(cfg.CertData, cfg.CertFile)
	if err != nil {
		return err
	}
	key, err := read(cfg.KeyData, cfg.KeyFile)
	if err != nil {
		return err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	kc.AuthInfos["instance"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key,
		Token: cfg.BearerToken, Impersonate: user}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "instance"}
	kc.CurrentContext = "test"
	return clientcmd.WriteToFile(*kc, path)
}

// FreePorts returns n currently free TCP ports on 127.0.0.1.
func FreePorts(t testing.TB, n int) []int {
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// Start launches instance i's manager.
func (c *Cluster) Start(i int) {
	c.T.Helper()
	inst := c.Instances[i]
	logf, err := os.OpenFile(inst.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(c.T, err)
	args := []string{c.Bin, "instance", "run",
		"--cluster", c.Name, "--namespace", c.Namespace, "--instance", inst.Name,
		"--pgdata", inst.PGData, "--run-dir", inst.RunDir, "--pg-bin", string(c.PGBin),
		"--port", strconv.Itoa(inst.Port), "--listen-addresses", "127.0.0.1",
		"--advertise-address", inst.Address(), "--pod-ip", inst.PodIP,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", inst.HTTPPort),
		"--parameters-file", c.ParametersFile,
		"--lease-duration", c.LeaseDuration.String(), "--stop-delay", c.StopDelay.String(),
		"--kubeconfig", inst.Kubeconfig, "--peers", strings.Join(c.HTTPAddrs(), ",")}
	if c.FailoverDelay > 0 {
		args = append(args, "--failover-delay", c.FailoverDelay.String())
	}
	if c.SeparateWAL {
		vol := filepath.Dir(inst.WALDir)
		must(c.T, os.MkdirAll(vol, 0o700))
		if c.Cred != nil {
			must(c.T, os.Chown(vol, int(c.Cred.Uid), int(c.Cred.Gid)))
		}
		args = append(args, "--wal-dir", inst.WALDir)
	}
	var cmd *exec.Cmd
	if c.ReadOnlyRoot {
		// unshare, sh and setpriv each exec the next: the manager keeps
		// the PID of cmd.Process, as the signal and zombie checks need.
		script := `mount --bind /tmp /tmp && mount --bind /run /run && mount -o remount,ro,bind / && exec setpriv --reuid=` +
			strconv.Itoa(int(c.Cred.Uid)) + ` --regid=` + strconv.Itoa(int(c.Cred.Gid)) + ` --clear-groups -- "$@"`
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"}, args...)...)
	} else {
		cmd = exec.Command(args[0], args[1:]...)
	}
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"PGSYNC_SUPERUSER_PASSWORD=" + SuperuserPassword,
		"PGSYNC_REPLICATION_PASSWORD=" + ReplicationPassword,
		"PGSYNC_APP_USER=app", "PGSYNC_APP_DATABASE=app",
		"PGSYNC_APP_PASSWORD=" + AppPassword,
	}
	cmd.Env = append(cmd.Env, c.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !c.ReadOnlyRoot {
		cmd.SysProcAttr.Credential = c.Cred
	}
	must(c.T, cmd.Start())
	logf.Close()
	inst.cmd, inst.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(inst.done) }()
}

// HTTPAddrs are the managers' HTTP addresses (their --peers).
func (c *Cluster) HTTPAddrs() []string {
	var out []string
	for _, i := range c.Instances {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", i.HTTPPort))
	}
	return out
}

// Kill ends instance i at once, as a node or container death does: the
// manager and postmaster (each in its own process group, with whatever
// they started) get SIGKILL together, nothing shuts down cleanly.
func (c *Cluster) Kill(i int) {
	c.T.Helper()
	inst := c.Instances[i]
	if inst.cmd == nil {
		return
	}
	pm := postmasterPID(inst.PGData)
	_ = syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
	if pm > 0 {
		_ = syscall.Kill(-pm, syscall.SIGKILL)
		_ = syscall.Kill(pm, syscall.SIGKILL)
	}
	<-inst.done
	inst.cmd = nil
	// The postmaster's backends exit once they notice it is gone.
	for deadline := time.Now().Add(10 * time.Second); pm > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if syscall.Kill(pm, 0) != nil {
			break
		}
	}
}

// postmasterPID reads the first line of PGDATA/postmaster.pid (0 when
// there is none).
func postmasterPID(pgdata string) int {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// ManagerPID is the PID of instance i's manager (0 when not running).
func (c *Cluster) ManagerPID(i int) int {
	if inst := c.Instances[i]; inst.cmd != nil {
		return inst.cmd.Process.Pid
	}
	return 0
}

// Stop sends sig to instance i's manager and waits for it to exit.
func (c *Cluster) Stop(i int, sig syscall.Signal) {
	inst := c.Instances[i]
	if inst.cmd == nil {
		return
	}
	_ = inst.cmd.Process.Signal(sig)
	select {
	case <-inst.done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
		<-inst.done
	}
	inst.cmd = nil
}

// StopAll stops every manager (fast shutdown).
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for i := range c.Instances {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop(i, syscall.SIGINT) }()
	}
	wg.Wait()
}

// Status fetches instance i's /status.
func (c *Cluster) Status(i int) (instance.Status, error) {
	var s instance.Status
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/status", c.Instances[i].HTTPPort))
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// Ready fetches instance i's /readyz.
func (c *Cluster) Ready(i int) bool {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", c.Instances[i].HTTPPort))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitStatus polls instance i's status until ok returns true.
func (c *Cluster) WaitStatus(i int, timeout time.Duration, what string, ok func(instance.Status) bool) instance.Status {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	var last instance.Status
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = c.Status(i)
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.T.Fatalf("%s: %s not reached within %s; last status %+v (err %v)\n%s", c.Instances[i].Name, what, timeout, last, lastErr, c.LogTail(i, 40))
	return last
}

// LogTail returns the last n lines of instance i's log.
func (c *Cluster) LogTail(i, n int) string {
	b, _ := os.ReadFile(c.Instances[i].LogFile)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Lease returns the current primary Lease.
func (c *Cluster) Lease(ctx context.Context) (*coordv1.Lease, error) {
	return c.Admin.CoordinationV1().Leases(c.Namespace).Get(ctx, c.Name+"-primary", metav1.GetOptions{})
}

// SetTarget sets pgsync.io/target-primary (what the pgsync daemon does).
func (c *Cluster) SetTarget(ctx context.Context, target string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, podcontract.AnnTargetPrimary, target)
	_, err := c.Admin.CoordinationV1().Leases(c.Namespace).Patch(ctx, c.Name+"-primary", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	return err
}

// RWEndpoint returns the address in the NAME-rw EndpointSlice.
func (c *Cluster) RWEndpoint(ctx context.Context) (string, error) {
	es, err := c.Admin.DiscoveryV1().EndpointSlices(c.Namespace).Get(ctx, c.Name+"-rw", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if len(es.Endpoints) != 1 || len(es.Endpoints[0].Addresses) != 1 {
		return "", fmt.Errorf("EndpointSlice %s-rw has %d endpoints", c.Name, len(es.Endpoints))
	}
	if es.Labels[discoveryv1.LabelServiceName] != c.Name+"-rw" {
		return "", fmt.Errorf("EndpointSlice %s-rw is not linked to its Service: labels %v", c.Name, es.Labels)
	}
	return es.Endpoints[0].Addresses[0], nil
}

// RoleLabel returns pod's pgsync.io/role label.
func (c *Cluster) RoleLabel(ctx context.Context, pod string) (string, error) {
	p, err := c.Admin.CoreV1().Pods(c.Namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return p.Labels[podcontract.LabelRole], nil
}

// DSN is a multi-host DSN over every instance that only accepts a writable
// server (what an application uses without -rw routing).
func (c *Cluster) DSN(user, password, db string) string {
	var hosts, ports []string
	for _, i := range c.Instances {
		hosts = append(hosts, "127.0.0.1")
		ports = append(ports, strconv.Itoa(i.Port))
	}
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s target_session_attrs=read-write connect_timeout=2 sslmode=disable",
		strings.Join(hosts, ","), strings.Join(ports, ","), user, password, db)
}

// InstanceDSN connects to instance i only.
func (c *Cluster) InstanceDSN(i int, user, password, db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s connect_timeout=2 sslmode=disable",
		c.Instances[i].Port, user, password, db)
}

// Raw is a postgres started directly by the test, without a manager (as
// the cluster's OS user, a child process that is waited for).
type Raw struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRaw starts postgres on instance i's PGDATA; its output is appended
// to the instance log + ".raw".
func (c *Cluster) StartRaw(i int) *Raw {
	c.T.Helper()
	inst := c.Instances[i]
	logf, err := os.OpenFile(inst.LogFile+".raw", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(c.T, err)
	cmd := exec.Command(c.PGBin.Path("postgres"), "-D", inst.PGData)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.Cred, Setpgid: true}
	must(c.T, cmd.Start())
	logf.Close()
	r := &Raw{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	return r
}

// Signal sends sig to the postmaster.
func (r *Raw) Signal(sig syscall.Signal) { _ = r.cmd.Process.Signal(sig) }

// StopFast stops it (SIGINT) and waits for the exit.
func (r *Raw) StopFast() {
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	<-r.done
}

// SuperuserSocketDSN connects to instance i over its Unix socket as the
// superuser.
func (c *Cluster) SuperuserSocketDSN(i int) string {
	inst := c.Instances[i]
	return fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=2",
		inst.RunDir, inst.Port, SuperuserPassword)
}

// WriteFileAs writes a file owned by the cluster's OS user.
func (c *Cluster) WriteFileAs(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	if c.Cred != nil {
		return os.Chown(path, int(c.Cred.Uid), int(c.Cred.Gid))
	}
	return nil
}
