// Package metrics owns the Prometheus metrics of `pgsync run`: their names,
// labels and help texts (stable: dashboards and alerts are written against
// them), the registry they live in, and the /metrics handler that serves
// it. Each Metrics has its own registry, never the process-wide default
// one, so two daemons in one test process (or a test and the code it
// tests) never see each other's counts.
//
// The daemon reports what happened through small methods (ObserveCycle,
// StepStarted, SetClusterState, ...) that take plain strings and numbers;
// this package knows nothing of plans, clusters or Git, so it can be
// imported from anywhere without a cycle. It must not import `pgsync/...`.
//
// Label values are bounded by their callers: actions are the planner's step
// actions (create-instance, restart-instance, switchover, reload-config,
// ...), cluster states the five State values, webhook platforms and
// results those of internal/webhook. The commit label of
// pgsync_last_applied_commit_info holds one value at a time.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metric names, exported so tests and documentation name the same
// strings the registry serves.
const (
	NameCycleDuration    = "pgsync_cycle_duration_seconds"
	NameGitFetchErrors   = "pgsync_git_fetch_errors_total"
	NameLastAppliedInfo  = "pgsync_last_applied_commit_info"
	NameLastAppliedTime  = "pgsync_last_applied_commit_timestamp_seconds"
	NameClusterState     = "pgsync_cluster_state"
	NameStepsStarted     = "pgsync_steps_started_total"
	NameStepsFinished    = "pgsync_steps_finished_total"
	NameStepsHalted      = "pgsync_steps_halted_total"
	NameRolloutsInFlight = "pgsync_rollouts_in_flight"
	NameWebhookRequests  = "pgsync_webhook_requests_total"
)

const (
	labelCommit    = "commit"
	labelNamespace = "namespace"
	labelName      = "name"
	labelState     = "state"
	labelAction    = "action"
	labelPlatform  = "platform"
	labelResult    = "result"

	// maxScrapesInFlight bounds concurrent /metrics requests; Prometheus
	// scrapes one at a time, so more are someone hammering the port.
	maxScrapesInFlight = 4
)

// State is what a cluster is doing, as pgsync_cluster_state shows it.
type State int

const (
	// Converged: what runs matches Git; no step is due.
	Converged State = iota
	// Rolling: between the first and last step of a rollout.
	Rolling
	// Halted: a rollout stopped on a failed check and waits for a new spec.
	Halted
	// Waiting: a step is due but held back (a closed maintenance window,
	// the fleet's --max-rolling, a halt elsewhere in the wave).
	Waiting
	// Suspended: pgsync.io/suspend is set; no step runs.
	Suspended
)

// States lists every State in the order of its value.
var States = []State{Converged, Rolling, Halted, Waiting, Suspended}

// String is the state's label value.
func (s State) String() string {
	switch s {
	case Converged:
		return "converged"
	case Rolling:
		return "rolling"
	case Halted:
		return "halted"
	case Waiting:
		return "waiting"
	case Suspended:
		return "suspended"
	}
	return "unknown"
}

// CycleBuckets are the pgsync_cycle_duration_seconds buckets: a cycle with
// no new commit takes milliseconds, one that observes a large fleet and
// waits on a step can take minutes.
var CycleBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Metrics holds the daemon's metrics and their registry. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	cycle            prometheus.Histogram
	gitFetchErrors   prometheus.Counter
	lastAppliedInfo  *prometheus.GaugeVec
	lastAppliedTime  prometheus.Gauge
	clusterState     *prometheus.GaugeVec
	stepsStarted     *prometheus.CounterVec
	stepsFinished    *prometheus.CounterVec
	stepsHalted      *prometheus.CounterVec
	rolloutsInFlight prometheus.Gauge
	webhookRequests  *prometheus.CounterVec
}

// New returns the daemon's metrics in a registry of their own, with the Go
// runtime and process collectors (go_*, process_*: memory and CPU of the
// daemon itself) registered beside them.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		cycle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    NameCycleDuration,
			Help:    "Duration of one reconcile cycle (fetch, verify, load, observe, plan, steps).",
			Buckets: CycleBuckets,
		}),
		gitFetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameGitFetchErrors,
			Help: "Fetches of the desired-state repository that failed.",
		}),
		lastAppliedInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameLastAppliedInfo,
			Help: "The commit last applied; 1 on the series whose commit label is its full SHA.",
		}, []string{labelCommit}),
		lastAppliedTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameLastAppliedTime,
			Help: "When the commit last applied was applied, in seconds since the Unix epoch.",
		}),
		clusterState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameClusterState,
			Help: "1 on the series of the state a cluster is in (converged, rolling, halted, waiting, suspended), 0 on the others.",
		}, []string{labelNamespace, labelName, labelState}),
		stepsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameStepsStarted,
			Help: "Steps started, by step action.",
		}, []string{labelAction}),
		stepsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameStepsFinished,
			Help: "Steps finished successfully, by step action.",
		}, []string{labelAction}),
		stepsHalted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameStepsHalted,
			Help: "Steps that halted their cluster's rollout, by step action.",
		}, []string{labelAction}),
		rolloutsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameRolloutsInFlight,
			Help: "Clusters between the first and last step of a restart or switchover rollout.",
		}),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameWebhookRequests,
			Help: "Webhook requests, by platform and result (triggered, ignored, unauthorized, too_large, bad_request).",
		}, []string{labelPlatform, labelResult}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.cycle, m.gitFetchErrors, m.lastAppliedInfo, m.lastAppliedTime,
		m.clusterState, m.stepsStarted, m.stepsFinished, m.stepsHalted,
		m.rolloutsInFlight, m.webhookRequests,
	)
	return m
}

// Registry is the registry the metrics live in, for a caller that adds
// collectors of its own (client-go's, for example).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or OpenMetrics, when
// asked for) exposition format. A collector that fails is reported in the
// response and the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
		EnableOpenMetrics:   true,
	})
}

// ObserveCycle records how long one cycle took.
func (m *Metrics) ObserveCycle(d time.Duration) { m.cycle.Observe(d.Seconds()) }

// GitFetchError counts one failed fetch.
func (m *Metrics) GitFetchError() { m.gitFetchErrors.Inc() }

// Applied records that commit (its full SHA) was applied at at: the info
// gauge moves to the new commit (the old series disappears) and the
// timestamp follows.
func (m *Metrics) Applied(commit string, at time.Time) {
	m.lastAppliedInfo.Reset()
	m.lastAppliedInfo.WithLabelValues(commit).Set(1)
	m.lastAppliedTime.Set(float64(at.UnixNano()) / 1e9)
}

// SetClusterState sets the cluster's series: 1 for s, 0 for every other
// state, so a query for state="halted" == 1 lists exactly the halted
// clusters. A State outside States sets them all to 0.
func (m *Metrics) SetClusterState(namespace, name string, s State) {
	for _, st := range States {
		v := 0.0
		if st == s {
			v = 1
		}
		m.clusterState.WithLabelValues(namespace, name, st.String()).Set(v)
	}
}

// ForgetCluster removes a cluster's series (it left Git and was deleted
// or orphaned), so a dashboard does not show it forever.
func (m *Metrics) ForgetCluster(namespace, name string) {
	m.clusterState.DeletePartialMatch(prometheus.Labels{labelNamespace: namespace, labelName: name})
}

// StepStarted counts a step of the given action (plan.StepAction) started.
func (m *Metrics) StepStarted(action string) { m.stepsStarted.WithLabelValues(action).Inc() }

// StepFinished counts a step of the given action finished successfully.
func (m *Metrics) StepFinished(action string) { m.stepsFinished.WithLabelValues(action).Inc() }

// StepHalted counts a step of the given action that halted its rollout.
func (m *Metrics) StepHalted(action string) { m.stepsHalted.WithLabelValues(action).Inc() }

// SetRolloutsInFlight sets how many clusters are mid-rollout.
func (m *Metrics) SetRolloutsInFlight(n int) { m.rolloutsInFlight.Set(float64(n)) }

// WebhookRequest counts one webhook request; it is the method
// internal/webhook's Recorder asks for, so a *Metrics is one.
func (m *Metrics) WebhookRequest(platform, result string) {
	m.webhookRequests.WithLabelValues(platform, result).Inc()
}
