package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestFailoverRealPods: the website cluster's primary pod is deleted with
// a grace period of 0 under a write load through website-rw, and kept
// from coming back (the StatefulSet's template gets a node selector no
// node has, so the recreated pod stays Pending): the standbys, finding
// each other through the headless Service, elect one, it takes the
// expired Lease and promotes, and writes resume through website-rw with
// the default Lease (15 s). The old primary's pod, let back, rejoins as a
// standby of the new primary; `pgsync status` shows the failover, and the
// new primary's pod the FailoverPromoted Event. Then the new primary's
// container is killed under writes (killContainer).
func TestFailoverRealPods(t *testing.T) {
	ctx, env, repo := websiteTest(t, 20*time.Minute)
	cs, ns := env.Client, env.Namespace
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 3, ""), "website")
	app := kubeenv.SecretPassword(ctx, t, cs, ns, "website-app")
	super := kubeenv.SecretPassword(ctx, t, cs, ns, "website-superuser")
	rw, err := cs.CoreV1().Services(ns).Get(ctx, "website-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rwDSN := dsn(rw.Spec.ClusterIP, "app", app, "app")
	conn := instConnect(ctx, t, rwDSN)
	mustExec(ctx, t, conn, "CREATE TABLE probe (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())")
	conn.Close(ctx)

	w := &rwWriter{dsn: rwDSN}
	wctx, stopWriter := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx) }()
	defer func() { stopWriter(); <-done }()
	time.Sleep(2 * time.Second)

	old := primaryOf(ctx, t, cs, ns)
	pin := `{"spec":{"template":{"spec":{"nodeSelector":{"pgsync.io/e2e-no-such-node":"x"}}}}}`
	if _, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, "website", types.StrategicMergePatchType, []byte(pin), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	t0 := time.Now()
	if err := cs.CoreV1().Pods(ns).Delete(ctx, old, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	var now string
	waitUntil(ctx, t, "another instance holds the Lease", 100*time.Millisecond, func() bool {
		now = primaryOf(ctx, t, cs, ns)
		return now != old
	})
	tookOver := time.Since(t0)
	waitAcked(ctx, t, w, time.Now())
	stopWriter()
	<-done
	acked, gap, gapStart, errs := w.result()
	back := gapStart.Add(gap).Sub(t0)
	t.Logf("%s deleted (grace 0): %s took the Lease after %s; writes through website-rw back %s after the deletion (longest pause %s); %d acknowledged, %d failed attempts: %s",
		old, now, tookOver.Round(time.Millisecond), back.Round(time.Millisecond), gap.Round(time.Millisecond), len(acked), len(errs), summarize(errs))

	// The new primary has the acknowledged commits the old one sent
	// before it died; the rest were lost (asynchronous replication).
	c := instConnect(ctx, t, superDSNOf(ctx, t, cs, ns, super, now))
	present := map[int64]bool{}
	rows, err := c.Query(ctx, "SELECT seq FROM probe")
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
	c.Close(ctx)
	lost := 0
	for _, s := range acked {
		if !present[s] {
			lost++
		}
	}
	t.Logf("acknowledged commits missing on the new primary: %d of %d", lost, len(acked))

	p, err := cs.CoreV1().Pods(ns).Get(ctx, now, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := instanceStatus(ctx, t, p.Status.PodIP)
	b, _ := json.Marshal(st["lastFailover"])
	var rec podcontract.Failover
	if err := json.Unmarshal(b, &rec); err != nil || rec.From != old || rec.To != now || rec.PromotedLSN == "" {
		t.Errorf("the new primary's lastFailover: %s (%v)", b, err)
	}
	t.Logf("failover record: %s", b)
	// The standbys found each other through the headless Service: the
	// election that promoted asked one peer (the other standby; the old
	// primary's pod has no address while Pending).
	logs, err := cs.CoreV1().Pods(ns).GetLogs(now, &corev1.PodLogOptions{Container: podcontract.ContainerPostgres}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var election string
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, `"msg":"failover election"`) && strings.Contains(line, `"elected":true`) {
			election = line
		}
	}
	if !strings.Contains(election, `"peers":1`) {
		t.Errorf("the winning election did not hear from the other standby: %q", election)
	}
	t.Logf("election: %s", election)

	// Let the old primary back: it rejoins as a standby of the new one.
	unpin := `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`
	if _, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, "website", types.StrategicMergePatchType, []byte(unpin), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods(ns).Delete(ctx, old, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the old primary back as a streaming standby", time.Second, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, old, metav1.GetOptions{})
		if err != nil || !isReady(*p) || p.Spec.NodeSelector["pgsync.io/e2e-no-such-node"] != "" {
			return false
		}
		s := instanceStatus(ctx, t, p.Status.PodIP)
		return s["role"] == "standby" && s["streaming"] == true
	})
	checkAllAt(ctx, t, cs, ns, 3, image1518, now)
	p, err = cs.CoreV1().Pods(ns).Get(ctx, old, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rj, _ := json.Marshal(instanceStatus(ctx, t, p.Status.PodIP)["lastRejoin"])
	t.Logf("the old primary's lastRejoin: %s", rj)
	if !strings.Contains(string(rj), `"method"`) {
		t.Errorf("no lastRejoin on the old primary: %s", rj)
	}

	out, code := pgsyncCLI(ctx, t, "status", ns+"/website", "--kubeconfig", env.Kubeconfig)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Last failover: %s → %s", old, now)) {
		t.Errorf("pgsync status (exit %d) does not show the failover:\n%s", code, out)
	}
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + now + ",reason=" + podcontract.EventFailoverPromoted})
	if err != nil || len(evs.Items) == 0 {
		t.Errorf("no %s Event on %s (%v): the rendered Role must let the manager create it", podcontract.EventFailoverPromoted, now, err)
	}

	killContainer(ctx, t, cs, ns, super, rwDSN, now)
}

// killContainer: the primary's postgres container killed under writes
// through website-rw — SIGKILL to the container's PID 1, the manager,
// which takes postgres with it (one pid namespace) — as the OOM killer or
// a crashing runtime would. The kubelet restarts the container in the
// same pod; its manager finds the Lease still its own, postgres runs
// crash recovery, and writes resume through website-rw with no
// acknowledged commit lost (had the Lease expired first, a standby would
// have taken over instead: that is the failover above).
func killContainer(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, super, rwDSN, primary string) {
	c := instConnect(ctx, t, superDSNOf(ctx, t, cs, ns, super, primary))
	mustExec(ctx, t, c, "TRUNCATE probe") // the new writer numbers from 1 again
	c.Close(ctx)
	w := &rwWriter{dsn: rwDSN}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx) }()
	defer func() { stop(); <-done }()
	time.Sleep(2 * time.Second)

	p, err := cs.CoreV1().Pods(ns).Get(ctx, primary, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	var restarts int32
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == podcontract.ContainerPostgres {
			id, restarts = strings.TrimPrefix(s.ContainerID, "containerd://"), s.RestartCount
		}
	}
	sock := filepath.Join(kubelayout.RunDir(), kubelayout.ContainerdSocket)
	t0 := time.Now()
	if out, err := osexec.CommandContext(ctx, "ctr", "--address", sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id).CombinedOutput(); err != nil {
		t.Fatalf("ctr tasks kill %s: %v\n%s", id, err, out)
	}
	waitAcked(ctx, t, w, t0)
	stop()
	<-done
	acked, gap, gapStart, errs := w.result()
	back := gapStart.Add(gap).Sub(t0)
	waitUntil(ctx, t, "the container restarted and Ready", time.Second, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, primary, metav1.GetOptions{})
		if err != nil || !isReady(*p) {
			return false
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == podcontract.ContainerPostgres {
				return s.RestartCount > restarts
			}
		}
		return false
	})
	holder := primaryOf(ctx, t, cs, ns)
	t.Logf("%s's postgres container killed: writes through website-rw back %s later (longest pause %s), primary now %s; %d acknowledged, %d failed attempts: %s",
		primary, back.Round(time.Millisecond), gap.Round(time.Millisecond), holder, len(acked), len(errs), summarize(errs))
	if holder != primary {
		t.Logf("the Lease expired before the container was back: %s took over (a failover)", holder)
		return
	}
	c = instConnect(ctx, t, superDSNOf(ctx, t, cs, ns, super, holder))
	defer c.Close(ctx)
	var present int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM probe WHERE seq = ANY($1)", acked).Scan(&present); err != nil {
		t.Fatal(err)
	}
	if present != len(acked) {
		t.Errorf("%d of %d acknowledged commits missing after the container's restart", len(acked)-present, len(acked))
	}
	// The standbys lost their upstream for the restart and are Ready again
	// once they stream from it.
	waitUntil(ctx, t, "all three instances Ready", time.Second, func() bool {
		for i := 0; i < 3; i++ {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("website-%d", i), metav1.GetOptions{})
			if err != nil || !isReady(*p) {
				return false
			}
		}
		return true
	})
	checkAllAt(ctx, t, cs, ns, 3, image1518, holder)
}
