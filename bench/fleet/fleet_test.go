package fleet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/benchstat"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
)

const (
	instanceImage = "localhost:5000/pgsync:dev"
	namespaces    = 20
	instances     = 3
	interval      = 10 * time.Second
	// clkTck is USER_HZ, the unit of /proc/PID/stat's utime and stime
	// (100 on every Linux architecture Go supports).
	clkTck = 100
)

func TestMain(m *testing.M) {
	code := kubeenv.Main(m)
	insttest.RemoveBinary()
	os.Exit(code)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// clusterYAML is one generated Cluster; workMem is the reload-only
// parameter the changed commit edits.
func clusterYAML(ns, name, workMem string) string {
	return clusterfile.Cluster{Name: name, Namespace: ns, Image: "localhost:5000/postgresql:15.18", Instances: instances,
		Description: "Generated fleet cluster", Parameters: map[string]string{"work_mem": workMem}}.YAML()
}

// podIP is instance n of cluster c: distinct loopback addresses
// (Linux routes all of 127.0.0.0/8 to lo).
func podIP(c, n int) string { return fmt.Sprintf("127.%d.%d.%d", 101+c/250, c%250, n+1) }

type fleetBench struct {
	b         *testing.B
	cfg       *rest.Config
	cs        kubernetes.Interface
	dyn       dynamic.Interface
	repo      string
	srv       *podsim.Servers
	specs     []*cluster.Cluster // at the first commit, in file order
	files     []string           // repository paths, same order
	index     map[cluster.Key]int
	commit    string
	nClusters int
}

func (x *fleetBench) git(args ...string) string {
	x.b.Helper()
	cmd := exec.Command("git", append([]string{"-C", x.repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
		"-c", "commit.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		x.b.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// writeRepo commits one Cluster file per cluster, spread over the
// namespaces, and loads them as the daemon will.
func (x *fleetBench) writeRepo(nss []string) {
	x.b.Helper()
	x.git("init", "-q", "-b", "main")
	var files []cluster.File
	for c := 0; c < x.nClusters; c++ {
		ns := nss[c%len(nss)]
		rel := filepath.Join("clusters", ns, fmt.Sprintf("db-%04d.yaml", c))
		data := clusterYAML(ns, fmt.Sprintf("db-%04d", c), "8MB")
		if err := os.MkdirAll(filepath.Join(x.repo, filepath.Dir(rel)), 0o755); err != nil {
			x.b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(x.repo, rel), []byte(data), 0o644); err != nil {
			x.b.Fatal(err)
		}
		x.files = append(x.files, rel)
		files = append(files, cluster.File{Path: rel, Data: []byte(data)})
	}
	x.git("add", "-A")
	x.git("commit", "-q", "-m", "1,000 clusters")
	x.git("gc", "-q")
	x.commit = x.git("rev-parse", "HEAD")
	set, err := cluster.Load(files)
	if err != nil {
		x.b.Fatal(err)
	}
	byKey := map[cluster.Key]*cluster.Cluster{}
	for _, c := range set.Clusters {
		byKey[c.Key()] = c
	}
	x.index = map[cluster.Key]int{}
	for c := 0; c < x.nClusters; c++ {
		k := cluster.Key{Namespace: nss[c%len(nss)], Name: fmt.Sprintf("db-%04d", c)}
		spec := byKey[k]
		if spec == nil {
			x.b.Fatalf("cluster %s not loaded", k)
		}
		x.specs = append(x.specs, spec)
		x.index[k] = c
	}
}

// deploy makes cluster i look converged and running (podsim).
func (x *fleetBench) deploy(ctx context.Context, i int) error {
	ips := make([]string, instances)
	for n := range ips {
		ips[n] = podIP(i, n)
	}
	return podsim.DeployConverged(ctx, x.cs, x.dyn, x.srv, x.specs[i], x.commit, instanceImage, ips)
}

// observeFleet observes as the daemon does (Observe, then FindDrift).
func (x *fleetBench) observeFleet(ctx context.Context) *observe.Fleet {
	x.b.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	defer tr.CloseIdleConnections()
	f, err := observe.Observe(ctx, x.cs, observe.Options{Status: observe.DirectStatus{Client: &http.Client{Transport: tr, Timeout: 2 * time.Second}}})
	if err != nil {
		x.b.Fatal(err)
	}
	if err := f.FindDrift(ctx, x.dyn, nil); err != nil {
		x.b.Fatal(err)
	}
	return f
}

// observedOf indexes a fleet's clusters.
func observedOf(f *observe.Fleet) map[cluster.Key]plan.ObservedCluster {
	m := map[cluster.Key]plan.ObservedCluster{}
	for _, c := range f.Clusters {
		m[c.Key()] = c.Observed
	}
	return m
}

// steps is the number of steps plan.Make plans for specs against f, and
// the first few clusters that have any.
func steps(b *testing.B, specs []*cluster.Cluster, f *observe.Fleet) (int, []string) {
	b.Helper()
	var obs plan.Observed
	for _, c := range f.Clusters {
		obs.Clusters = append(obs.Clusters, c.Observed)
	}
	p, err := plan.Make(specs, obs, plan.Options{})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	var which []string
	for _, cp := range p.Clusters {
		n += len(cp.Steps)
		if (len(cp.Steps) > 0 || cp.Halted != "" || len(cp.Changes) > 0) && len(which) < 5 {
			var kinds []string
			for _, s := range cp.Steps {
				kinds = append(kinds, string(s.Action)+" "+s.Instance)
			}
			which = append(which, fmt.Sprintf("%s/%s %s %v changes=%d", cp.Namespace, cp.Name, cp.Action, kinds, len(cp.Changes)))
		}
	}
	return n, which
}

// BenchmarkFleet runs `pgsync run` over 1,000 converged clusters and
// reports its RSS, idle CPU and idle cycle duration, checks from its log
// that idle cycles decode nothing, then commits a change to one cluster
// and times plan.Make for it in-process against the observed fleet.
func BenchmarkFleet(b *testing.B) {
	x := &fleetBench{b: b, repo: b.TempDir(), nClusters: envInt("BENCH_FLEET_CLUSTERS", 1000)}
	idle := envDuration("BENCH_FLEET_IDLE", 60*time.Second)
	windows := envInt("BENCH_FLEET_WINDOWS", 3)
	x.cfg = kubeenv.APIServer(b)
	setup := rest.CopyConfig(x.cfg)
	setup.QPS, setup.Burst = 2000, 4000 // setup only; the daemon uses its own client settings
	var err error
	if x.cs, err = kubernetes.NewForConfig(setup); err != nil {
		b.Fatal(err)
	}
	if x.dyn, err = dynamic.NewForConfig(setup); err != nil {
		b.Fatal(err)
	}
	bin := insttest.Binary(b)
	ctx := context.Background()

	var nss []string
	for i := 0; i < namespaces; i++ {
		nss = append(nss, kubeenv.Namespace(b, x.cfg))
	}
	x.writeRepo(nss)
	var ips []string
	for c := 0; c < x.nClusters; c++ {
		for n := 0; n < instances; n++ {
			ips = append(ips, podIP(c, n))
		}
	}
	// One listener per pod IP on the managers' real port: the daemon
	// reads /status at podIP:HTTPPort and cannot be told another port.
	if x.srv, err = podsim.Serve(ips, pc.HTTPPort); err != nil {
		b.Fatal(err)
	}
	defer x.srv.Close()

	t0 := time.Now()
	sem := make(chan struct{}, 32)
	errs := make([]error, x.nClusters)
	var wg sync.WaitGroup
	for i := range x.specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = x.deploy(ctx, i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %d clusters × %d instances in %d namespaces applied in %s", x.nClusters, instances, len(nss), time.Since(t0).Round(time.Second))

	// What the daemon will see must be converged: no drift, no step.
	before := x.observeFleet(ctx)
	if len(before.Clusters) != x.nClusters || len(before.Skipped) > 0 {
		b.Fatalf("observed %d clusters (skipped %q), want %d", len(before.Clusters), before.Skipped, x.nClusters)
	}
	for _, c := range before.Clusters {
		if len(c.Observed.Drift) > 0 {
			b.Fatalf("%s drifts: %q", c.Key(), c.Observed.Drift)
		}
	}
	if n, which := steps(b, x.specs, before); n != 0 || len(which) > 0 {
		b.Fatalf("the fleet is not converged: %d steps planned, e.g. %q", n, which)
	}
	b.Logf("observed: %d clusters, 0 drift, plan.Make plans 0 steps", len(before.Clusters))

	// The daemon.
	dir := b.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := kubeenv.WriteKubeconfig(kubeconfig, x.cfg); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	d := &daemon{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "daemon.log")}
	logf, err := os.Create(d.log)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	// BENCH_FLEET_KEEP_LOG: where to keep the daemon's log (JSON and
	// gctrace lines) after the run.
	if keep := os.Getenv("BENCH_FLEET_KEEP_LOG"); keep != "" {
		defer func() {
			if data, err := os.ReadFile(d.log); err == nil {
				_ = os.WriteFile(keep, data, 0o644)
			}
		}()
	}
	d.cmd = exec.Command(bin, "run", "--repo", x.repo, "--path", "clusters", "--interval", interval.String(),
		"--leader-elect=false", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--status-via", "direct",
		"--kubeconfig", kubeconfig, "--debug-pprof")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// gctrace: the runtime's own heap figures (live heap after each GC),
	// to tell live data from the collector's headroom in the RSS.
	d.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "GODEBUG=gctrace=1")
	// BENCH_FLEET_GOMEMLIMIT: the daemon's soft memory limit (Go's
	// GOMEMLIMIT, as a Deployment would set it from its memory limit).
	if lim := os.Getenv("BENCH_FLEET_GOMEMLIMIT"); lim != "" {
		d.cmd.Env = append(d.cmd.Env, "GOMEMLIMIT="+lim)
		b.Logf("the daemon runs with GOMEMLIMIT=%s", lim)
	}
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := d.cmd.Process.Pid
	defer func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
	}()
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go d.sampleRSS(sctx)
	// BENCH_FLEET_STARTUP_PROFILES: a directory where the daemon's heap
	// profile is saved every 100 ms through the warm-up (heap-MS.pprof,
	// MS since the daemon started), to find what the start-up peak holds.
	pctx, stopProfiles := context.WithCancel(ctx)
	defer stopProfiles()
	if dir := os.Getenv("BENCH_FLEET_STARTUP_PROFILES"); dir != "" {
		go d.saveHeapProfiles(pctx, dir, time.Now())
	}

	// Warm-up: three cycles over the fleet; each must find all converged.
	var cycleMs []float64 // idle cycles' /status lastCycle.duration
	var lastStarted time.Time
	record := func(r report) {
		if r.Last.Started.Equal(lastStarted) {
			return
		}
		lastStarted = r.Last.Started
		o := r.outcomes()
		if r.Last.Err != "" || o["converged"] != x.nClusters {
			b.Errorf("cycle at %s: error %q, outcomes %v", r.Last.Started.Format(time.TimeOnly), r.Last.Err, o)
		}
		cycleMs = append(cycleMs, float64(r.Last.Duration.Microseconds())/1000)
	}
	t0 = time.Now()
	d.waitCycles(b, 3, 10*time.Minute, record)
	firstCycles := slices.Clone(cycleMs)
	// The warm-up's peak (the first Lists, the first full cycle) apart
	// from the steady state's.
	stopProfiles()
	warmHWM := procStatus(pid, "VmHWM")
	d.mu.Lock()
	warmPeak := d.rssMax
	d.rssMax = 0
	d.mu.Unlock()
	b.Logf("RSS peak during start-up and the three warm-up cycles: %.1f MB sampled, VmHWM %.1f MB", float64(warmPeak)/1024, float64(warmHWM)/1024)
	b.Logf("three cycles after %s; their durations (ms; the first loads the commit): %s", time.Since(t0).Round(time.Second), fmts(firstCycles, "%.0f"))
	cycleMs = cycleMs[1:] // the first cycle decoded the commit: not idle
	loadsAtStart := d.loads(b)
	if loadsAtStart != 1 {
		b.Errorf("the daemon logged %d commit loads in its first cycles, want 1", loadsAtStart)
	}

	// Idle windows: nothing committed; CPU of the daemon over each.
	var cpuPct, meanCycleMs, cyclesPer []float64
	for w := 0; w < windows; w++ {
		c0, s0, err := d.cycles()
		if err != nil {
			b.Fatal(err)
		}
		ticks0, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		time.Sleep(idle)
		ticks1, err := cpuTicks(pid)
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		c1, s1, err := d.cycles()
		if err != nil {
			b.Fatal(err)
		}
		pct := float64(ticks1-ticks0) / clkTck / elapsed.Seconds() * 100
		cpuPct = append(cpuPct, pct)
		cyclesPer = append(cyclesPer, float64(c1-c0))
		if c1 > c0 {
			meanCycleMs = append(meanCycleMs, (s1-s0)/float64(c1-c0)*1000)
		}
		if r, err := d.status(); err == nil {
			record(r)
		}
		now, peak := d.rss()
		b.Logf("idle window %d: %.1f s, CPU %.2f%% of a core, %d cycles (mean %.0f ms), RSS %.1f MB (max %.1f)",
			w+1, elapsed.Seconds(), pct, c1-c0, (s1-s0)/float64(max(c1-c0, 1))*1000, float64(now)/1024, float64(peak)/1024)
	}
	loadsIdle := d.loads(b)
	if loadsIdle != loadsAtStart {
		b.Errorf("the daemon loaded a commit %d times during idle cycles (no commit moved)", loadsIdle-loadsAtStart)
	}
	rssNow, rssPeak := d.rss()
	hwm := procStatus(pid, "VmHWM")
	b.Logf("the daemon's live heap after the idle windows, by allocation site (/debug/pprof/heap):\n%s", d.heapTop(b, bin, dir))

	// One changed cluster: a reload-only parameter. Observe the fleet as
	// it runs (still at the first commit) for the in-process planning.
	running := x.observeFleet(ctx)
	changed := x.nClusters / 2
	spec := x.specs[changed]
	if err := os.WriteFile(filepath.Join(x.repo, x.files[changed]), []byte(clusterYAML(spec.Metadata.Namespace, spec.Metadata.Name, "16MB")), 0o644); err != nil {
		b.Fatal(err)
	}
	x.git("commit", "-q", "-am", "work_mem 16MB on one cluster")
	head := x.git("rev-parse", "HEAD")
	var newFiles []cluster.File
	for _, rel := range x.files {
		data, err := os.ReadFile(filepath.Join(x.repo, rel))
		if err != nil {
			b.Fatal(err)
		}
		newFiles = append(newFiles, cluster.File{Path: rel, Data: data})
	}
	newSet, err := cluster.Load(newFiles)
	if err != nil {
		b.Fatal(err)
	}
	newByKey := map[cluster.Key]*cluster.Cluster{}
	for _, c := range newSet.Clusters {
		newByKey[c.Key()] = c
	}
	changedSpec := newByKey[spec.Key()]
	unchangedSpec := newByKey[x.specs[changed+1].Key()]
	if n, which := steps(b, newSet.Clusters, running); n == 0 || len(which) != 1 {
		b.Fatalf("the changed commit plans %d steps over %q; want steps for %s only", n, which, spec.Key())
	} else {
		b.Logf("the changed commit plans: %s", which[0])
	}

	// The daemon's reaction: a simulated manager loads the new config
	// as soon as the cluster's ConfigMap carries it (a reload).
	reloadCtx, stopReload := context.WithCancel(ctx)
	go x.simulateReload(reloadCtx, changed)
	t0 = time.Now()
	var changeCycle report
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := d.status()
		if err == nil && r.Last.Commit == head {
			if changeCycle.Last.Started.IsZero() {
				changeCycle = r
			}
			o := r.outcomes()
			if o["converged"] == x.nClusters {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the daemon did not converge to %s; /status %+v; log tail:\n%s", head, r.Last.Err, tail(d.log))
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopReload()
	converged := time.Since(t0)
	var changedSteps []string
	for _, c := range changeCycle.Last.Clusters {
		if c.Outcome != "converged" {
			changedSteps = append(changedSteps, c.Cluster+" "+c.Outcome+" "+c.Step)
		}
	}
	loadsChanged := d.loads(b)
	b.Logf("changed commit: converged %s after the commit (interval %s); the cycle that loaded it took %.0f ms: %q; loads %d → %d",
		converged.Round(100*time.Millisecond), interval, float64(changeCycle.Last.Duration.Microseconds())/1000, changedSteps, loadsIdle, loadsChanged)
	if loadsChanged != loadsIdle+1 {
		b.Errorf("the changed commit was loaded %d times, want once", loadsChanged-loadsIdle)
	}
	rssAfterChange, rssPeakAfterChange := d.rss()

	// Stop the daemon before timing in-process, so it does not compete.
	stopSampling()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)

	// In-process: the daemon plans one cluster at a time (apply.Run.Once
	// → plan.Make with one desired and one observed cluster).
	obs := observedOf(running)
	one := func(spec *cluster.Cluster) func() error {
		in := plan.Observed{Clusters: []plan.ObservedCluster{obs[spec.Key()]}}
		return func() error {
			_, err := plan.Make([]*cluster.Cluster{spec}, in, plan.Options{})
			return err
		}
	}
	var all plan.Observed
	for _, c := range running.Clusters {
		all.Clusters = append(all.Clusters, c.Observed)
	}
	whole := func(specs []*cluster.Cluster) func() error {
		return func() error {
			_, err := plan.Make(specs, all, plan.Options{})
			return err
		}
	}
	decode := func() error {
		_, err := cluster.Load(newFiles)
		return err
	}
	cases := []struct {
		name string
		f    func() error
	}{
		{"plan-one-unchanged (baseline)", one(unchangedSpec)},
		{"plan-one-changed", one(changedSpec)},
		{"plan-all-at-old-commit (baseline)", whole(x.specs)},
		{"plan-all-one-changed", whole(newSet.Clusters)},
		{"decode-all-files (skipped by idle cycles)", decode},
	}
	const runs = 5
	medians := map[string]float64{}
	for _, c := range cases {
		var ms []float64
		for r := 0; r < runs; r++ {
			per, err := perOp(c.f)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			ms = append(ms, float64(per.Nanoseconds())/1e6)
		}
		medians[c.name] = benchstat.Median(ms)
		b.Logf("%s: median %.3f ms/op of %d runs (%s)", c.name, benchstat.Median(ms), runs, fmts(ms, "%.3f"))
	}

	// Where an idle cycle goes: its observation and drift check alone,
	// in-process, with the daemon's client settings (cmd/pgsync/kube.go).
	cli := rest.CopyConfig(x.cfg)
	cli.QPS, cli.Burst = 100, 200
	var obsMs, driftMs []float64
	for r := 0; r < 3; r++ {
		cs, err := kubernetes.NewForConfig(cli)
		if err != nil {
			b.Fatal(err)
		}
		dyn, err := dynamic.NewForConfig(cli)
		if err != nil {
			b.Fatal(err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		t0 := time.Now()
		f, err := observe.Observe(ctx, cs, observe.Options{Status: observe.DirectStatus{Client: &http.Client{Transport: tr, Timeout: 2 * time.Second}}})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := f.FindDrift(ctx, dyn, nil); err != nil {
			b.Fatal(err)
		}
		obsMs = append(obsMs, float64(t1.Sub(t0).Milliseconds()))
		driftMs = append(driftMs, float64(time.Since(t1).Milliseconds()))
		tr.CloseIdleConnections()
	}
	b.Logf("in-process at 100 QPS: observe %s ms (median %.0f), find-drift %s ms (median %.0f)",
		fmts(obsMs, "%.0f"), benchstat.Median(obsMs), fmts(driftMs, "%.0f"), benchstat.Median(driftMs))
	live, heap, lastLive := gcHeap(b, d.log)
	b.Logf("daemon heap (gctrace): live after GC max %d MB, last %d MB; heap at GC end max %d MB", live, lastLive, heap)

	b.Logf("RSS: max %.1f MB, last %.1f MB, VmHWM %.1f MB after the idle windows; after the changed commit %.1f MB (max %.1f)",
		float64(rssPeak)/1024, float64(rssNow)/1024, float64(hwm)/1024, float64(rssAfterChange)/1024, float64(rssPeakAfterChange)/1024)
	b.Logf("idle CPU per window (%% of one core, --interval %s): %s; median %.2f", interval, fmts(cpuPct, "%.2f"), benchstat.Median(cpuPct))
	b.Logf("idle cycle duration (ms, /status): %s; median %.0f; per-window mean (metrics) %s; cycles per window %s",
		fmts(cycleMs, "%.0f"), benchstat.Median(cycleMs), fmts(meanCycleMs, "%.0f"), fmts(cyclesPer, "%.0f"))
	b.Logf("commit loads logged: %d after the warm-up, %d after %d idle windows, %d after the changed commit", loadsAtStart, loadsIdle, windows, loadsChanged)

	b.ReportMetric(float64(rssPeak)/1024, "rss-max-MB")
	b.ReportMetric(float64(warmPeak)/1024, "rss-warmup-max-MB")
	b.ReportMetric(float64(rssNow)/1024, "rss-last-MB")
	b.ReportMetric(float64(warmHWM)/1024, "vmhwm-warmup-MB")
	b.ReportMetric(float64(hwm)/1024, "vmhwm-MB")
	b.ReportMetric(benchstat.Median(cpuPct), "idle-cpu-%")
	b.ReportMetric(benchstat.Median(cycleMs), "idle-cycle-ms")
	b.ReportMetric(float64(loadsIdle-loadsAtStart), "idle-loads")
	b.ReportMetric(medians["plan-one-changed"], "replan-one-ms")
	b.ReportMetric(medians["plan-one-unchanged (baseline)"], "plan-one-unchanged-ms")
	b.ReportMetric(medians["plan-all-one-changed"], "plan-all-ms")
	b.ReportMetric(medians["decode-all-files (skipped by idle cycles)"], "decode-all-ms")
	b.ReportMetric(benchstat.Median(obsMs), "observe-ms")
	b.ReportMetric(benchstat.Median(driftMs), "find-drift-ms")
	b.ReportMetric(float64(live), "live-heap-max-MB")
	b.ReportMetric(float64(lastLive), "live-heap-last-MB")
	b.ReportMetric(0, "ns/op") // the iteration is the whole scenario; its wall time is not a result
}

// simulateReload plays cluster i's managers reloading: once the params
// ConfigMap carries a new config revision, every instance reports it.
func (x *fleetBench) simulateReload(ctx context.Context, i int) {
	c := x.specs[i]
	cms := x.cs.CoreV1().ConfigMaps(c.Metadata.Namespace)
	var current string
	for ctx.Err() == nil {
		cm, err := cms.Get(ctx, kube.NamesOf(c).Params(), metav1.GetOptions{})
		if err == nil {
			if rev := cm.Data[pc.ConfigRevisionKey]; rev != current {
				current = rev
				for n := 0; n < instances; n++ {
					x.srv.Set(podIP(i, n), podsim.ConvergedStatus(c, n, rev))
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// perOp is f's time per call over at least 300 ms of calls, after one
// warm-up call. (testing.Benchmark would deadlock inside a running
// benchmark, and b.Run sub-benchmarks run once under -benchtime=1x.)
func perOp(f func() error) (time.Duration, error) {
	if err := f(); err != nil {
		return 0, err
	}
	for n := 1; ; n *= 2 {
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		if d := time.Since(start); d >= 300*time.Millisecond {
			return d / time.Duration(n), nil
		}
	}
}

var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB`)

// gcHeap is the largest live heap and heap at GC end in the daemon's
// gctrace lines.
func gcHeap(b *testing.B, log string) (live, heap, lastLive int) {
	b.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range gcLine.FindAllStringSubmatch(string(data), -1) {
		h, _ := strconv.Atoi(m[2])
		l, _ := strconv.Atoi(m[3])
		live, heap, lastLive = max(live, l), max(heap, h), l
	}
	return live, heap, lastLive
}
