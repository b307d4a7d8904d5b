package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/kubeenv"
)

const (
	instClusterName = "pg"
	pgsyncImage     = "localhost:5000/pgsync:dev"
)

func instCluster(t *testing.T, ns string, instances int) *cluster.Cluster {
	t.Helper()
	set, err := cluster.Load([]cluster.File{{Path: "pg.yaml", Data: []byte(instClusterYAML(ns, instances, image1518))}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return set.Clusters[0]
}

// instClusterYAML is the Cluster file of the test cluster.
func instClusterYAML(ns string, instances int, image string) string {
	return clusterfile.Cluster{APIVersion: "postgresql.cnpg.io/v1", Name: instClusterName, Namespace: ns, Image: image, Instances: instances}.YAML()
}

// TestInstancesRealPods runs what pgsync renders (internal/kube) in real
// pods: a 3-instance cluster created the way apply will create it (one
// instance more per step, each Ready before the next), the instance manager
// as PID 1 under PodSecurity `restricted` with a read-only root, writes
// through NAME-rw, streaming standbys, and a switchover driven by the
// Lease annotation under a write load with no acknowledged commit lost.
func TestInstancesRealPods(t *testing.T) {
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace %s (KUBECONFIG=%s)", ns, env.Kubeconfig)
	t.Cleanup(func() {
		if t.Failed() {
			dumpInstances(t, cs, ns)
		}
	})

	c := instCluster(t, ns, 3)
	created, err := kube.EnsureSecrets(ctx, cs, c, rand.Reader, kube.SecretPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("created Secrets %v", created)
	opts := kube.Options{InstanceImage: pgsyncImage, InstanceImagePullPolicy: corev1.PullAlways,
		TargetPrimary: kube.TargetPrimary(c, nil)} // no Lease yet: pg-0

	// Create as the planner does: 1 → 2 → 3, each Ready before the next.
	for n := 1; n <= 3; n++ {
		step := instCluster(t, ns, n)
		objs, err := kube.Render(step, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs.List() {
			if _, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{Force: true}); err != nil {
				t.Fatalf("instances=%d: %v", n, err)
			}
		}
		start := time.Now()
		waitInstancesReady(ctx, t, cs, ns, n)
		t.Logf("instance %s-%d Ready %.1fs after apply", instClusterName, n-1, time.Since(start).Seconds())
	}

	lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != "pg-0" {
		t.Fatalf("Lease holder %v, want pg-0", h)
	}

	super := kubeenv.SecretPassword(ctx, t, cs, ns, "pg-superuser")
	app := kubeenv.SecretPassword(ctx, t, cs, ns, "pg-app")
	rw, err := cs.CoreV1().Services(ns).Get(ctx, "pg-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rwDSN := dsn(rw.Spec.ClusterIP, "app", app, "app")
	superDSN := func(ip string) string { return dsn(ip, "postgres", super, "postgres") }

	// A client through pg-rw (ClusterIP, from the host) writes.
	conn := instConnect(ctx, t, rwDSN)
	mustExec(ctx, t, conn, "CREATE TABLE probe (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())")
	mustExec(ctx, t, conn, "INSERT INTO probe (seq) VALUES (0)")
	conn.Close(ctx)

	// The parameters came through the ConfigMap file.
	conn = instConnect(ctx, t, superDSN(podIPs(ctx, t, cs, ns)["pg-0"]))
	var maxConn, sharedBuffers string
	if err := conn.QueryRow(ctx, "SELECT current_setting('max_connections'), current_setting('shared_buffers')").Scan(&maxConn, &sharedBuffers); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if maxConn != "50" || sharedBuffers != "32MB" {
		t.Errorf("max_connections %s, shared_buffers %s; want 50 and 32MB from %s-params", maxConn, sharedBuffers, instClusterName)
	}

	// Standbys stream from pg-0.
	pods := podIPs(ctx, t, cs, ns)
	waitStreaming(ctx, t, superDSN(pods["pg-0"]), []string{"pg-1", "pg-2"})
	for name, ip := range pods {
		st := instanceStatus(ctx, t, ip)
		t.Logf("%s /status: role=%v streaming=%v upstream=%v", name, st["role"], st["streaming"], st["upstream"])
		want := "standby"
		if name == "pg-0" {
			want = "primary"
		}
		if st["role"] != want {
			t.Errorf("%s /status role %v, want %s", name, st["role"], want)
		}
	}

	// pg-ro reaches a standby (role=replica); pg-r answers too.
	for _, name := range []string{"pg-ro", "pg-r"} {
		svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conn := instConnect(ctx, t, superDSN(svc.Spec.ClusterIP))
		var rec bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			t.Fatalf("through %s: %v", name, err)
		}
		conn.Close(ctx)
		if name == "pg-ro" && !rec {
			t.Errorf("pg-ro reached the primary")
		}
	}

	// The real proof for the manager: uid 26, read-only root, in every pod.
	for name, ip := range pods {
		checkProcessSecurity(ctx, t, name, superDSN(ip))
	}
	checkPDBs(ctx, t, cs, ns, "pg-0")

	// What pgsync sees of it: the live plan and status (live_test.go).
	checkLive(ctx, t, env, ns)

	// Switchover to pg-1 through the Lease annotation, under writes.
	w := &rwWriter{dsn: rwDSN}
	wctx, stopWriter := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx) }()
	time.Sleep(2 * time.Second)
	objs, err := kube.Render(c, kube.Options{InstanceImage: pgsyncImage, InstanceImagePullPolicy: corev1.PullAlways,
		TargetPrimary: "pg-1"})
	if err != nil {
		t.Fatal(err)
	}
	switchAt := time.Now()
	// apply re-applies every object with the new target: the Lease's
	// annotation starts the switchover, the PodDisruptionBudgets follow it.
	for _, obj := range objs.List() {
		if _, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitHolder(ctx, t, cs, ns, "pg-1")
	t.Logf("Lease taken by pg-1 %.0f ms after the annotation", float64(time.Since(switchAt).Milliseconds()))
	waitAcked(ctx, t, w, switchAt)
	time.Sleep(2 * time.Second)
	stopWriter()
	<-done

	acked, gap, gapStart, errs := w.result()
	t.Logf("writes: %d acknowledged, longest pause %.0f ms (starting %.0f ms after the annotation), %d failed attempts: %s",
		len(acked), float64(gap.Milliseconds()), float64(gapStart.Sub(switchAt).Milliseconds()), len(errs), summarize(errs))
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	pods = podIPs(ctx, t, cs, ns)
	// The probe table is in database app: read it on pg-1 directly.
	check := instConnect(ctx, t, dsn(pods["pg-1"], "postgres", super, "app"))
	var inRecovery bool
	if err := check.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("pg-1 after the switchover: in recovery %v, err %v", inRecovery, err)
	}
	present := map[int64]bool{}
	rows, err := check.Query(ctx, "SELECT seq FROM probe")
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
	check.Close(ctx)
	lost := 0
	for _, s := range acked {
		if !present[s] {
			lost++
		}
	}
	t.Logf("acknowledged commits lost: %d of %d", lost, len(acked))
	if lost != 0 {
		t.Errorf("%d acknowledged commits lost in the switchover", lost)
	}

	// pg-rw points at pg-1; the old primary and the bystander stream from it.
	es, err := cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, "pg-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != pods["pg-1"] {
		t.Errorf("pg-rw EndpointSlice %+v, want only pg-1 (%s)", es.Endpoints, pods["pg-1"])
	}
	waitStreaming(ctx, t, superDSN(pods["pg-1"]), []string{"pg-0", "pg-2"})
	waitRoleLabels(ctx, t, cs, ns, map[string]string{"pg-0": "replica", "pg-1": "primary", "pg-2": "replica"})
	checkPDBs(ctx, t, cs, ns, "pg-1")

	// A reload-only parameter: the next apply (keeping the live target)
	// rewrites the ConfigMap; the kubelet updates the mounted file, every
	// manager reloads; OnDelete restarts no pod.
	uids := map[string]string{}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + instClusterName})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		uids[p.Name] = string(p.UID)
	}
	live, err := cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Spec.PostgreSQL.Parameters["work_mem"] = "12MB"
	objs, err = kube.Render(c, kube.Options{InstanceImage: pgsyncImage, InstanceImagePullPolicy: corev1.PullAlways,
		TargetPrimary: kube.TargetPrimary(c, live)})
	if err != nil {
		t.Fatal(err)
	}
	reloadAt := time.Now()
	for _, obj := range objs.List() {
		if _, err := kube.Apply(ctx, dyn, obj, kube.ApplyOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	for name, ip := range pods {
		waitSetting(ctx, t, superDSN(ip), "work_mem", "12MB")
		t.Logf("%s: work_mem 12MB %.0f s after the apply", name, time.Since(reloadAt).Seconds())
	}
	list, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + instClusterName})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if uids[p.Name] != string(p.UID) {
			t.Errorf("pod %s was replaced by a reload-only change", p.Name)
		}
	}
	if h := live.Spec.HolderIdentity; h == nil || *h != "pg-1" {
		t.Errorf("Lease holder %v, want pg-1", h)
	}

	// A standby's pod deleted (what a rollout does to each standby): the
	// StatefulSet recreates it on its volume, the manager starts postgres
	// on the existing data and it streams again.
	// Its manager must get a graceful (smart) stop through the preStop
	// hook, although the image's STOPSIGNAL is SIGINT (fast).
	stopLog := followLog(ctx, t, cs, ns, "pg-2")
	p2 := recreate(ctx, t, cs, ns, "pg-2")
	t.Logf("pg-2 recreated and Ready (%s)", p2.Status.PodIP)
	if l := stopLog(); !hasLine(l, `"msg":"shutting down"`, `"signal":"user defined signal 2"`, `"mode":"smart"`) ||
		!hasLine(l, `"msg":"postgres stopped for the preStop hook; exiting at the container's stop signal"`) {
		t.Errorf("deleted pg-2's manager did not shut down smart through the preStop hook; its last log lines:\n%s", lastLines(l, 8))
	}
	// The hook returned before its container ended: no failed-hook warning.
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedPreStopHook"})
	switch {
	case err != nil:
		t.Errorf("list events: %v", err)
	case len(evs.Items) > 0:
		t.Errorf("%d FailedPreStopHook events, the first: %s", len(evs.Items), evs.Items[0].Message)
	}
	waitStreaming(ctx, t, superDSN(pods["pg-1"]), []string{"pg-0", "pg-2"})
	if st := instanceStatus(ctx, t, p2.Status.PodIP); st["role"] != "standby" || st["postgresStarts"] != float64(1) {
		t.Errorf("recreated pg-2 /status: role %v, postgresStarts %v; want standby, 1", st["role"], st["postgresStarts"])
	}
}

func waitSetting(ctx context.Context, t *testing.T, dsn, name, want string) {
	t.Helper()
	var got string
	for i := 0; i < 180; i++ {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got)
			c.Close(ctx)
			if err == nil && got == want {
				return
			}
		}
		time.Sleep(time.Second)
	}
	t.Errorf("%s = %s, want %s", name, got, want)
}

// dsn connects to an instance's address: over TLS (sslmode=require), as
// pgsync's pg_hba takes remote connections only over TLS; these test
// connections do not verify the server (internal/instance's TestTLS
// does).
func dsn(ip, user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=require&connect_timeout=3", user, password, net.JoinHostPort(ip, "5432"), db)
}

func instConnect(ctx context.Context, t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	var last error
	for i := 0; i < 40; i++ {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			return c
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("connect: %v", last)
	return nil
}

func mustExec(ctx context.Context, t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// waitInstancesReady waits until pods pg-0 … pg-(n-1) exist and are Ready.
func waitInstancesReady(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, n int) {
	t.Helper()
	var last string
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + instClusterName})
		if err == nil {
			ready := 0
			var states []string
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil && isReady(p) {
					ready++
				}
				states = append(states, p.Name+"="+podState(p))
			}
			last = strings.Join(states, " ")
			if ready == n && len(list.Items) == n {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d Ready instances: %v (pods: %s; events: %s)", n, ctx.Err(), last, events(cs, ns))
		case <-time.After(time.Second):
		}
	}
}

func podIPs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + instClusterName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		out[p.Name] = p.Status.PodIP
	}
	return out
}

// waitStreaming waits until the primary at dsn has a streaming walsender
// for each of standbys (application_name = instance name).
func waitStreaming(ctx context.Context, t *testing.T, dsn string, standbys []string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			var names []string
			rows, err := c.Query(ctx, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1")
			if err == nil {
				for rows.Next() {
					var n string
					_ = rows.Scan(&n)
					names = append(names, n)
				}
				rows.Close()
			}
			c.Close(ctx)
			last = strings.Join(names, ",")
			if last == strings.Join(standbys, ",") {
				t.Logf("streaming: %s", last)
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("standbys %v not streaming (pg_stat_replication: %s)", standbys, last)
}

func instanceStatus(ctx context.Context, t *testing.T, ip string) map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, "8000")+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /status of %s: %v", ip, err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/status of %s: %v", ip, err)
	}
	return st
}

// checkProcessSecurity reads, through a superuser session, the backend's
// own /proc entries: the uid and gid the processes run as and the root
// mount's options, and tries to write to the root filesystem.
func checkProcessSecurity(ctx context.Context, t *testing.T, name, dsn string) {
	t.Helper()
	c := instConnect(ctx, t, dsn)
	defer c.Close(ctx)
	var status, mounts string
	if err := c.QueryRow(ctx, "SELECT pg_read_file('/proc/self/status'), pg_read_file('/proc/self/mounts')").Scan(&status, &mounts); err != nil {
		t.Fatalf("%s: read /proc: %v", name, err)
	}
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") && (f[1] != "26" || f[2] != "26" || f[3] != "26" || f[4] != "26") {
			t.Errorf("%s: %s, want 26 everywhere", name, line)
		}
		if len(f) >= 2 && f[0] == "CapEff:" && f[1] != "0000000000000000" {
			t.Errorf("%s: effective capabilities %s, want none", name, f[1])
		}
		if len(f) >= 2 && f[0] == "NoNewPrivs:" && f[1] != "1" {
			t.Errorf("%s: NoNewPrivs %s, want 1", name, f[1])
		}
	}
	rootRO := false
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == "/" {
			rootRO = strings.HasPrefix(f[3], "ro,") || f[3] == "ro"
		}
	}
	if !rootRO {
		t.Errorf("%s: root filesystem not mounted read-only", name)
	}
	_, err := c.Exec(ctx, "COPY (SELECT 1) TO '/pgsync-write-probe'")
	if err == nil || !strings.Contains(err.Error(), "Read-only file system") {
		t.Errorf("%s: writing to / gave %v, want Read-only file system", name, err)
	}
	t.Logf("%s: uid/gid 26, no capabilities, no_new_privs, root read-only", name)
}

// checkPDBs reads the real disruption controller's verdict: the primary
// cannot be evicted, one standby can.
func checkPDBs(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, primary string) {
	t.Helper()
	want := map[string]int32{"pg-primary": 0, "pg-standby": 1}
	var last string
	for i := 0; i < 60; i++ {
		ok := true
		var got []string
		for name, allowed := range want {
			p, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s: %d allowed, %d/%d healthy", name, p.Status.DisruptionsAllowed, p.Status.CurrentHealthy, p.Status.ExpectedPods))
			if p.Status.DisruptionsAllowed != allowed || p.Status.ObservedGeneration != p.Generation {
				ok = false
			}
		}
		sort.Strings(got)
		last = strings.Join(got, "; ")
		if ok {
			t.Logf("PDBs: %s", last)
			checkEvictions(ctx, t, cs, ns, primary)
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("PDBs: %s; want the primary not evictable and one standby evictable", last)
}

// checkEvictions asks the Eviction API (dry run) what a drain would get:
// the primary refused (429), each standby allowed.
func checkEvictions(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, primary string) {
	t.Helper()
	for _, pod := range []string{"pg-0", "pg-1", "pg-2"} {
		err := cs.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: pod, Namespace: ns},
			DeleteOptions: &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}},
		})
		switch {
		case pod == primary && !apierrors.IsTooManyRequests(err):
			t.Errorf("evicting the primary %s (dry run): got %v, want 429 (disruption budget)", pod, err)
		case pod != primary && err != nil:
			t.Errorf("evicting the standby %s (dry run): %v", pod, err)
		}
	}
}

func waitHolder(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, want string) {
	t.Helper()
	for i := 0; i < 600; i++ {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, "pg-primary", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the Lease never went to %s", want)
}

func waitAcked(ctx context.Context, t *testing.T, w *rwWriter, after time.Time) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if w.lastAck().After(after.Add(time.Second)) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _, _, errs := w.result()
	t.Fatalf("no write acknowledged through pg-rw after the switchover; last ack %s, %d failed attempts: %s",
		w.lastAck().Format(time.RFC3339Nano), len(errs), summarize(errs))
}

func waitRoleLabels(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, want map[string]string) {
	t.Helper()
	var got map[string]string
	for i := 0; i < 60; i++ {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster + "=" + instClusterName})
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]string{}
		for _, p := range list.Items {
			got[p.Name] = p.Labels[podcontract.LabelRole]
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("role labels %v, want %v", got, want)
}

// rwWriter inserts an increasing sequence through pg-rw, one row per
// transaction, reconnecting after any error; seq counts attempts, so a
// failed attempt's number is never reused.
type rwWriter struct {
	dsn string

	mu      sync.Mutex
	acked   []int64
	ackedAt []time.Time
	errs    []string
}

func (w *rwWriter) run(ctx context.Context) {
	var conn *pgx.Conn
	seq := int64(1)
	for ctx.Err() == nil {
		if conn == nil {
			c, err := pgx.Connect(ctx, w.dsn)
			if err != nil {
				w.fail(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn = c
		}
		s := seq
		seq++
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := conn.Exec(qctx, "INSERT INTO probe (seq) VALUES ($1)", s)
		cancel()
		if err != nil {
			w.fail(err)
			conn.Close(context.Background())
			conn = nil
			time.Sleep(10 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.acked = append(w.acked, s)
		w.ackedAt = append(w.ackedAt, time.Now())
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	if conn != nil {
		conn.Close(context.Background())
	}
}

func (w *rwWriter) fail(err error) {
	if err == nil || err == context.Canceled {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, err.Error())
}

func (w *rwWriter) lastAck() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ackedAt) == 0 {
		return time.Time{}
	}
	return w.ackedAt[len(w.ackedAt)-1]
}

// result returns the acknowledged sequence numbers, the longest pause
// between two acknowledged commits and when it started, and the errors.
func (w *rwWriter) result() ([]int64, time.Duration, time.Time, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	var start time.Time
	for i := 1; i < len(w.ackedAt); i++ {
		if d := w.ackedAt[i].Sub(w.ackedAt[i-1]); d > gap {
			gap, start = d, w.ackedAt[i-1]
		}
	}
	return append([]int64(nil), w.acked...), gap, start, append([]string(nil), w.errs...)
}

// summarize counts errors by their text with digits and addresses folded.
func summarize(errs []string) string {
	counts := map[string]int{}
	for _, e := range errs {
		if i := strings.Index(e, "): "); i >= 0 && strings.HasPrefix(e, "failed to connect") {
			e = "connect: " + e[i+3:]
		}
		if len(e) > 120 {
			e = e[:120]
		}
		counts[e]++
	}
	var out []string
	for e, n := range counts {
		out = append(out, fmt.Sprintf("%d× %s", n, e))
	}
	sort.Strings(out)
	return strings.Join(out, " | ")
}

// dumpInstances logs what a failure needs: pod states, events, and the
// last lines of every container's log.
func dumpInstances(t *testing.T, cs kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("dump: %v", err)
		return
	}
	t.Logf("events: %s", events(cs, ns))
	for _, p := range list.Items {
		t.Logf("pod %s: %s labels %v ip %s", p.Name, podState(p), p.Labels, p.Status.PodIP)
		for _, c := range []string{"bootstrap", "postgres"} {
			lines := int64(40)
			rc, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c, TailLines: &lines}).Stream(ctx)
			if err != nil {
				t.Logf("  %s logs: %v", c, err)
				continue
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Logf("  %s logs:\n%s", c, b)
		}
	}
}

// followLog streams the postgres container's log of a pod until the
// container ends; the returned function waits for that (at most a minute)
// and returns what was logged.
func followLog(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, pod string) func() string {
	t.Helper()
	stream, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "postgres", Follow: true, SinceSeconds: ptrTo(int64(1))}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow %s log: %v", pod, err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, stream)
	}()
	return func() string {
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = stream.Close()
			<-done
		}
		return buf.String()
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ptrTo[T any](v T) *T { return &v }

// hasLine reports whether one line of s contains every part.
func hasLine(s string, parts ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
