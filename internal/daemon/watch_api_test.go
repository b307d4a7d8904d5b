package daemon_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
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

// TestAPIDaemonWatch: with a Watch, a cycle reads and plans only what may
// have changed. Two converged clusters: the first cycle observes both,
// an idle one neither (no /status read); a Service edited by hand is
// noticed through its watch and put back, only its cluster observed; a
// change only an instance's /status shows is not seen until
// StatusRefresh has passed (injected clock), then it is; a new commit
// re-plans every cluster from what was observed, reading none again.
func TestAPIDaemonWatch(t *testing.T) {
	cfg := rest.CopyConfig(kubeenv.APIServer(t))
	cfg.QPS, cfg.Burst = 500, 1000
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	md := metadata.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, cfg)

	files := func(dbWorkMem string) map[string]string {
		return map[string]string{
			"clusters/web.yaml": clusterfile.Cluster{Name: "web", Namespace: ns, Image: "localhost:5000/postgresql:15.18", Instances: 2}.YAML(),
			"clusters/db.yaml": clusterfile.Cluster{Name: "db", Namespace: ns, Image: "localhost:5000/postgresql:15.18", Instances: 1,
				Parameters: map[string]string{"work_mem": dbWorkMem}}.YAML(),
		}
	}
	repo := gittest.NewRepo(t)
	repo.Write(files("4MB"))
	sha := repo.Commit("two clusters", nil)
	var specs []*cluster.Cluster
	for _, name := range []string{"web", "db"} {
		set, err := cluster.Load([]cluster.File{{Path: name + ".yaml", Data: []byte(files("4MB")["clusters/"+name+".yaml"])}})
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, set.Clusters[0])
	}
	ips := map[string][]string{"web": {"127.0.6.1", "127.0.6.2"}, "db": {"127.0.6.3"}}
	srv, err := podsim.Serve([]string{"127.0.6.1", "127.0.6.2", "127.0.6.3"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, c := range specs {
		if err := podsim.DeployConverged(ctx, cs, dyn, srv, c, sha, instanceImage, ips[c.Metadata.Name]); err != nil {
			t.Fatal(err)
		}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	status := observe.DirectStatus{Client: &http.Client{}, Port: srv.Port()}
	exec := &apply.Executor{Client: cs, Dynamic: dyn, Status: status, InstanceImage: instanceImage, Random: rand.Reader, Log: log}
	run := &apply.Run{Exec: exec, Owner: "test"}
	clk := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	// Reloads are held: what matters is that they are planned.
	hold := func(_ *observe.Cluster, _ *cluster.Cluster, s plan.Step) error {
		if s.Action == plan.StepReloadConfig {
			return &apply.WaitError{Reason: "held by the test"}
		}
		return nil
	}
	d := daemon.New(daemon.Config{Source: desired.Source{Repo: repo.Dir, Ref: "main", Path: "clusters"}, Namespace: ns,
		Owner: "test", StatusRefresh: 5 * time.Minute, Gate: hold},
		run, observe.Options{Status: status, StatusTimeout: time.Second}, log, clk.Now, mrand.New(mrand.NewPCG(1, 2)))
	w, err := observe.NewWatch(ctx, cs, md, ns, log)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer func() { stop(); w.Shutdown() }()
	if err := w.Start(wctx); err != nil {
		t.Fatal(err)
	}
	d.Watch(w)

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
	ro := kube.NamesOf(specs[0]).RO()
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
	cycle("idle again", 0, converged)

	// Only /status shows it: not seen while unchanged, seen once
	// StatusRefresh has passed since web was last read.
	srv.Set(ips["web"][1], podsim.ConvergedStatus(specs[0], 1, "stale"))
	cycle("status changed, before the refresh", 0, converged)
	clk.Add(5 * time.Minute)
	cycle("after the refresh", 2, map[string]string{web: "waiting reload-config", db: "converged "})

	// A new commit: planned from what was observed — db's new ConfigMap
	// (then its reload), web still waiting (it is not converged, so read
	// again), db not read.
	repo.Write(files("8MB"))
	repo.Commit("db: work_mem 8MB", nil)
	clk.Add(time.Minute)
	r = cycle("new commit", 1, map[string]string{web: "waiting reload-config", db: "progressing update-objects"})
	if r.Commit == sha {
		t.Errorf("planned from %s, the old commit", r.Commit)
	}
}
