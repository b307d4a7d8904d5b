package instance_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// writeQueries writes a custom queries file as the kubelet brings a new
// version into a projected volume: whole, replaced in one rename.
func writeQueries(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

const customQueries = `
pgsync_test:
  query: "SELECT 'a' AS kind, 3 AS n, 1.5 AS g UNION ALL SELECT 'b', 5, 2.5"
  metrics:
    - kind: {usage: LABEL, description: "the row's kind"}
    - n: {usage: COUNTER, description: "a count"}
    - g: {usage: GAUGE, description: "a gauge"}
whoami:
  query: "SELECT r.rolsuper::int AS super, pg_catalog.pg_has_role(current_user, 'pg_monitor', 'member')::int AS monitor,
    pg_catalog.current_setting('transaction_read_only') AS ro FROM pg_catalog.pg_roles r WHERE r.rolname = current_user"
  metrics:
    - super: {usage: GAUGE, description: "1 if the queries run as a superuser"}
    - monitor: {usage: GAUGE, description: "1 if they run as a member of pg_monitor"}
    - ro: {usage: MAPPEDMETRIC, description: "1 in a read-only transaction", metric_mapping: {"on": 1, "off": 0}}
on_db:
  query: "SELECT pg_catalog.current_database() AS datname, 1 AS one"
  target_databases: ["post*"]
  metrics:
    - datname: {usage: LABEL, description: "the database"}
    - one: {usage: GAUGE, description: "one"}
pg_replication:
  query: "SELECT 42 AS lag"
  metrics:
    - lag: {usage: GAUGE, description: "replaces the default query of that name"}
broken:
  query: "SELECT x FROM no_such_table"
  metrics:
    - x: {usage: GAUGE, description: "never served"}
bad_usage:
  query: SELECT 1 AS v
  metrics:
    - v: {usage: NUMBER}
`

// TestMetricsCustomQueries: custom queries in CloudNativePG's format are
// served from the files beside the default metrics, as a login member of
// pg_monitor that is no superuser, in read-only transactions; a label, a
// counter, a gauge, a mapped value, target_databases patterns, a
// default query replaced by name; a failing query, a refused one and a
// missing file are reported (/status, the error counter, cnpg_last_error)
// while the rest is served; a Secret's PostgreSQL message is withheld; a
// change of a file is served at the next scrape, without a restart; and
// with --metrics-tls /metrics is served over TLS with the instance's
// server certificate.
func TestMetricsCustomQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "cq", 1)
	port := insttest.FreePorts(t, 1)[0]
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := filepath.Join(c.Dir, "metrics-queries") // readable by the managers' user
	cm := pc.MetricsQueriesPath(pc.MetricsQueriesConfigMap, "queries", "custom-queries")
	secret := pc.MetricsQueriesPath(pc.MetricsQueriesSecret, "secret-queries", "q")
	missing := pc.MetricsQueriesPath(pc.MetricsQueriesConfigMap, "nope", "q")
	writeQueries(t, dir, cm, customQueries)
	writeQueries(t, dir, secret, "hidden:\n  query: SELECT secret_column FROM secret_table\n  metrics: [{secret_column: {usage: GAUGE}}]\n")
	useTLS := false
	c.ArgsFor = func(int) []string {
		args := []string{"--" + pc.FlagMetricsAddr + "=" + addr, "--metrics-queries-dir=" + dir,
			"--" + pc.FlagMetricsQueries + "=" + cm, "--" + pc.FlagMetricsQueries + "=" + missing, "--" + pc.FlagMetricsQueries + "=" + secret}
		if useTLS {
			args = append(args, "--"+pc.FlagMetricsTLS)
		}
		return args
	}
	replicationVolume(t, c, pc.Replication{Instances: []string{"cq-0"}}, "m1")
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)

	m := waitMetrics(t, addr, "the custom metrics", func(m map[string]float64) bool {
		_, ok := m[`cnpg_pgsync_test_n{kind="a"}`]
		return ok
	})
	for series, want := range map[string]float64{
		`cnpg_pgsync_test_n{kind="a"}`:         3,
		`cnpg_pgsync_test_n{kind="b"}`:         5,
		`cnpg_pgsync_test_g{kind="a"}`:         1.5,
		`cnpg_pgsync_test_g{kind="b"}`:         2.5,
		`cnpg_whoami_super`:                    0,
		`cnpg_whoami_monitor`:                  1,
		`cnpg_whoami_ro`:                       1,
		`cnpg_on_db_one{datname="postgres"}`:   1,
		`cnpg_pg_replication_lag`:              42,
		`cnpg_collector_up{cluster="cq"}`:      1,
		`cnpg_last_error`:                      1,
		`pgsync_instance_role{role="primary"}`: 1,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (served: %v), want %v", series, got, ok, want)
		}
	}
	if m[`cnpg_pg_database_size_bytes{datname="app"}`] <= 0 {
		t.Error("the default queries are no longer served beside the custom ones")
	}
	if _, ok := m[`cnpg_pg_replication_in_recovery`]; ok {
		t.Error("cnpg_pg_replication_in_recovery served: the custom pg_replication replaces the default query of that name")
	}
	for _, q := range [][2]string{{cm, "broken"}, {cm, "bad_usage"}, {missing, ""}, {secret, "hidden"}} {
		series := fmt.Sprintf(`%s{query="%s",source="%s"}`, instance.NameCustomQueryErrors, q[1], q[0])
		if m[series] < 1 {
			t.Errorf("%s = %v, want ≥ 1", series, m[series])
		}
	}
	for k := range m {
		if strings.HasPrefix(k, "cnpg_broken") || strings.HasPrefix(k, "cnpg_bad_usage") || strings.HasPrefix(k, "cnpg_hidden") {
			t.Errorf("%s served", k)
		}
	}
	st, err := c.Status(0)
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomQueries == nil {
		t.Fatal("/status has no customQueries")
	}
	errs := map[string]string{}
	for _, e := range st.CustomQueries.Errors {
		errs[e.Source+" "+e.Query] = e.Error
	}
	for k, want := range map[string]string{
		cm + " broken":     `relation "no_such_table" does not exist`,
		cm + " bad_usage":  `usage "NUMBER" is none of`,
		missing + " ":      "missing: no ConfigMap of that name",
		secret + " hidden": "SQLSTATE 42P01 (its message is withheld",
	} {
		if !strings.Contains(errs[k], want) {
			t.Errorf("/status customQueries error of %q: %q, want it to hold %q", k, errs[k], want)
		}
	}
	if strings.Contains(errs[secret+" hidden"], "secret_table") {
		t.Errorf("a Secret's query is quoted in /status: %s", errs[secret+" hidden"])
	}
	if len(st.CustomQueries.Errors) != 4 || st.CustomQueries.Ran != 6 {
		t.Errorf("/status customQueries: ran %d, errors %v; want 6 run, 4 errors", st.CustomQueries.Ran, st.CustomQueries.Errors)
	}
	if log := c.LogTail(0, 400); !strings.Contains(log, "custom query not served") || strings.Contains(log, "secret_table") {
		t.Errorf("log: want the problems reported and the Secret's query not quoted:\n%s", log)
	}

	// A new version of the ConfigMap: the next scrape serves it.
	fixed := strings.Replace(strings.Replace(customQueries, "3 AS n", "7 AS n", 1), "FROM no_such_table", "FROM (SELECT 9 AS x) t", 1)
	writeQueries(t, dir, cm, fixed)
	writeQueries(t, dir, secret, "hidden:\n  query: SELECT 4 AS v\n  metrics: [{v: {usage: GAUGE}}]\n")
	m = scrape(t, addr)
	for series, want := range map[string]float64{`cnpg_pgsync_test_n{kind="a"}`: 7, `cnpg_broken_x`: 9, `cnpg_hidden_v`: 4} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("after the change: %s = %v (served: %v), want %v", series, got, ok, want)
		}
	}
	st, _ = c.Status(0)
	if st.CustomQueries == nil || len(st.CustomQueries.Errors) != 2 {
		t.Errorf("after the change: /status customQueries %+v, want the two errors left (bad_usage, the missing file)", st.CustomQueries)
	}

	// TLS: the instance's server certificate, verified with the CA.
	c.Stop(0, syscall.SIGINT)
	useTLS = true
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary again", isPrimary)
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.CACert())
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("CA: %v", err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(stepTimeout)
	for {
		resp, err := client.Get("https://" + addr + pc.PathMetrics)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS == nil || !slices.ContainsFunc(resp.TLS.PeerCertificates[0].DNSNames, func(n string) bool { return n == "cq-rw" }) {
				t.Errorf("TLS scrape: %s, certificate names %v", resp.Status, resp.TLS.PeerCertificates[0].DNSNames)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS scrape: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, err := http.Get("http://" + addr + pc.PathMetrics); err == nil && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Error("with --metrics-tls /metrics is still served over plain HTTP")
	}
}
