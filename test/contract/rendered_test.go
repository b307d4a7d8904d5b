package contract

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podrun"
	"github.com/pgsync/pgsync/test/prereq"
)

func TestMain(m *testing.M) {
	code := kubeenv.Main(m)
	insttest.RemoveBinary()
	os.Exit(code)
}

const (
	podIP     = "198.18.0.10"
	instImage = "pgsync.test/pgsync:contract"
)

// renderedSpec is the Cluster of the test: every field the planner treats
// as applied by the objects and the manager set away from its default.
const renderedSpec = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: ct
  namespace: %s
spec:
  instances: 1
  imageName: ghcr.io/cloudnative-pg/postgresql:15.8
  storage: {size: 1Gi}
  startDelay: 40
  stopDelay: 3
  switchoverDelay: 7
  failoverDelay: 5
  enableSuperuserAccess: true
  postgresql:
    parameters:
      work_mem: 7MB
      max_connections: "60"
      log_min_duration_statement: 250ms
    pg_hba:
      - host all app 0.0.0.0/0 reject
`

// TestRenderedPodRunsTheManager renders a cluster, applies its objects to
// a kube-apiserver, creates the pod its StatefulSet would create, and runs
// that pod's init container and postgres container as the kubelet would:
// the same command, args, environment, volumes, user and read-only root.
// The manager must then bootstrap postgres with the Cluster's parameters
// and pg_hba lines, publish the ConfigMap's config revision, run with the
// stop and switchover delays of the spec, and stop through the rendered
// preStop hook with the spec's stop delay.
func TestRenderedPodRunsTheManager(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	if why := podrun.Check(); why != "" {
		prereq.Missing(t, "%s", why)
	}
	ctx := context.Background()
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := cluster.Load([]cluster.File{{Path: "ct.yaml", Data: fmt.Appendf(nil, renderedSpec, ns)}})
	if err != nil {
		t.Fatal(err)
	}
	c := set.Clusters[0]
	objs, err := kube.Render(c, kube.Options{InstanceImage: instImage, TargetPrimary: kube.TargetPrimary(c, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.EnsureSecrets(ctx, cs, c, rand.Reader, kube.SecretPolicy{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.List() {
		if _, err := kube.Apply(ctx, dyn, o, kube.ApplyOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, podOf(objs.StatefulSet, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the rendered pod is not admitted: %v", err)
	}

	api, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	ca := cfg.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "pgsync-contract-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("PGSYNC_KEEP") != "" {
			t.Logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	p, err := podrun.Start(ctx, pod, podrun.Options{
		Client: cs, APIServer: api.Host, ServiceIP: kubernetesServiceIP(t), CAData: ca, PodIP: podIP,
		Images: map[string]map[string]string{instImage: {pc.BootstrapBinary: insttest.Binary(t)}},
		Dir:    dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.RunInit(ctx, pc.ContainerBootstrap); err != nil {
		t.Fatal(err)
	}
	mgr, err := p.StartContainer(ctx, pc.ContainerPostgres)
	if err != nil {
		t.Fatal(err)
	}
	logTail := func() string { return tail(mgr.Log, 30) }

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, objs.Params.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRev := cm.Data[pc.ConfigRevisionKey]
	if wantRev == "" || wantRev != objs.StatefulSet.Spec.Template.Annotations[pc.AnnConfigRevision] {
		t.Fatalf("ConfigMap revision %q, pod template %q", wantRev, objs.StatefulSet.Spec.Template.Annotations[pc.AnnConfigRevision])
	}
	httpc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: p.Dial}}
	var st pc.Status
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err = status(httpc)
		if err == nil && st.Role == pc.StatusPrimary && st.Accepting && st.ConfigRevision == wantRev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no primary with config revision %s: %+v (%v)\n%s", wantRev, st, err, logTail())
		}
		select {
		case <-mgr.Done():
			t.Fatalf("the manager exited:\n%s", logTail())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Run("the manager ran as the pod spec says", func(t *testing.T) {
		checkProcess(t, mgr.PID())
	})

	su, err := cs.CoreV1().Secrets(ns).Get(ctx, kube.NamesOf(c).SuperuserSecret(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// TLS: the rendered pod's server certificate verifies (verify-full,
	// its pod IP) against the CA pgsync published in the NAME-ca
	// ConfigMap.
	caMap, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kube.NamesOf(c).CAConfigMap(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "published-ca.crt")
	if err := os.WriteFile(caFile, []byte(caMap.Data[pc.CACertKey]), 0o644); err != nil {
		t.Fatal(err)
	}
	connect := func(user, password, db string) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s connect_timeout=5",
			podIP, pc.PostgresPort, user, db, caFile))
		if err != nil {
			return nil, err
		}
		cc.Password = password
		cc.DialFunc = p.Dial
		return pgx.ConnectConfig(ctx, cc)
	}
	conn, err := connect(pc.SuperUser, string(su.Data[corev1.BasicAuthPasswordKey]), "postgres")
	if err != nil {
		t.Fatalf("superuser over the pod IP: %v\n%s", err, logTail())
	}
	defer conn.Close(ctx)

	t.Run("spec.postgresql.parameters reach postgres from pgsync.conf, from its start", func(t *testing.T) {
		for name, want := range c.Spec.PostgreSQL.Parameters {
			var got, source, file string
			var pending bool
			err := conn.QueryRow(ctx, `SELECT current_setting(name), source, coalesce(sourcefile, ''), pending_restart FROM pg_settings WHERE name = $1`, name).
				Scan(&got, &source, &file, &pending)
			if err != nil || got != want || source != "configuration file" || !strings.HasSuffix(file, "/pgsync.conf") || pending {
				t.Errorf("%s = %q from %s %s (pending restart %v, %v), want %q from pgsync.conf", name, got, source, file, pending, err, want)
			}
		}
	})
	t.Run("spec.postgresql.pg_hba reaches pg_hba.conf after pgsync's own rules", func(t *testing.T) {
		app, err := cs.CoreV1().Secrets(ns).Get(ctx, kube.NamesOf(c).AppSecret(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ac, err := connect(pc.AppUser, string(app.Data[corev1.BasicAuthPasswordKey]), pc.AppDatabase); err == nil {
			ac.Close(ctx)
			t.Error("app connected over TCP although spec.postgresql.pg_hba rejects it")
		} else if !strings.Contains(err.Error(), "pg_hba.conf rejects connection") {
			t.Errorf("app refused for another reason: %v", err)
		}
		var line int
		if err := conn.QueryRow(ctx, `SELECT line_number FROM pg_hba_file_rules WHERE type = 'host' AND 'app' = ANY(user_name) AND auth_method = 'reject'`).Scan(&line); err != nil {
			t.Fatalf("the user line is not in pg_hba.conf: %v", err)
		}
		var own int
		if err := conn.QueryRow(ctx, `SELECT max(line_number) FROM pg_hba_file_rules WHERE 'streaming_replica' = ANY(user_name) OR ('postgres' = ANY(user_name) AND type = 'local')`).Scan(&own); err != nil || own >= line {
			t.Errorf("pgsync's own rules end at line %d (%v), the user line is at %d", own, err, line)
		}
	})
	t.Run("the config revision in /status is the ConfigMap's", func(t *testing.T) {
		if st.ConfigRevision != wantRev || len(st.RejectedParameters)+len(st.RejectedHBA) != 0 {
			t.Errorf("configRevision %q (want %q), rejected %q %q", st.ConfigRevision, wantRev, st.RejectedParameters, st.RejectedHBA)
		}
	})
	t.Run("the manager runs with spec.stopDelay, spec.switchoverDelay and spec.failoverDelay", func(t *testing.T) {
		started := logRecord(t, mgr.Log, "instance manager started")
		for k, want := range map[string]string{
			"stopDelay": "3s", "switchoverDelay": "7s", "failoverDelay": "5s", "instance": "ct-0", "namespace": ns, "cluster": "ct",
			"pgdata": pc.PGData, "parametersFile": pc.ParamsFile, "configRevisionFile": pc.ConfigRevisionFile, "hbaFile": pc.HBAFile,
		} {
			if started[k] != want {
				t.Errorf("%s = %v, want %s", k, started[k], want)
			}
		}
	})
	t.Run("the rendered Role lets the manager hold the Lease and route -rw", func(t *testing.T) {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, kube.NamesOf(c).Lease(), metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "ct-0" {
			t.Errorf("Lease holder %v (%v)", l.Spec.HolderIdentity, err)
		}
		// The primary routes -rw once it has set up what standbys need of
		// it (the rewind grants), a moment after it accepts writes.
		var es *discoveryv1.EndpointSlice
		for deadline := time.Now().Add(30 * time.Second); ; {
			es, err = cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, kube.NamesOf(c).RW(), metav1.GetOptions{})
			if err == nil && len(es.Endpoints) == 1 && es.Endpoints[0].Addresses[0] == podIP {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("EndpointSlice %s: %+v (%v)\n%s", kube.NamesOf(c).RW(), es, err, logTail())
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("the rendered preStop hook stops the manager, escalating after spec.stopDelay", func(t *testing.T) {
		// An open session keeps a smart shutdown waiting.
		hold, err := connect(pc.SuperUser, string(su.Data[corev1.BasicAuthPasswordKey]), "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close(ctx)
		hook := pod.Spec.Containers[0].Lifecycle.PreStop.Exec.Command
		hctx, cancel := context.WithTimeout(ctx, time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second)
		defer cancel()
		out, err := p.Exec(hctx, mgr, hook...)
		// The hook returns, successfully, once postgres is down and
		// before the container ends: a hook killed with its container is
		// a FailedPreStopHook warning at every pod deletion.
		if err != nil {
			t.Errorf("preStop %q: %v\n%s\n%s", hook, err, out, logTail())
		}
		select {
		case <-mgr.Done():
			t.Fatalf("the manager exited during its preStop hook:\n%s", logTail())
		default:
		}
		// Then the kubelet sends the image's STOPSIGNAL (SIGINT here).
		if err := mgr.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-mgr.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("the manager still runs after its stop signal:\n%s", logTail())
		}
		esc := logRecord(t, mgr.Log, "smart shutdown did not finish: fast shutdown")
		if esc["stopDelay"] != "3s" {
			t.Errorf("escalation after stopDelay %v, want 3s", esc["stopDelay"])
		}
		if sig := logRecord(t, mgr.Log, "shutting down"); sig["mode"] != "smart" {
			t.Errorf("the hook's stop was %v, want smart", sig["mode"])
		}
	})
}

// podOf is the pod the StatefulSet controller creates for ordinal i.
func podOf(sts *appsv1.StatefulSet, i int) *corev1.Pod {
	name := fmt.Sprintf("%s-%d", sts.Name, i)
	t := sts.Spec.Template.DeepCopy()
	labels := map[string]string{pc.LabelPodName: name}
	for k, v := range t.Labels {
		labels[k] = v
	}
	spec := t.Spec
	spec.Hostname, spec.Subdomain = name, sts.Spec.ServiceName
	for _, vc := range sts.Spec.VolumeClaimTemplates {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: vc.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vc.Name + "-" + name}}})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: sts.Namespace, Labels: labels, Annotations: t.Annotations},
		Spec:       spec,
	}
}

// kubernetesServiceIP is the first address of the Service range: the
// kubernetes Service's ClusterIP, which the API server's certificate names.
func kubernetesServiceIP(t *testing.T) string {
	_, n, err := net.ParseCIDR(kubeenv.ServiceCIDR)
	if err != nil {
		t.Fatal(err)
	}
	ip := n.IP.To4()
	ip[3]++
	return ip.String()
}

func status(c *http.Client) (pc.Status, error) {
	var s pc.Status
	resp, err := c.Get(fmt.Sprintf("http://%s:%d%s", podIP, pc.HTTPPort, pc.PathStatus))
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// logRecord returns the manager's own (not relayed) last JSON log line
// with message msg.
func logRecord(t *testing.T, file, msg string) map[string]any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg && rec["logger"] == nil {
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("no log line %q in %s:\n%s", msg, file, tail(file, 30))
	}
	return found
}

func tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkProcess: the container's PID 1 runs as uid/gid 26 with fsGroup 26,
// no capabilities, no_new_privs and a read-only root.
func checkProcess(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	uid := fmt.Sprint(pc.PostgresUID)
	for k, want := range map[string]string{"Uid": strings.Repeat(uid+" ", 3) + uid, "Gid": strings.Repeat(uid+" ", 3) + uid,
		"Groups": uid, "CapEff": "0000000000000000", "CapPrm": "0000000000000000", "NoNewPrivs": "1", "NSpid": fmt.Sprint(pid, " 1")} {
		if fields[k] != want {
			t.Errorf("%s: %q, want %q", k, fields[k], want)
		}
	}
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" && !strings.HasPrefix(f[5], "ro") {
			t.Errorf("root filesystem mounted %s", f[5])
		}
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("PID 1 of the container: %v", err)
	}
}
