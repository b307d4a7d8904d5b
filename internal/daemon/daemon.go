// Package daemon is `pgsync run`: the GitOps loop. Each cycle fetches Git,
// loads and validates the Clusters at --ref (only when the commit moved),
// observes every managed cluster and gives each cluster at most one step
// of its plan (apply.Run.Once), then the next cycle observes again. So a
// crash anywhere resumes from what runs; clusters are independent (one
// halted or failing cluster never blocks another); a commit that fails
// validation is applied nowhere and the daemon keeps the last good one.
//
// Cycles run every Interval (with jitter), at once after Trigger (a push
// webhook), and — for clusters in the middle of a step sequence — again
// right after a step completes, so a rollout does not wait a whole
// interval between its steps.
//
// It must not import `internal/instance/...`; Git is reached only through
// internal/desired.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/fleet"
	"github.com/pgsync/pgsync/internal/imagegate"
	"github.com/pgsync/pgsync/internal/metrics"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	"github.com/pgsync/pgsync/internal/window"
)

// Config steers the daemon.
type Config struct {
	Source desired.Source
	// Interval between cycles (default 1m); Jitter adds up to this much
	// at random (default Interval/10).
	Interval, Jitter time.Duration
	// Namespace limits the daemon to one namespace ("" = all).
	Namespace string
	// Prune deletes clusters removed from Git instead of orphaning them.
	Prune bool
	// Parallel bounds the clusters stepping at once (default 4).
	Parallel int
	// Gate, when set, may hold a step back; the fleet order (waves,
	// windows, suspend, MaxRolling) always applies.
	Gate Gate
	// MaxRolling, OnHalt: the fleet order (internal/fleet).
	MaxRolling int
	OnHalt     fleet.OnHalt
	// Window is the default maintenance window of clusters whose file
	// names none (zero: any time).
	Window window.Schedule
	// AllowRewind accepts a head that does not descend from the last
	// applied commit (a force-push, a rollback); refused otherwise.
	AllowRewind bool
	// Metrics, when set, records cycles, Git errors, commits and each
	// cluster's state (internal/metrics implements it).
	Metrics Metrics
	// Owner names the daemon in the clusters' apply Leases.
	Owner string
	// StatusRefresh: with a Watch, a converged cluster none of whose
	// objects changed is observed again (its instances' /status read)
	// once this long has passed (default 5m).
	StatusRefresh time.Duration
	// Images, when set, is the image policy (--image-policy): every cycle
	// checks each desired cluster's image and InstanceImage through the
	// registry (nothing it said is kept to the next cycle), rolls the
	// digests it verified, and steps no cluster whose image it refuses
	// (nothing at all when it refuses the instance image).
	Images        *imagegate.Gate
	InstanceImage string
}

// Metrics is what the daemon records.
type Metrics interface {
	ObserveCycle(d time.Duration)
	GitFetchError()
	Applied(commit string, at time.Time)
	SetClusterState(namespace, name string, s metrics.State)
	SetRolloutsInFlight(n int)
}

// Gate decides whether cluster c may take step s now; a *apply.WaitError
// holds it back with the reason.
type Gate func(c *observe.Cluster, desired *cluster.Cluster, s plan.Step) error

// Daemon runs cycles.
type Daemon struct {
	cfg     Config
	run     *apply.Run
	observe observe.Options
	log     *slog.Logger
	now     func() time.Time
	rand    *rand.Rand

	trigger chan struct{}

	mu       sync.Mutex
	last     Report
	lastGood *desired.State
	// applied is the last commit every cluster converged to (cycle
	// goroutine only).
	applied string
	// drift keeps the dry runs of the last cycle's drift check: an idle
	// cycle re-runs none of them (observe.DriftCache).
	drift observe.DriftCache
	// watch, when set, is where clusters are observed from, and memos
	// what each cluster was last cycle (cycle goroutine only).
	watch *observe.Watch
	memos map[cluster.Key]*memo
}

// memo is what a cycle found of one running cluster. A converged cluster
// whose objects have not changed since (the same fingerprint), whose
// instances were read less than StatusRefresh ago and whose commit has
// not moved is converged still: the cycle neither reads nor plans it.
// Its drift, a function of its objects alone, holds while the
// fingerprint does.
type memo struct {
	fingerprint string
	statusAt    time.Time
	commit      string
	live        *observe.Cluster
	input       fleet.Cluster
	report      ClusterReport
	// image is the image (pinned, under an image policy) and instance
	// image the cluster was planned with: a moved tag plans it again.
	image, instanceImage string
}

// Watch makes the cycles observe from w (informer caches) instead of
// listing every cycle; call before Run.
func (d *Daemon) Watch(w *observe.Watch) {
	d.watch = w
	d.memos = map[cluster.Key]*memo{}
}

// New makes a daemon; run carries out steps, obs observes.
func New(cfg Config, run *apply.Run, obs observe.Options, log *slog.Logger, now func() time.Time, random *rand.Rand) *Daemon {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	} else if cfg.Jitter == 0 {
		cfg.Jitter = cfg.Interval / 10
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.StatusRefresh <= 0 {
		cfg.StatusRefresh = 5 * time.Minute
	}
	obs.Namespace = cfg.Namespace
	return &Daemon{cfg: cfg, run: run, observe: obs, log: log, now: now, rand: random, trigger: make(chan struct{}, 1)}
}

// Trigger asks for a cycle now (a push webhook). Many triggers while a
// cycle runs make one more cycle.
func (d *Daemon) Trigger() {
	select {
	case d.trigger <- struct{}{}:
	default:
	}
}

// Report is what the last cycle did.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	// Commit is the commit the clusters were planned from (the last good
	// one); Rejected says why a newer commit was not used.
	Commit   string          `json:"commit"`
	Rejected string          `json:"rejected,omitempty"`
	Clusters []ClusterReport `json:"clusters"`
	// Observed is how many clusters were read anew (with a Watch, the
	// others are converged and unchanged since an earlier cycle).
	Observed int    `json:"observed"`
	Err      string `json:"error,omitempty"`
}

// ClusterReport is one cluster's outcome in a cycle.
type ClusterReport struct {
	Cluster string        `json:"cluster"`
	Outcome apply.Outcome `json:"outcome"`
	Step    string        `json:"step,omitempty"`
	Reason  string        `json:"reason,omitempty"`
}

// Last returns the last cycle's report.
func (d *Daemon) Last() Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Run cycles until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	for {
		rep := d.Cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := d.cfg.Interval
		if d.cfg.Jitter > 0 {
			wait += time.Duration(d.rand.Int64N(int64(d.cfg.Jitter)))
		}
		if progressing(rep) {
			wait = 0 // the next step of a rollout is planned at once
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.trigger:
		case <-time.After(wait):
		}
	}
}

func progressing(r Report) bool {
	for _, c := range r.Clusters {
		if c.Outcome == apply.Progressing {
			return true
		}
	}
	return false
}

// Cycle is one cycle: Git, observation, at most one step per cluster.
func (d *Daemon) Cycle(ctx context.Context) Report {
	rep := Report{Started: d.now()}
	defer func() {
		rep.Duration = d.now().Sub(rep.Started)
		d.mu.Lock()
		d.last = rep
		d.mu.Unlock()
		if m := d.cfg.Metrics; m != nil {
			m.ObserveCycle(rep.Duration)
		}
	}()
	running, unchanged, fingerprints, err := d.observeFleet(ctx)
	if err != nil {
		rep.Err = err.Error()
		d.log.Error("cycle: observe", "error", err.Error())
		return rep
	}
	state, rejected, err := d.load(ctx, appliedCommit(running))
	if err != nil {
		rep.Err = err.Error()
		d.log.Error("cycle: no Git state to plan from", "error", err.Error())
		return rep
	}
	rep.Commit, rep.Rejected = state.Commit, rejected
	rep.Observed = len(running.Clusters) - len(unchanged)
	live := map[cluster.Key]*observe.Cluster{}
	for i := range running.Clusters {
		live[running.Clusters[i].Key()] = &running.Clusters[i]
	}
	want := map[cluster.Key]*cluster.Cluster{}
	keys := map[cluster.Key]bool{}
	for _, c := range state.Set.Clusters {
		if d.cfg.Namespace != "" && c.Metadata.Namespace != d.cfg.Namespace {
			continue
		}
		want[c.Key()] = c
		keys[c.Key()] = true
	}
	for k := range live {
		keys[k] = true
	}
	refused, err := d.enforceImages(ctx, want)
	if err != nil {
		rep.Err = err.Error()
		d.log.Error("cycle: image policy", "error", err.Error())
		return rep
	}
	sorted := make([]cluster.Key, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Less(sorted[j]) })

	// The fleet order: which clusters may take a restart or switchover
	// step this cycle.
	// A cluster converged and unchanged since it was planned from this
	// commit is converged still: neither planned nor stepped.
	still := map[cluster.Key]*memo{}
	for k := range unchanged {
		_, no := refused[k]
		if m := d.memos[k]; m.commit == state.Commit && want[k] != nil && !no && m.image == want[k].Spec.ImageName &&
			m.instanceImage == d.run.Exec.InstanceImage {
			still[k] = m
		}
	}
	var inputs []fleet.Cluster
	for _, k := range sorted {
		if m := still[k]; m != nil {
			inputs = append(inputs, m.input)
			continue
		}
		var observed plan.Observed
		if l := live[k]; l != nil {
			observed.Clusters = []plan.ObservedCluster{l.Observed}
		}
		var desiredList []*cluster.Cluster
		if w := want[k]; w != nil {
			desiredList = []*cluster.Cluster{w}
		}
		var cp *plan.ClusterPlan
		if _, no := refused[k]; no {
			// Nothing of a refused cluster is planned or stepped.
		} else if p, err := plan.Make(desiredList, observed, d.run.Options); err == nil && len(p.Clusters) == 1 {
			cp = &p.Clusters[0]
		}
		inputs = append(inputs, fleetCluster(k, want[k], live[k], cp, d.cfg.Window))
	}
	decided, err := fleet.Decide(inputs, d.now(), fleet.Options{MaxRolling: d.cfg.MaxRolling, OnHalt: d.cfg.OnHalt, Commit: state.Commit})
	if err != nil {
		rep.Err = err.Error()
		return rep
	}
	decisions := map[cluster.Key]fleet.Decision{}
	for _, dec := range decided.Decisions {
		decisions[dec.Key] = dec
	}
	fleetGate := gateFor(decisions)
	if m := d.cfg.Metrics; m != nil {
		m.SetRolloutsInFlight(decided.Rolling)
	}

	results := make([]ClusterReport, len(sorted))
	sem := make(chan struct{}, d.cfg.Parallel)
	var wg sync.WaitGroup
	for i, k := range sorted {
		wg.Add(1)
		sem <- struct{}{}
		if m := still[k]; m != nil {
			results[i] = m.report
			<-sem
			wg.Done()
			continue
		}
		if p, no := refused[k]; no {
			results[i] = ClusterReport{Cluster: k.String(), Outcome: apply.Failed, Reason: p.String()}
			d.log.Warn("cluster", "cluster", k.String(), "outcome", string(apply.Failed), "reason", p.String())
			<-sem
			wg.Done()
			continue
		}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = d.step(ctx, k, want[k], live[k], state.Commit, fleetGate)
		}()
	}
	wg.Wait()
	rep.Clusters = results
	d.remember(sorted, inputs, results, live, unchanged, fingerprints, state.Commit, want)
	if d.watch != nil && rep.Observed >= burst {
		// A cycle that read many clusters (the first, a refresh, a new
		// commit with many changes) allocated far more than the caches
		// the daemon keeps: give that back now rather than over the
		// runtime's minutes of scavenging.
		debug.FreeOSMemory()
	}
	converged := true
	for i, k := range sorted {
		if o := results[i].Outcome; o != apply.Converged && o != apply.Orphaned {
			converged = false
		}
		if m := d.cfg.Metrics; m != nil {
			m.SetClusterState(k.Namespace, k.Name, stateOf(results[i], decisions[k]))
		}
	}
	// A commit is applied once every cluster has converged to it.
	if converged && state.Commit != d.applied {
		d.applied = state.Commit
		d.log.Info("commit applied", "commit", desired.ShortSHA(state.Commit))
		if m := d.cfg.Metrics; m != nil {
			m.Applied(state.Commit, d.now())
		}
	}
	return rep
}

// enforceImages applies the image policy (Config.Images) to this cycle's
// desired clusters: want's entries become the pinned clusters, and the
// executor's instance image the pinned instance image. It returns the
// refused clusters; an error (the instance image refused, a key file
// unreadable) steps nothing this cycle.
func (d *Daemon) enforceImages(ctx context.Context, want map[cluster.Key]*cluster.Cluster) (map[cluster.Key]cluster.Diagnostic, error) {
	g := d.cfg.Images
	if g == nil {
		return nil, nil
	}
	list := make([]*cluster.Cluster, 0, len(want))
	for _, c := range want {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Key().Less(list[j].Key()) })
	res, err := g.Enforce(ctx, list, d.cfg.InstanceImage)
	if err != nil {
		return nil, err
	}
	if res.InstanceRefused != nil {
		return nil, res.InstanceRefused
	}
	for _, c := range res.Clusters {
		want[c.Key()] = c
	}
	// Set between cycles: no step of this executor runs now.
	d.run.Exec.InstanceImage = res.InstanceImage
	return res.Refused, nil
}

// burst is how many clusters read anew make a cycle worth returning its
// memory to the OS after.
const burst = 100

// observeFleet observes the running clusters and their drift: with a
// Watch, only those not known converged and unchanged (unchanged: the
// others, taken from their memos; fingerprints: this cycle's), else all
// of them with a List per kind.
func (d *Daemon) observeFleet(ctx context.Context) (*observe.Fleet, map[cluster.Key]bool, map[cluster.Key]string, error) {
	if d.watch == nil {
		running, err := observe.Observe(ctx, d.run.Exec.Client, d.observe)
		if err == nil {
			// Drift is planned like any change (update-objects), so a hand
			// edit or a half-applied step of a killed run is put back.
			err = running.FindDriftCached(ctx, d.run.Exec.Dynamic, nil, &d.drift)
		}
		return running, nil, nil, err
	}
	fingerprints := d.watch.Fingerprints()
	now := d.now()
	unchanged := map[cluster.Key]bool{}
	for k, fp := range fingerprints {
		if m := d.memos[k]; m != nil && m.fingerprint == fp && m.report.Outcome == apply.Converged && now.Sub(m.statusAt) < d.cfg.StatusRefresh {
			unchanged[k] = true
		}
	}
	running := d.watch.Observe(ctx, d.observe, func(k cluster.Key) bool { return !unchanged[k] })
	// Drift depends on the objects alone: while they are unchanged, so is
	// it — when every kind it compares is watched.
	check := map[cluster.Key]bool{}
	for i := range running.Clusters {
		c := &running.Clusters[i]
		if m := d.memos[c.Key()]; m != nil && d.watch.Complete() && m.fingerprint == fingerprints[c.Key()] {
			c.Observed.Drift = m.live.Observed.Drift
			continue
		}
		check[c.Key()] = true
	}
	if len(check) > 0 {
		if err := running.FindDriftCached(ctx, d.run.Exec.Dynamic, func(k cluster.Key) bool { return check[k] }, &d.drift); err != nil {
			return nil, nil, nil, err
		}
	}
	for k := range unchanged {
		running.Clusters = append(running.Clusters, *d.memos[k].live)
	}
	sort.Slice(running.Clusters, func(i, j int) bool { return running.Clusters[i].Key().Less(running.Clusters[j].Key()) })
	return running, unchanged, fingerprints, nil
}

// remember keeps this cycle's memos (with a Watch).
func (d *Daemon) remember(sorted []cluster.Key, inputs []fleet.Cluster, results []ClusterReport, live map[cluster.Key]*observe.Cluster,
	unchanged map[cluster.Key]bool, fingerprints map[cluster.Key]string, commit string, want map[cluster.Key]*cluster.Cluster) {
	if d.watch == nil {
		return
	}
	now := d.now()
	memos := map[cluster.Key]*memo{}
	for i, k := range sorted {
		l, fp := live[k], fingerprints[k]
		if l == nil || fp == "" {
			continue
		}
		m := &memo{fingerprint: fp, statusAt: now, commit: commit, live: l, input: inputs[i], report: results[i],
			instanceImage: d.run.Exec.InstanceImage}
		if w := want[k]; w != nil {
			m.image = w.Spec.ImageName
		}
		if unchanged[k] {
			m.statusAt = d.memos[k].statusAt
		}
		memos[k] = m
	}
	d.memos = memos
}

// stateOf is a cluster's pgsync_cluster_state after a cycle.
func stateOf(r ClusterReport, dec fleet.Decision) metrics.State {
	switch {
	case dec.State == fleet.StateSuspended:
		return metrics.Suspended
	case r.Outcome == apply.Halted:
		return metrics.Halted
	case r.Outcome == apply.Waiting || r.Outcome == apply.AwaitingApproval:
		return metrics.Waiting
	case r.Outcome == apply.Progressing:
		return metrics.Rolling
	}
	return metrics.Converged
}

// step gives one cluster at most one step. The cluster's apply lock is
// taken only when a step is about to run, so a converged fleet costs no
// API write per cycle.
func (d *Daemon) step(ctx context.Context, k cluster.Key, want *cluster.Cluster, live *observe.Cluster, commit string, fleetGate Gate) ClusterReport {
	out := ClusterReport{Cluster: k.String()}
	spec := want
	if spec == nil {
		spec = live.Observed.Spec
	}
	var lock *apply.Lock
	deleted := false
	defer func() {
		switch {
		case lock != nil && deleted:
			lock.Delete(context.WithoutCancel(ctx)) // the cluster went (--prune): its lock goes too
		case lock != nil:
			lock.Release(context.WithoutCancel(ctx))
		}
	}()
	gate := func(s plan.Step) (plan.Step, error) {
		if err := fleetGate(live, want, s); err != nil {
			return s, err
		}
		if d.cfg.Gate != nil {
			if err := d.cfg.Gate(live, want, s); err != nil {
				return s, err
			}
		}
		l, err := d.run.Exec.Acquire(ctx, spec, d.cfg.Owner)
		if err != nil {
			return s, &apply.WaitError{Reason: err.Error()}
		}
		lock = l
		return s, nil
	}
	res := d.run.Once(ctx, k, want, commit, live, 0, gate)
	deleted = res.Outcome == apply.Converged && res.Step != nil && res.Step.Action == plan.StepDeleteCluster
	out.Outcome = res.Outcome
	if res.Step != nil {
		out.Step = string(res.Step.Action)
		if res.Step.Instance != "" {
			out.Step += " " + res.Step.Instance
		}
	}
	if res.Err != nil {
		out.Reason = res.Err.Error()
	}
	lvl := slog.LevelInfo
	switch res.Outcome {
	case apply.Converged, apply.Waiting:
		lvl = slog.LevelDebug
	case apply.Halted, apply.Failed:
		lvl = slog.LevelWarn
	}
	d.log.Log(ctx, lvl, "cluster", "cluster", out.Cluster, "outcome", string(out.Outcome), "step", out.Step,
		"elapsed", res.Elapsed.String(), "reason", out.Reason)
	return out
}

// appliedCommit is the commit the running clusters were last applied
// from (the StatefulSets' pgsync.io/applied-commit), the one most of them
// carry: where a restarted daemon's trust check starts.
func appliedCommit(f *observe.Fleet) string {
	count := map[string]int{}
	best := ""
	for _, c := range f.Clusters {
		if c.Commit == "" {
			continue
		}
		count[c.Commit]++
		if count[c.Commit] > count[best] || (count[c.Commit] == count[best] && c.Commit < best) {
			best = c.Commit
		}
	}
	return best
}

// load fetches Git and reads the desired state when --ref moved. The new
// head must descend from the last commit planned from (or, after a
// restart, the one the clusters were applied from) and, with a key ring,
// every commit since must be signed (desired.HeadSince). An invalid or
// refused commit is applied nowhere: the last good state is kept.
func (d *Daemon) load(ctx context.Context, applied string) (desired.State, string, error) {
	repo, err := desired.Open(ctx, d.cfg.Source, d.log)
	if err != nil {
		if m := d.cfg.Metrics; m != nil {
			m.GitFetchError()
		}
		return d.fallback(fmt.Errorf("fetch: %w", err))
	}
	commit, err := repo.Commit()
	if err != nil {
		return d.fallback(fmt.Errorf("resolve %s: %w", d.cfg.Source.Ref, err))
	}
	d.mu.Lock()
	good := d.lastGood
	d.mu.Unlock()
	if good != nil && good.Commit == commit {
		return *good, "", nil // nothing new: nothing decoded
	}
	since := applied
	if good != nil {
		since = good.Commit
	}
	state, err := repo.HeadSince(since, d.cfg.AllowRewind)
	if err != nil {
		var problems cluster.Errors
		var rewind *desired.RewindError
		var unsigned *desired.UnsignedError
		var why string
		switch {
		case errors.As(err, &problems):
			why = fmt.Sprintf("commit %s is invalid, not applied: %s", desired.ShortSHA(commit), problems.Error())
		case errors.As(err, &rewind), errors.As(err, &unsigned):
			why = fmt.Sprintf("commit %s refused, not applied: %s", desired.ShortSHA(commit), err.Error())
		default:
			return d.fallback(err)
		}
		d.log.Error("commit not applied", "commit", desired.ShortSHA(commit), "reason", why)
		if good == nil {
			return desired.State{}, why, errors.New(why)
		}
		return *good, why, nil
	}
	if state.Rewind {
		d.log.Warn("rewind allowed", "from", desired.ShortSHA(since), "to", desired.ShortSHA(commit))
	}
	d.mu.Lock()
	d.lastGood = &state
	d.mu.Unlock()
	d.log.Info("new commit", "commit", desired.ShortSHA(commit), "clusters", len(state.Set.Clusters))
	return state, "", nil
}

// fallback keeps the last good state when Git cannot be read.
func (d *Daemon) fallback(err error) (desired.State, string, error) {
	d.mu.Lock()
	good := d.lastGood
	d.mu.Unlock()
	if good == nil {
		return desired.State{}, "", err
	}
	d.log.Warn("Git unreadable; planning from the last good commit", "commit", desired.ShortSHA(good.Commit), "error", err.Error())
	return *good, err.Error(), nil
}
