package instance_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// scrape reads addr's /metrics (text format) as series → value, a series
// written name{label="v",...} as served.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + pc.PathMetrics)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", addr, resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", addr, line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetrics scrapes until ok holds.
func waitMetrics(t *testing.T, addr, what string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var m map[string]float64
	for time.Now().Before(deadline) {
		if m = scrape(t, addr); ok(m) {
			return m
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lines []string
	for k, v := range m {
		lines = append(lines, fmt.Sprintf("%s %v", k, v))
	}
	t.Fatalf("%s: %s; scraped:\n%s", addr, what, strings.Join(lines, "\n"))
	return nil
}

// TestMetrics: with --metrics-addr (spec.monitoring) each manager serves
// /metrics with the PostgreSQL metrics, under CloudNativePG's names, and
// its own: real values from a primary and a streaming standby (HA slots
// on by default), and only the manager's with the default queries off.
func TestMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "mon", 2)
	ports := insttest.FreePorts(t, 2)
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	defaults := true
	c.ArgsFor = func(i int) []string {
		return []string{"--" + pc.FlagMetricsAddr + "=" + addr(i), "--" + pc.FlagMetricsDefaultQueries + "=" + strconv.FormatBool(defaults)}
	}
	// replication.json without slots: the defaults, HA slots on.
	replicationVolume(t, c, pc.Replication{Instances: []string{"mon-0", "mon-1"}}, "m1")
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))

	p := waitMetrics(t, addr(0), "a primary with a standby streaming through its slot", func(m map[string]float64) bool {
		return m[`cnpg_pg_replication_streaming_replicas`] == 1 && m[`cnpg_pg_replication_slots_active{database="",slot_name="_cnpg_mon_1",slot_type="physical"}`] == 1 &&
			m[`pgsync_instance_lease_renewals_total{result="ok"}`] > 0
	})
	for series, want := range map[string]float64{
		`cnpg_collector_up{cluster="mon"}`:       1,
		`cnpg_pg_replication_in_recovery`:        0,
		`cnpg_pg_replication_is_wal_receiver_up`: 0,
		`cnpg_pg_replication_lag`:                0,
		`pgsync_instance_role{role="primary"}`:   1,
		`pgsync_instance_role{role="standby"}`:   0,
		`pgsync_instance_lease_holder`:           1,
		`pgsync_instance_fenced`:                 0,
		`pgsync_instance_failovers_total`:        0,
		`pgsync_instance_postgres_starts_total`:  1,
		`pgsync_instance_postgres_crashes_total`: 0,
	} {
		if got, ok := p[series]; !ok || got != want {
			t.Errorf("primary: %s = %v (served: %v), want %v", series, got, ok, want)
		}
	}
	for _, series := range []string{`pgsync_instance_wal_current_lsn_bytes`, `cnpg_pg_database_xid_age{datname="postgres"}`,
		`cnpg_pg_database_size_bytes{datname="app"}`, `cnpg_pg_postmaster_start_time`} {
		if p[series] <= 0 {
			t.Errorf("primary: %s = %v, want > 0", series, p[series])
		}
	}
	if _, ok := p[`pgsync_instance_standby_replay_lag_bytes{application_name="mon-1"}`]; !ok {
		t.Error("primary: no replay lag for mon-1")
	}
	if _, ok := p[`cnpg_pg_replication_slots_pg_wal_lsn_diff{database="",slot_name="_cnpg_mon_1",slot_type="physical"}`]; !ok {
		t.Error("primary: no WAL retained by mon-1's slot")
	}
	backends := 0
	for k := range p {
		if strings.HasPrefix(k, "cnpg_backends_total{") && strings.Contains(k, `usename="postgres"`) {
			backends++
		}
	}
	if backends == 0 {
		t.Error("primary: no cnpg_backends_total for postgres (the managers' own sessions)")
	}

	s := waitMetrics(t, addr(1), "a streaming standby", func(m map[string]float64) bool {
		return m[`cnpg_pg_replication_is_wal_receiver_up`] == 1
	})
	for series, want := range map[string]float64{
		`cnpg_collector_up{cluster="mon"}`:     1,
		`cnpg_pg_replication_in_recovery`:      1,
		`pgsync_instance_role{role="standby"}`: 1,
		`pgsync_instance_lease_holder`:         0,
	} {
		if got := s[series]; got != want {
			t.Errorf("standby: %s = %v, want %v", series, got, want)
		}
	}
	if s[`pgsync_instance_wal_received_lsn_bytes`] <= 0 || s[`pgsync_instance_wal_replayed_lsn_bytes`] <= 0 {
		t.Errorf("standby: received %v, replayed %v; want > 0", s[`pgsync_instance_wal_received_lsn_bytes`], s[`pgsync_instance_wal_replayed_lsn_bytes`])
	}
	if _, ok := s[`pgsync_instance_wal_current_lsn_bytes`]; ok {
		t.Error("standby serves a current WAL position, which only a primary has")
	}

	// The default queries off: only the manager's own metrics.
	c.Stop(1, syscall.SIGINT)
	defaults = false
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby again", func(st instance.Status) bool { return st.Streaming })
	off := scrape(t, addr(1))
	for k := range off {
		if strings.HasPrefix(k, "cnpg_") || strings.HasPrefix(k, "pgsync_instance_wal_") {
			t.Errorf("disableDefaultQueries: %s served", k)
		}
	}
	if off[`pgsync_instance_role{role="standby"}`] != 1 {
		t.Error("disableDefaultQueries: the manager's own metrics are gone too")
	}
}
