package daemon_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/daemon"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/gittest"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

const instanceImage = "localhost:5000/pgsync:dev"

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func outcomes(r daemon.Report) map[string]string {
	out := map[string]string{}
	for _, c := range r.Clusters {
		out[c.Cluster] = string(c.Outcome) + " " + c.Step
	}
	return out
}

// fleetEnv is a namespace of converged clusters (podsim) and the Git
// repository they were applied from.
type fleetEnv struct {
	cs    kubernetes.Interface
	dyn   dynamic.Interface
	md    metadata.Interface
	ns    string
	srv   *podsim.Servers
	repo  *gittest.Repo
	sha   string
	specs map[string]*cluster.Cluster
}

// newFleetEnv commits files (clusters/NAME.yaml, one per ips key) and
// deploys each cluster converged at that commit, instance n at ips[NAME][n].
func newFleetEnv(ctx context.Context, t *testing.T, files func(ns string) map[string]string, ips map[string][]string) *fleetEnv {
	t.Helper()
	cfg := rest.CopyConfig(kubeenv.APIServer(t))
	cfg.QPS, cfg.Burst = 500, 1000
	e := &fleetEnv{cs: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg), md: metadata.NewForConfigOrDie(cfg),
		ns: kubeenv.Namespace(t, cfg), repo: gittest.NewRepo(t), specs: map[string]*cluster.Cluster{}}
	e.repo.Write(files(e.ns))
	e.sha = e.repo.Commit("clusters", nil)
	var all []string
	for _, v := range ips {
		all = append(all, v...)
	}
	srv, err := podsim.Serve(all, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.srv = srv
	for name, data := range files(e.ns) {
		set, err := cluster.Load([]cluster.File{{Path: name, Data: []byte(data)}})
		if err != nil {
			t.Fatal(err)
		}
		c := set.Clusters[0]
		e.specs[c.Metadata.Name] = c
		if err := podsim.DeployConverged(ctx, e.cs, e.dyn, srv, c, e.sha, instanceImage, ips[c.Metadata.Name]); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// daemon is a daemon of e's namespace observing through a Watch, on clk,
// whose steps gate may hold back.
func (e *fleetEnv) daemon(ctx context.Context, t *testing.T, clk *clock, gate daemon.Gate) *daemon.Daemon {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	status := observe.DirectStatus{Client: &http.Client{}, Port: e.srv.Port()}
	exec := &apply.Executor{Client: e.cs, Dynamic: e.dyn, Status: status, InstanceImage: instanceImage, Random: rand.Reader, Log: log}
	run := &apply.Run{Exec: exec, Owner: "test"}
	d := daemon.New(daemon.Config{Source: desired.Source{Repo: e.repo.Dir, Ref: "main", Path: "clusters"}, Namespace: e.ns,
		Owner: "test", StatusRefresh: 5 * time.Minute, Gate: gate, MaxRolling: 2},
		run, observe.Options{Status: status, StatusTimeout: time.Second}, log, clk.Now, mrand.New(mrand.NewPCG(1, 2)))
	w, err := observe.NewWatch(ctx, e.cs, e.md, e.ns, log)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	t.Cleanup(func() { stop(); w.Shutdown() })
	if err := w.Start(wctx); err != nil {
		t.Fatal(err)
	}
	d.Watch(w)
	return d
}

// holdStep holds back every step of action, once the fleet order let it
// through: what matters is that it would run.
func holdStep(action plan.StepAction) daemon.Gate {
	return func(_ *observe.Cluster, _ *cluster.Cluster, s plan.Step) error {
		if s.Action == action {
			return &apply.WaitError{Reason: "held by the test"}
		}
		return nil
	}
}

const image1518, image1520 = "localhost:5000/postgresql:15.18", "localhost:5000/postgresql:15.20"

// TestAPIDaemonWatch: with a Watch, a cycle reads and plans only what may
// have changed. Two converged clusters: the first cycle observes both,
// an idle one neither (no /status read); a Service edited by hand is
// noticed through its watch and put back, only its cluster observed; a
// change only an instance's /status shows is not seen until
// StatusRefresh has passed (injected clock), then it is; a new commit
// re-plans every cluster from what was observed, reading none again.
func TestAPIDaemonWatch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbWorkMem := "4MB"
	files := func(ns string) map[string]string {
		return map[string]string{
			"clusters/web.yaml": clusterfile.Cluster{Name: "web", Namespace: ns, Image: image1518, Instances: 2}.YAML(),
			"clusters/db.yaml": clusterfile.Cluster{Name: "db", Namespace: ns, Image: image1518, Instances: 1,
				Parameters: map[string]string{"work_mem": dbWorkMem}}.YAML(),
		}
	}
	ips := map[string][]string{"web": {"127.0.6.1", "127.0.6.2"}, "db": {"127.0.6.3"}}
	e := newFleetEnv(ctx, t, files, ips)
	cs, ns, srv, sha := e.cs, e.ns, e.srv, e.sha
	clk := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	// Reloads are held: what matters is that they are planned.
	d := e.daemon(ctx, t, clk, holdStep(plan.StepReloadConfig))

	web, db := ns+"/web", ns+"/db"
	converged := map[string]string{web: "converged ", db: "converged "}
	cycle := func(what string, wantObserved int, want map[string]string) daemon.Report {
		t.Helper()
		before := srv.Requests()
		r := d.Cycle(ctx)
		if r.Err != "" {
			t.Fatalf("%s: cycle error %s", what, r.Err)
		}
		got := outcomes(r)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s %q, want %q", what, k, got[k], v)
			}
		}
		if r.Observed != wantObserved {
			t.Errorf("%s: observed %d clusters, want %d", what, r.Observed, wantObserved)
		}
		if wantObserved == 0 && srv.Requests() != before {
			t.Errorf("%s: %d /status reads, want none", what, srv.Requests()-before)
		}
		return r
	}
	cycle("first cycle", 2, converged)
	clk.Add(time.Minute)
	cycle("idle cycle", 0, converged)

	// A hand edit: seen through the watch, put back, web alone observed.
	ro := kube.NamesOf(e.specs["web"]).RO()
	if _, err := cs.CoreV1().Services(ns).Patch(ctx, ro, types.MergePatchType,
		[]byte(`{"spec":{"selector":{"`+pc.LabelRole+`":"primary"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var r daemon.Report
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r = d.Cycle(ctx); outcomes(r)[web] != "converged " {
			break
		}
	}
	if got := outcomes(r); got[web] != "progressing update-objects" || got[db] != "converged " || r.Observed != 1 {
		t.Fatalf("after the hand edit: %v, %d observed; want web's update-objects, web alone observed", got, r.Observed)
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, ro, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Spec.Selector[pc.LabelRole]; got != pc.RoleReplica {
		t.Errorf("-ro selects role %q after update-objects, want %q", got, pc.RoleReplica)
	}
	cycle("after update-objects", 1, converged)
	// The step's own writes may reach the watch after that cycle (a busy
	// CI machine saw it): web is read again then, and the next cycle
	// must be idle.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r := d.Cycle(ctx); r.Err == "" && r.Observed == 0 {
			break
		}
	}
	cycle("idle again", 0, converged)

	// Only /status shows it: not seen while unchanged, seen once
	// StatusRefresh has passed since web was last read.
	srv.Set(ips["web"][1], podsim.ConvergedStatus(e.specs["web"], 1, "stale"))
	cycle("status changed, before the refresh", 0, converged)
	clk.Add(5 * time.Minute)
	cycle("after the refresh", 2, map[string]string{web: "waiting reload-config", db: "converged "})

	// A new commit: planned from what was observed — db's new ConfigMap
	// (then its reload), web still waiting (it is not converged, so read
	// again), db not read.
	dbWorkMem = "8MB"
	e.repo.Write(files(ns))
	e.repo.Commit("db: work_mem 8MB", nil)
	clk.Add(time.Minute)
	r = cycle("new commit", 1, map[string]string{web: "waiting reload-config", db: "progressing update-objects"})
	if r.Commit == sha {
		t.Errorf("planned from %s, the old commit", r.Commit)
	}
}

// TestAPIDaemonWindow: a version bump of a cluster with a maintenance
// window waits while the window is closed — saying when it opens — and
// its first restart goes ahead once the clock is inside it (injected, not
// slept through); a cluster with no window rolls at once.
func TestAPIDaemonWindow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	image := image1518
	files := func(ns string) map[string]string {
		return map[string]string{
			"clusters/night.yaml": clusterfile.Cluster{Name: "night", Namespace: ns, Image: image, Instances: 2,
				Annotations: map[string]string{"pgsync.io/maintenance-window": "Sat 02:00-04:00 UTC"}}.YAML(),
			"clusters/any.yaml": clusterfile.Cluster{Name: "any", Namespace: ns, Image: image, Instances: 2}.YAML(),
		}
	}
	e := newFleetEnv(ctx, t, files, map[string][]string{"night": {"127.0.8.1", "127.0.8.2"}, "any": {"127.0.8.3", "127.0.8.4"}})
	// Friday 2026-12-04 12:00 UTC: the window opens Saturday 02:00.
	clk := &clock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	d := e.daemon(ctx, t, clk, holdStep(plan.StepRestartInstance))
	night, anyTime := e.ns+"/night", e.ns+"/any"
	if r := d.Cycle(ctx); outcomes(r)[night] != "converged " || outcomes(r)[anyTime] != "converged " {
		t.Fatalf("before the bump: %v", outcomes(r))
	}

	image = image1520
	e.repo.Write(files(e.ns))
	e.repo.Commit("15.20", nil)
	reasons := func(r daemon.Report) map[string]string {
		out := map[string]string{}
		for _, c := range r.Clusters {
			out[c.Cluster] = c.Reason
		}
		return out
	}
	// The new template first (no restart: not gated), then the restarts.
	if r := d.Cycle(ctx); outcomes(r)[night] != "progressing update-objects" || outcomes(r)[anyTime] != "progressing update-objects" {
		t.Fatalf("after the bump: %v; want both templates updated first", outcomes(r))
	}
	for _, at := range []time.Time{clk.Now(), time.Date(2026, 12, 5, 1, 59, 0, 0, time.UTC)} {
		clk.now = at
		r := d.Cycle(ctx)
		got, why := outcomes(r), reasons(r)
		if got[night] != "waiting restart-instance night-1" || !strings.Contains(why[night], "waiting for window Sat 02:00-04:00 UTC, opens 2026-12-05T02:00Z") {
			t.Errorf("%s, window closed: night %q (%s); want its restart waiting for the window", at, got[night], why[night])
		}
		if got[anyTime] != "waiting restart-instance any-1" || why[anyTime] != "held by the test" {
			t.Errorf("%s: any %q (%s); want its restart let through (then held by the test)", at, got[anyTime], why[anyTime])
		}
	}
	clk.now = time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	r := d.Cycle(ctx)
	if got, why := outcomes(r)[night], reasons(r)[night]; got != "waiting restart-instance night-1" || why != "held by the test" {
		t.Errorf("window open: night %q (%s); want its restart let through", got, why)
	}
}
