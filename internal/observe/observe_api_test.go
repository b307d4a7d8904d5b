package observe_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

const instanceImage = "localhost:5000/pgsync:dev"

type apiEnv struct {
	cfg *rest.Config
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

func newAPIEnv(t testing.TB) *apiEnv {
	t.Helper()
	cfg := rest.CopyConfig(kubeenv.APIServer(t))
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &apiEnv{cfg: cfg, cs: cs, dyn: dyn}
}

// loadCluster decodes, defaults and validates a Cluster as the CLI does.
func loadCluster(t testing.TB, ns, name string, instances int) *cluster.Cluster {
	t.Helper()
	y := fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: %s, namespace: %s}
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: %d
  storage: {storageClass: standard, size: 1Gi}
  postgresql:
    parameters: {max_connections: "120", work_mem: 8MB}
`, name, ns, instances)
	set, err := cluster.Load([]cluster.File{{Path: name + ".yaml", Data: []byte(y)}})
	if err != nil {
		t.Fatal(err)
	}
	return set.Clusters[0]
}

// instance is one simulated instance: its pod (nil: no pod), its claim and
// its manager's /status.
type instance struct {
	pod      *podsim.Pod
	request  string // the claim's request ("" = the spec's size)
	capacity string // the claim's status.capacity ("" = the request)
	status   *pc.Status
	hang     bool // the /status server never answers
}

// deploy renders and applies c as pgsync does, then plays the rest: the
// pods, claims and statuses of ins (by ordinal) and the Lease's holder
// ("" = none). opts need only the target primary and the commit.
func (e *apiEnv) deploy(ctx context.Context, t testing.TB, srv *podsim.Servers, c *cluster.Cluster, opts kube.Options, holder string, ins []instance) *kube.Objects {
	t.Helper()
	opts.InstanceImage = instanceImage
	o, err := kube.Render(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := podsim.Apply(ctx, e.dyn, o); err != nil {
		t.Fatal(err)
	}
	sts, err := e.cs.AppsV1().StatefulSets(c.Metadata.Namespace).Get(ctx, c.Metadata.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range ins {
		if err := podsim.CreateClaim(ctx, e.cs, sts, i, in.request, in.capacity); err != nil {
			t.Fatal(err)
		}
		if in.pod == nil {
			continue
		}
		if _, err := podsim.CreatePod(ctx, e.cs, sts, i, *in.pod); err != nil {
			t.Fatal(err)
		}
		switch {
		case in.hang:
			srv.Hang(in.pod.IP)
		case in.status != nil:
			srv.Set(in.pod.IP, *in.status)
		}
	}
	if holder != "" {
		if err := podsim.HoldLease(ctx, e.cs, c.Metadata.Namespace, kube.NamesOf(c).Lease(), holder); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func serve(t testing.TB, ips ...string) *podsim.Servers {
	t.Helper()
	srv, err := podsim.Serve(ips, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func target(name string) kube.Options { return kube.Options{TargetPrimary: name} }

// commit is the Git commit web is applied from.
const commit = "0123456789abcdef0123456789abcdef01234567"

func running(ip string) *podsim.Pod { return &podsim.Pod{IP: ip, Ready: true} }

func primary(c *cluster.Cluster, ordinal int, lsn string) *pc.Status {
	return &pc.Status{Cluster: c.Metadata.Name, Instance: kube.NamesOf(c).Instance(ordinal), Role: pc.StatusPrimary,
		Timeline: 2, CurrentLSN: lsn, ConfigRevision: revision.Config(c), PendingRestart: []string{}}
}

func standby(c *cluster.Cluster, ordinal int, replayed string, ownLag int64) *pc.Status {
	return &pc.Status{Cluster: c.Metadata.Name, Instance: kube.NamesOf(c).Instance(ordinal), Role: pc.StatusStandby,
		Timeline: 2, ReceivedLSN: replayed, ReplayedLSN: replayed, LagBytes: ownLag, Streaming: true,
		ConfigRevision: revision.Config(c), PendingRestart: []string{}}
}

func find(t *testing.T, f *observe.Fleet, ns, name string) *observe.Cluster {
	t.Helper()
	for i := range f.Clusters {
		if f.Clusters[i].Key() == (cluster.Key{Namespace: ns, Name: name}) {
			return &f.Clusters[i]
		}
	}
	t.Fatalf("cluster %s/%s not observed; fleet has %d clusters, skipped %q", ns, name, len(f.Clusters), f.Skipped)
	return nil
}

// statusTimeout is short so the hanging instance costs little; the
// context of each Observe allows far more (Observe must not need it).
const statusTimeout = 500 * time.Millisecond

func observeNS(ctx context.Context, t *testing.T, e *apiEnv, srv *podsim.Servers, ns string) *observe.Fleet {
	t.Helper()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := observe.Observe(octx, e.cs, observe.Options{Namespace: ns, StatusTimeout: statusTimeout,
		Status: observe.DirectStatus{Client: &http.Client{}, Port: srv.Port()}})
	if err != nil {
		t.Fatal(err)
	}
	// Bounded by StatusTimeout, not by the caller's context: a hanging
	// instance must not hold the observation until the caller gives up.
	if octx.Err() != nil {
		t.Fatalf("Observe returned only when its context ended (%v): a hanging /status held it", octx.Err())
	}
	return f
}

// TestAPIObserve: a 3-instance cluster as it runs — primary from the Lease
// holder, each instance's revision, image, readiness, loaded config,
// volume size and lag against the primary's LSN, a pending resize — then
// the instances that cannot be observed as ready: a hanging /status, a
// pod not Ready, a pod missing in the middle and at the end; a
// StatefulSet without the applied spec; the namespace limit.
func TestAPIObserve(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	other := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.0.1", "127.0.0.2", "127.0.0.3", // web
		"127.0.1.1", "127.0.1.2", // slow
		"127.0.2.1", "127.0.2.2", // gap
		"127.0.3.1", "127.0.3.2", // tail
		"127.0.4.1") // web in the other namespace

	// web: the Lease holder web-1 is the primary (the target annotation
	// still says web-0: the holder wins); web-2's claim asks for more than
	// its volume has.
	web := loadCluster(t, ns, "web", 3)
	e.deploy(ctx, t, srv, web, kube.Options{TargetPrimary: "web-0", Commit: commit}, "web-1", []instance{
		{pod: running("127.0.0.1"), status: standby(web, 0, "0/2FFF000", 0)},
		{pod: &podsim.Pod{IP: "127.0.0.2", Ready: true, Restarts: 2}, status: primary(web, 1, "0/3000000")},
		// Replayed past the primary's LSN read a moment earlier: lag 0,
		// not the manager's own (receive − replay) figure.
		{pod: running("127.0.0.3"), status: standby(web, 2, "0/3000100", 4096), request: "2Gi", capacity: "1Gi"},
	})
	// slow: slow-1's manager never answers; slow-0's pod is not Ready.
	slow := loadCluster(t, ns, "slow", 2)
	e.deploy(ctx, t, srv, slow, target("slow-0"), "slow-0", []instance{
		{pod: &podsim.Pod{IP: "127.0.1.1"}, status: primary(slow, 0, "0/5000000")},
		{pod: running("127.0.1.2"), hang: true},
	})
	// gap: the pod of ordinal 1 is missing (down); tail: the last one is
	// (not created yet).
	gap := loadCluster(t, ns, "gap", 3)
	e.deploy(ctx, t, srv, gap, target("gap-0"), "gap-0", []instance{
		{pod: running("127.0.2.1"), status: primary(gap, 0, "0/1000000")},
		{},
		{pod: running("127.0.2.2"), status: standby(gap, 2, "0/1000000", 0)},
	})
	tail := loadCluster(t, ns, "tail", 3)
	e.deploy(ctx, t, srv, tail, target("tail-0"), "tail-0", []instance{
		{pod: running("127.0.3.1"), status: primary(tail, 0, "0/1000000")},
		{pod: running("127.0.3.2"), status: standby(tail, 1, "0/1000000", 0)},
		{},
	})
	// A StatefulSet labelled as pgsync's without the applied spec.
	bare, err := kube.Render(loadCluster(t, ns, "bare", 1), kube.Options{InstanceImage: instanceImage, TargetPrimary: "bare-0"})
	if err != nil {
		t.Fatal(err)
	}
	delete(bare.StatefulSet.Annotations, pc.AnnAppliedSpec)
	if _, err := kube.Apply(ctx, e.dyn, bare.StatefulSet, kube.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same name in another namespace.
	web2 := loadCluster(t, other, "web", 1)
	e.deploy(ctx, t, srv, web2, target("web-0"), "web-0", []instance{{pod: running("127.0.4.1"), status: primary(web2, 0, "0/1000000")}})

	f := observeNS(ctx, t, e, srv, ns)

	// Only ns: its four clusters, sorted; bare skipped with the reason.
	var keys []string
	for _, c := range f.Clusters {
		keys = append(keys, c.Key().String())
	}
	if d := cmp.Diff([]string{ns + "/gap", ns + "/slow", ns + "/tail", ns + "/web"}, keys); d != "" {
		t.Errorf("clusters of --namespace %s (-want +got):\n%s", ns, d)
	}
	if d := cmp.Diff([]string{"StatefulSet " + ns + "/bare: no pgsync.io/applied-spec annotation"}, f.Skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}

	// web, as the planner sees it.
	w := find(t, f, ns, "web")
	rev, conf := revision.Restart(web), revision.Config(web)
	wantWeb := plan.ObservedCluster{Spec: w.Observed.Spec, Primary: 1, Instances: []plan.ObservedInstance{
		{Ordinal: 0, Image: web.Spec.ImageName, Revision: rev, Config: conf, VolumeSize: "1Gi", Ready: true, LagBytes: 0x1000},
		{Ordinal: 1, Image: web.Spec.ImageName, Revision: rev, Config: conf, VolumeSize: "1Gi", Ready: true},
		{Ordinal: 2, Image: web.Spec.ImageName, Revision: rev, Config: conf, VolumeSize: "1Gi", Ready: true},
	}}
	if d := cmp.Diff(wantWeb, w.Observed); d != "" {
		t.Errorf("web observed (-want +got):\n%s", d)
	}
	// The applied spec reads back as the spec applied.
	if d := cmp.Diff(web.Spec, w.Observed.Spec.Spec); d != "" {
		t.Errorf("applied spec read back (-applied +read):\n%s", d)
	}
	if w.LeaseHolder != "web-1" || w.TargetPrimary != "web-0" || w.Commit != commit {
		t.Errorf("web: holder %q, target %q, commit %q; want web-1, web-0 and %s", w.LeaseHolder, w.TargetPrimary, w.Commit, commit)
	}
	if g := find(t, f, ns, "gap"); g.Commit != "" {
		t.Errorf("gap, applied with no commit: commit %q", g.Commit)
	}
	if in := w.Instances[1]; in.Restarts != 2 || in.Phase != corev1.PodRunning || in.Status == nil || in.Status.Role != pc.StatusPrimary {
		t.Errorf("web-1: %+v", in)
	}
	for i, in := range w.Instances {
		wantPending := i == 2
		if in.ResizePending != wantPending || in.Capacity != "1Gi" {
			t.Errorf("%s: capacity %s, requested %s, resize pending %v; want 1Gi and pending %v", in.Name, in.Capacity, in.Requested, in.ResizePending, wantPending)
		}
	}

	// slow: neither instance is ready, each with why; the hanging one
	// timed out alone.
	s := find(t, f, ns, "slow")
	if in := s.Instances[0]; in.Ready || in.NotReady != "pod is not Ready (phase Running)" {
		t.Errorf("slow-0 (pod not Ready): ready %v, reason %q", in.Ready, in.NotReady)
	}
	if in := s.Instances[1]; in.Ready || in.Status != nil || !strings.HasPrefix(in.NotReady, "status unreadable: GET http://127.0.1.2:") ||
		!strings.Contains(in.NotReady, "deadline exceeded") {
		t.Errorf("slow-1 (hanging /status): ready %v, reason %q", in.Ready, in.NotReady)
	}
	if got := s.Observed.Instances; len(got) != 2 || got[0].Ready || got[1].Ready || got[0].Revision == "" {
		t.Errorf("slow observed: %+v; want two instances, not ready, with their revisions", got)
	}

	// gap: the missing pod in the middle is an instance that is down (no
	// revision: the planner restarts it first); tail: the missing last pod
	// is one still to be created (trimmed).
	g := find(t, f, ns, "gap")
	if got := g.Observed.Instances; len(got) != 3 || got[1] != (plan.ObservedInstance{Ordinal: 1, VolumeSize: "1Gi"}) || !got[0].Ready || !got[2].Ready {
		t.Errorf("gap observed: %+v; want 3 instances, ordinal 1 not ready with no revision", got)
	}
	if in := g.Instances[1]; in.PodExists || in.NotReady != "pod missing" {
		t.Errorf("gap-1: %+v", in)
	}
	tl := find(t, f, ns, "tail")
	if got := tl.Observed.Instances; len(got) != 2 || !got[0].Ready || !got[1].Ready {
		t.Errorf("tail observed: %+v; want the 2 running instances only", got)
	}
	if len(tl.Instances) != 3 || tl.Instances[2].NotReady != "pod missing" {
		t.Errorf("tail instances: %+v; want the missing tail-2 listed for status", tl.Instances)
	}

	// Every namespace: both webs.
	all := observeNS(ctx, t, e, srv, "")
	w2 := find(t, all, other, "web")
	if len(w2.Observed.Instances) != 1 || !w2.Observed.Instances[0].Ready {
		t.Errorf("%s/web: %+v", other, w2.Observed)
	}
	find(t, all, ns, "web")

	// Removed from Git: orphaned, or deleted with --prune.
	only := plan.Observed{Clusters: []plan.ObservedCluster{w.Observed}}
	for _, tc := range []struct {
		prune bool
		want  plan.Action
	}{{false, plan.ActionOrphan}, {true, plan.ActionDelete}} {
		p, err := plan.Make(nil, only, plan.Options{Prune: tc.prune})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Clusters) != 1 || p.Clusters[0].Action != tc.want {
			t.Errorf("prune %v: plan %+v; want %s", tc.prune, p.Clusters, tc.want)
		}
	}
	// Still in Git: nothing to do.
	p, err := plan.Make([]*cluster.Cluster{web}, only, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Clusters) != 1 || p.Clusters[0].Action != plan.ActionNoOp {
		t.Errorf("web in Git as applied: plan %+v; want no-op", p.Clusters)
	}
}

// drift observes ns and returns the drift FindDrift finds in cluster name.
func (e *apiEnv) drift(ctx context.Context, t *testing.T, srv *podsim.Servers, ns, name string) []string {
	t.Helper()
	f := observeNS(ctx, t, e, srv, ns)
	if err := f.FindDrift(ctx, e.dyn, nil); err != nil {
		t.Fatal(err)
	}
	return find(t, f, ns, name).Observed.Drift
}

// TestAPIDrift: what was just applied has no drift, server defaults and
// other managers' additions included; a hand edit of a field pgsync
// renders, a hand-edited Role rule and a deleted object are drift, named.
func TestAPIDrift(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.5.1", "127.0.5.2", "127.0.5.3")
	web := loadCluster(t, ns, "web", 3)
	e.deploy(ctx, t, srv, web, kube.Options{TargetPrimary: "web-0", Commit: commit}, "web-0", []instance{
		{pod: running("127.0.5.1"), status: primary(web, 0, "0/3000000")},
		{pod: running("127.0.5.2"), status: standby(web, 1, "0/3000000", 0)},
		{pod: running("127.0.5.3"), status: standby(web, 2, "0/3000000", 0)},
	})

	// Every check goes through one DriftCache, as the daemon's cycles do,
	// over a client that counts the dry runs it sends: each edit below
	// is found all the same, and a check after no change sends none.
	var dryRuns atomic.Int32
	counted := rest.CopyConfig(e.cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPatch && r.URL.Query().Get("dryRun") == "All" {
				dryRuns.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	dyn, err := dynamic.NewForConfig(counted)
	if err != nil {
		t.Fatal(err)
	}
	var cache observe.DriftCache
	check := func(step string, want []string) int32 {
		t.Helper()
		before := dryRuns.Load()
		f := observeNS(ctx, t, e, srv, ns)
		if err := f.FindDriftCached(ctx, dyn, nil, &cache); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, find(t, f, ns, "web").Observed.Drift); d != "" {
			t.Errorf("%s: drift (-want +got):\n%s", step, d)
		}
		return dryRuns.Load() - before
	}
	// Just applied, with the managers' Lease holder and the server's
	// defaults in place: no drift. The defaults are there to be seen.
	if n := check("just applied", nil); n == 0 {
		t.Error("the first check sent no dry run: the StatefulSet needs one (the counter counts nothing?)")
	}
	if n := check("just applied, again", nil); n != 0 {
		t.Errorf("a second check with nothing changed sent %d dry runs, want 0 (cached)", n)
	}
	svc, err := e.cs.CoreV1().Services(ns).Get(ctx, "web-rw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityNone || len(svc.Spec.IPFamilies) == 0 || svc.Spec.ClusterIP == "" {
		t.Errorf("web-rw lacks the server's defaults the empty drift covers: %+v", svc.Spec)
	}
	sts, err := e.cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sts.Spec.RevisionHistoryLimit == nil || *sts.Spec.RevisionHistoryLimit != 10 || sts.Spec.Template.Spec.SchedulerName == "" {
		t.Errorf("StatefulSet web lacks the server's defaults the empty drift covers: revisionHistoryLimit %v, schedulerName %q",
			sts.Spec.RevisionHistoryLimit, sts.Spec.Template.Spec.SchedulerName)
	}

	// Another manager's annotation (kubectl annotate) is not pgsync's.
	svc.Annotations = map[string]string{"example.com/owner": "team-a"}
	if svc, err = e.cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-annotate"}); err != nil {
		t.Fatal(err)
	}
	check("another manager's annotation", nil)

	// kubectl edit of the port pgsync renders.
	svc.Spec.Ports[0].Port = 5433
	if _, err := e.cs.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	check("hand-edited port", []string{"Service web-rw: spec.ports[0].port"})

	// A Role rule widened by hand (Roles are compared without a dry run).
	r, err := e.cs.RbacV1().Roles(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Rules[0].Verbs = append(r.Rules[0].Verbs, "delete")
	if _, err := e.cs.RbacV1().Roles(ns).Update(ctx, r, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	check("hand-edited Role", []string{"Role web: rules[0].verbs", "Service web-rw: spec.ports[0].port"})

	// kubectl set image on the StatefulSet's postgres container.
	sts, err = e.cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sts.Spec.Template.Spec.Containers[0].Image = "localhost:5000/postgresql:15.20"
	if _, err := e.cs.AppsV1().StatefulSets(ns).Update(ctx, sts, metav1.UpdateOptions{FieldManager: "kubectl-set"}); err != nil {
		t.Fatal(err)
	}
	check("hand-set image", []string{"Role web: rules[0].verbs", "Service web-rw: spec.ports[0].port",
		"StatefulSet web: spec.template.spec.containers[0].image"})

	// A deleted object.
	if err := e.cs.CoreV1().ConfigMaps(ns).Delete(ctx, "web-params", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	check("deleted ConfigMap", []string{"Role web: rules[0].verbs", "ConfigMap web-params: missing", "Service web-rw: spec.ports[0].port",
		"StatefulSet web: spec.template.spec.containers[0].image"})
	if n := check("nothing changed since", []string{"Role web: rules[0].verbs", "ConfigMap web-params: missing", "Service web-rw: spec.ports[0].port",
		"StatefulSet web: spec.template.spec.containers[0].image"}); n != 0 {
		t.Errorf("a check with nothing changed sent %d dry runs, want 0 (cached)", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestAPIProxyStatusReason: when the API server refuses to proxy a /status
// read, the instance's reason says why in the server's words (here: it
// never proxies to a loopback address, which is also why the proxy path
// cannot be exercised end to end with loopback pod IPs).
func TestAPIProxyStatusReason(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.6.1")
	web := loadCluster(t, ns, "web", 1)
	e.deploy(ctx, t, srv, web, target("web-0"), "web-0", []instance{{pod: running("127.0.6.1"), status: primary(web, 0, "0/1000000")}})
	f, err := observe.Observe(ctx, e.cs, observe.Options{Namespace: ns, Status: observe.ProxyStatus{Client: e.cs}})
	if err != nil {
		t.Fatal(err)
	}
	in := find(t, f, ns, "web").Instances[0]
	want := "status unreadable: pod proxy " + ns + "/web-0/status: address not allowed (HTTP 400)"
	if in.Ready || !strings.HasPrefix(in.NotReady, want) {
		t.Errorf("web-0 through the pod proxy: ready %v, reason %q; want it to start with %q", in.Ready, in.NotReady, want)
	}
}
