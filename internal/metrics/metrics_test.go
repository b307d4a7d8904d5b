package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgsync/pgsync/internal/metrics"
)

const (
	shaA = "0123456789abcdef0123456789abcdef01234567"
	shaB = "89abcdef0123456789abcdef0123456789abcdef"
)

// serve exposes m's handler on a loopback HTTP server, as Prometheus
// scrapes it.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// TestScrape drives every method once or more and compares the scraped
// exposition, names, help, types, labels and values, with what a dashboard
// is written against.
func TestScrape(t *testing.T) {
	m := metrics.New()
	url := serve(t, m)

	m.ObserveCycle(30 * time.Millisecond)
	m.ObserveCycle(2 * time.Second)
	m.ObserveCycle(400 * time.Second) // past the last bucket: +Inf only
	m.GitFetchError()
	m.GitFetchError()
	m.Applied(shaA, time.Unix(1_700_000_000, 0))
	m.Applied(shaB, time.Unix(1_700_000_600, 500_000_000)) // replaces shaA's series
	m.SetClusterState("db", "orders", metrics.Rolling)
	m.SetClusterState("db", "users", metrics.Halted)
	m.SetClusterState("db", "users", metrics.Converged) // a new spec lifted the halt
	m.SetClusterState("web", "cms", metrics.Suspended)
	m.SetClusterState("web", "gone", metrics.Waiting)
	m.ForgetCluster("web", "gone")
	m.StepStarted("restart-instance")
	m.StepStarted("restart-instance")
	m.StepStarted("switchover")
	m.StepFinished("restart-instance")
	m.StepHalted("restart-instance")
	m.SetRolloutsInFlight(3)
	m.SetRolloutsInFlight(1)
	m.WebhookRequest("github", "triggered")
	m.WebhookRequest("github", "unauthorized")
	m.WebhookRequest("github", "unauthorized")
	m.WebhookRequest("gitlab", "ignored")

	want := `
# HELP pgsync_cycle_duration_seconds Duration of one reconcile cycle (fetch, verify, load, observe, plan, steps).
# TYPE pgsync_cycle_duration_seconds histogram
pgsync_cycle_duration_seconds_bucket{le="0.01"} 0
pgsync_cycle_duration_seconds_bucket{le="0.025"} 0
pgsync_cycle_duration_seconds_bucket{le="0.05"} 1
pgsync_cycle_duration_seconds_bucket{le="0.1"} 1
pgsync_cycle_duration_seconds_bucket{le="0.25"} 1
pgsync_cycle_duration_seconds_bucket{le="0.5"} 1
pgsync_cycle_duration_seconds_bucket{le="1"} 1
pgsync_cycle_duration_seconds_bucket{le="2.5"} 2
pgsync_cycle_duration_seconds_bucket{le="5"} 2
pgsync_cycle_duration_seconds_bucket{le="10"} 2
pgsync_cycle_duration_seconds_bucket{le="30"} 2
pgsync_cycle_duration_seconds_bucket{le="60"} 2
pgsync_cycle_duration_seconds_bucket{le="120"} 2
pgsync_cycle_duration_seconds_bucket{le="300"} 2
pgsync_cycle_duration_seconds_bucket{le="+Inf"} 3
pgsync_cycle_duration_seconds_sum 402.03
pgsync_cycle_duration_seconds_count 3
# HELP pgsync_git_fetch_errors_total Fetches of the desired-state repository that failed.
# TYPE pgsync_git_fetch_errors_total counter
pgsync_git_fetch_errors_total 2
# HELP pgsync_last_applied_commit_info The commit last applied; 1 on the series whose commit label is its full SHA.
# TYPE pgsync_last_applied_commit_info gauge
pgsync_last_applied_commit_info{commit="` + shaB + `"} 1
# HELP pgsync_last_applied_commit_timestamp_seconds When the commit last applied was applied, in seconds since the Unix epoch.
# TYPE pgsync_last_applied_commit_timestamp_seconds gauge
pgsync_last_applied_commit_timestamp_seconds 1.7000006005e+09
# HELP pgsync_cluster_state 1 on the series of the state a cluster is in (converged, rolling, halted, waiting, suspended), 0 on the others.
# TYPE pgsync_cluster_state gauge
pgsync_cluster_state{name="orders",namespace="db",state="converged"} 0
pgsync_cluster_state{name="orders",namespace="db",state="rolling"} 1
pgsync_cluster_state{name="orders",namespace="db",state="halted"} 0
pgsync_cluster_state{name="orders",namespace="db",state="waiting"} 0
pgsync_cluster_state{name="orders",namespace="db",state="suspended"} 0
pgsync_cluster_state{name="users",namespace="db",state="converged"} 1
pgsync_cluster_state{name="users",namespace="db",state="rolling"} 0
pgsync_cluster_state{name="users",namespace="db",state="halted"} 0
pgsync_cluster_state{name="users",namespace="db",state="waiting"} 0
pgsync_cluster_state{name="users",namespace="db",state="suspended"} 0
pgsync_cluster_state{name="cms",namespace="web",state="converged"} 0
pgsync_cluster_state{name="cms",namespace="web",state="rolling"} 0
pgsync_cluster_state{name="cms",namespace="web",state="halted"} 0
pgsync_cluster_state{name="cms",namespace="web",state="waiting"} 0
pgsync_cluster_state{name="cms",namespace="web",state="suspended"} 1
# HELP pgsync_steps_started_total Steps started, by step action.
# TYPE pgsync_steps_started_total counter
pgsync_steps_started_total{action="restart-instance"} 2
pgsync_steps_started_total{action="switchover"} 1
# HELP pgsync_steps_finished_total Steps finished successfully, by step action.
# TYPE pgsync_steps_finished_total counter
pgsync_steps_finished_total{action="restart-instance"} 1
# HELP pgsync_steps_halted_total Steps that halted their cluster's rollout, by step action.
# TYPE pgsync_steps_halted_total counter
pgsync_steps_halted_total{action="restart-instance"} 1
# HELP pgsync_rollouts_in_flight Clusters between the first and last step of a restart or switchover rollout.
# TYPE pgsync_rollouts_in_flight gauge
pgsync_rollouts_in_flight 1
# HELP pgsync_webhook_requests_total Webhook requests, by platform and result (triggered, ignored, unauthorized, too_large, bad_request).
# TYPE pgsync_webhook_requests_total counter
pgsync_webhook_requests_total{platform="github",result="triggered"} 1
pgsync_webhook_requests_total{platform="github",result="unauthorized"} 2
pgsync_webhook_requests_total{platform="gitlab",result="ignored"} 1
`
	names := []string{
		metrics.NameCycleDuration, metrics.NameGitFetchErrors, metrics.NameLastAppliedInfo,
		metrics.NameLastAppliedTime, metrics.NameClusterState, metrics.NameStepsStarted,
		metrics.NameStepsFinished, metrics.NameStepsHalted, metrics.NameRolloutsInFlight,
		metrics.NameWebhookRequests,
	}
	if err := testutil.ScrapeAndCompare(url, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

// TestScrapeRuntimeAndFormats: the daemon's own memory and CPU are served
// beside its metrics (the scale limits in docs/benchmarks.md are read from
// them), and a scraper asking for OpenMetrics gets it.
func TestScrapeRuntimeAndFormats(t *testing.T) {
	m := metrics.New()
	m.GitFetchError()
	url := serve(t, m)

	body := get(t, url, "")
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total", "pgsync_git_fetch_errors_total 1"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("the scrape has no %q:\n%s", name, body)
		}
	}
	om := get(t, url, "application/openmetrics-text; version=1.0.0")
	if !strings.Contains(om, "pgsync_git_fetch_errors_total 1") || !strings.HasSuffix(om, "# EOF\n") {
		t.Errorf("OpenMetrics scrape:\n%s", om)
	}
}

func get(t *testing.T, url, accept string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// TestOwnRegistry: two daemons' metrics never mix, and nothing is put in
// the process-wide default registry.
func TestOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.StepStarted("switchover")
	a.StepStarted("switchover")
	b.StepStarted("switchover")

	for _, tc := range []struct {
		m    *metrics.Metrics
		want string
	}{{a, "2"}, {b, "1"}} {
		want := "\n# HELP pgsync_steps_started_total Steps started, by step action.\n# TYPE pgsync_steps_started_total counter\npgsync_steps_started_total{action=\"switchover\"} " + tc.want + "\n"
		if err := testutil.GatherAndCompare(tc.m.Registry(), strings.NewReader(want), metrics.NameStepsStarted); err != nil {
			t.Error(err)
		}
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "pgsync_") {
			t.Errorf("the default registry holds %s", f.GetName())
		}
	}
}

func TestStateNames(t *testing.T) {
	want := []string{"converged", "rolling", "halted", "waiting", "suspended"}
	if len(metrics.States) != len(want) {
		t.Fatalf("States = %v, want %v", metrics.States, want)
	}
	for i, s := range metrics.States {
		if s.String() != want[i] || int(s) != i {
			t.Errorf("States[%d] = %d %q, want %d %q", i, int(s), s, i, want[i])
		}
	}
	if got := metrics.State(len(want)).String(); got != "unknown" {
		t.Errorf("out-of-range state = %q", got)
	}
}
