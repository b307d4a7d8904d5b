package instance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// The instance manager's metrics (spec.monitoring; docs/metrics.md). The
// PostgreSQL ones carry CloudNativePG's names, labels and queries (its
// default-monitoring.yaml), so dashboards written for it read pgsync's
// instances too; pgsync_instance_* are the manager's own.
const (
	NameCollectorUp           = "cnpg_collector_up"
	NameBackendsTotal         = "cnpg_backends_total"
	NameBackendsMaxTx         = "cnpg_backends_max_tx_duration_seconds"
	NameDatabaseSize          = "cnpg_pg_database_size_bytes"
	NameDatabaseXIDAge        = "cnpg_pg_database_xid_age"
	NameDatabaseMXIDAge       = "cnpg_pg_database_mxid_age"
	NamePostmasterStart       = "cnpg_pg_postmaster_start_time"
	NameReplicationLag        = "cnpg_pg_replication_lag"
	NameInRecovery            = "cnpg_pg_replication_in_recovery"
	NameWALReceiverUp         = "cnpg_pg_replication_is_wal_receiver_up"
	NameStreamingReplicas     = "cnpg_pg_replication_streaming_replicas"
	NameSlotActive            = "cnpg_pg_replication_slots_active"
	NameSlotLSNDiff           = "cnpg_pg_replication_slots_pg_wal_lsn_diff"
	NameWALCurrent            = "pgsync_instance_wal_current_lsn_bytes"
	NameWALReceived           = "pgsync_instance_wal_received_lsn_bytes"
	NameWALReplayed           = "pgsync_instance_wal_replayed_lsn_bytes"
	NameStandbyLag            = "pgsync_instance_standby_replay_lag_bytes"
	NameRole                  = "pgsync_instance_role"
	NameLeaseHolder           = "pgsync_instance_lease_holder"
	NameLeaseRenewals         = "pgsync_instance_lease_renewals_total"
	NameFailovers             = "pgsync_instance_failovers_total"
	NamePostgresStarts        = "pgsync_instance_postgres_starts_total"
	NamePostgresCrashes       = "pgsync_instance_postgres_crashes_total"
	NameFenced                = "pgsync_instance_fenced"
	NameLastFailoverTime      = "pgsync_instance_last_failover_timestamp_seconds"
	metricsScrapeTimeout      = 5 * time.Second
	maxMetricsScrapesInFlight = 4
)

// managerCounters are the manager's own counts (the loop increments them).
type managerCounters struct {
	renewals  *prometheus.CounterVec
	failovers prometheus.Counter
}

func newManagerCounters() *managerCounters {
	return &managerCounters{
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameLeaseRenewals,
			Help: "Renewals of the primary Lease by this instance, by result (ok, failed)."}, []string{"result"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: NameFailovers,
			Help: "Failovers this instance carried out: primary Leases it took over from an expired holder."}),
	}
}

// renewed counts one renewal attempt (nil-safe: a Manager built by a test
// has none).
func (c *managerCounters) renewed(ok bool) {
	if c == nil {
		return
	}
	r := "ok"
	if !ok {
		r = "failed"
	}
	c.renewals.WithLabelValues(r).Inc()
}

func (c *managerCounters) failedOver() {
	if c != nil {
		c.failovers.Inc()
	}
}

// pgCollector reads the PostgreSQL metrics at every scrape, on a session
// of its own (localDB is not safe for concurrent use), and the manager's
// state from its status snapshot.
type pgCollector struct {
	cluster  string
	defaults bool
	status   func() Status
	log      *slog.Logger
	mu       sync.Mutex
	db       *localDB
	lastErr  string // the last scrape's error, logged once
	// custom runs the custom queries (nil without them).
	custom *customCollector
}

var (
	descUp            = prometheus.NewDesc(NameCollectorUp, "1 if PostgreSQL answered this scrape's queries, else 0.", []string{"cluster"}, nil)
	backendLabels     = []string{"datname", "usename", "application_name", "state"}
	descBackends      = prometheus.NewDesc(NameBackendsTotal, "Number of backends", backendLabels, nil)
	descBackendsMaxTx = prometheus.NewDesc(NameBackendsMaxTx, "Maximum duration of a transaction in seconds", backendLabels, nil)
	descDBSize        = prometheus.NewDesc(NameDatabaseSize, "Disk space used by the database", []string{"datname"}, nil)
	descXIDAge        = prometheus.NewDesc(NameDatabaseXIDAge, "Number of transactions from the frozen XID to the current one", []string{"datname"}, nil)
	descMXIDAge       = prometheus.NewDesc(NameDatabaseMXIDAge, "Number of multiple transactions (Multixact) from the frozen XID to the current one", []string{"datname"}, nil)
	descStart         = prometheus.NewDesc(NamePostmasterStart, "Time at which postgres started (based on epoch)", nil, nil)
	descLag           = prometheus.NewDesc(NameReplicationLag, "Replication lag behind primary in seconds", nil, nil)
	descInRecovery    = prometheus.NewDesc(NameInRecovery, "Whether the instance is in recovery", nil, nil)
	descReceiverUp    = prometheus.NewDesc(NameWALReceiverUp, "Whether the instance wal_receiver is up", nil, nil)
	descStreaming     = prometheus.NewDesc(NameStreamingReplicas, "Number of streaming replicas connected to the instance", nil, nil)
	slotLabels        = []string{"slot_name", "slot_type", "database"}
	descSlotActive    = prometheus.NewDesc(NameSlotActive, "Flag indicating whether the slot is active", slotLabels, nil)
	descSlotDiff      = prometheus.NewDesc(NameSlotLSNDiff, "Replication lag in bytes", slotLabels, nil)
	descWALCurrent    = prometheus.NewDesc(NameWALCurrent, "The primary's current WAL write position (pg_current_wal_lsn) as a byte offset.", nil, nil)
	descWALReceived   = prometheus.NewDesc(NameWALReceived, "A standby's last WAL position received and flushed (pg_last_wal_receive_lsn) as a byte offset.", nil, nil)
	descWALReplayed   = prometheus.NewDesc(NameWALReplayed, "A standby's last WAL position replayed (pg_last_wal_replay_lsn) as a byte offset.", nil, nil)
	descStandbyLag    = prometheus.NewDesc(NameStandbyLag, "On the primary: how far each standby's replay is behind its current WAL position, in bytes.", []string{"application_name"}, nil)
	descRole          = prometheus.NewDesc(NameRole, "1 on the manager's current role: primary, standby, stopped, fenced, bootstrapping.", []string{"role"}, nil)
	descHolder        = prometheus.NewDesc(NameLeaseHolder, "1 while this instance holds the primary Lease.", nil, nil)
	descStarts        = prometheus.NewDesc(NamePostgresStarts, "Times the manager started postgres.", nil, nil)
	descCrashes       = prometheus.NewDesc(NamePostgresCrashes, "Times postgres exited without being asked to.", nil, nil)
	descFenced        = prometheus.NewDesc(NameFenced, "1 while the manager keeps postgres stopped because it could not renew the primary Lease in time.", nil, nil)
	descLastFailover  = prometheus.NewDesc(NameLastFailoverTime, "When the cluster's last failover happened (Unix seconds), as recorded on the primary Lease; absent before any.", nil, nil)
	roles             = []string{"primary", "standby", "stopped", "fenced", "bootstrapping"}
)

func (c *pgCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *pgCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	s := c.status()
	for _, r := range roles {
		gauge(descRole, b2f(s.Role == r), r)
	}
	gauge(descHolder, b2f(s.LeaseHolder != "" && s.LeaseHolder == s.Instance))
	counter(descStarts, float64(s.PostgresStarts))
	counter(descCrashes, float64(s.PostgresCrashes))
	gauge(descFenced, b2f(s.Fenced))
	if f := s.LastFailover; f != nil && !f.At.IsZero() {
		gauge(descLastFailover, float64(f.At.UnixNano())/1e9)
	}
	var replaced map[string]bool
	if c.custom != nil {
		// Read before the default queries run: a custom query may
		// replace a group of them. Its own budget, beside theirs.
		l := c.custom.load()
		replaced = l.replaced
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), metricsScrapeTimeout)
			defer cancel()
			ms, errs, ran := c.custom.run(ctx, l, s.Role == pc.StatusPrimary, s.Accepting)
			c.custom.report(errs, ran)
			c.custom.errors.Collect(ch) // this scrape's problems counted
			for _, m := range ms {
				ch <- m
			}
			gauge(descLastError, b2f(len(errs) > 0))
		}()
		defer func() { <-done }()
	}
	if !c.defaults {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), metricsScrapeTimeout)
	defer cancel()
	var ms []prometheus.Metric
	err := c.queryPostgres(ctx, replaced, func(m prometheus.Metric) { ms = append(ms, m) })
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != c.lastErr && msg != "" {
		c.log.Warn("metrics: PostgreSQL not scraped", "error", msg)
	}
	c.lastErr = msg
	if err != nil {
		c.db.close()
		gauge(descUp, 0, c.cluster)
		return
	}
	gauge(descUp, 1, c.cluster)
	for _, m := range ms {
		ch <- m
	}
}

// descName is d's metric name.
func descName(d *prometheus.Desc) string {
	for n, dd := range descByName {
		if dd == d {
			return n
		}
	}
	return ""
}

// descByName are the default queries' metrics a custom query may replace.
var descByName = map[string]*prometheus.Desc{
	NameBackendsTotal: descBackends, NameBackendsMaxTx: descBackendsMaxTx, NameDatabaseSize: descDBSize,
	NameDatabaseXIDAge: descXIDAge, NameDatabaseMXIDAge: descMXIDAge, NamePostmasterStart: descStart,
	NameReplicationLag: descLag, NameInRecovery: descInRecovery, NameWALReceiverUp: descReceiverUp,
	NameStreamingReplicas: descStreaming, NameSlotActive: descSlotActive, NameSlotLSNDiff: descSlotDiff,
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The PostgreSQL queries: CloudNativePG's (default-monitoring.yaml) for
// the cnpg_ metrics, so their values mean the same.
const (
	backendsSQL = `SELECT COALESCE(sa.datname, ''), sa.usename, sa.application_name, states.state,
  COALESCE(sa.count, 0) AS total, COALESCE(sa.max_tx_secs, 0) AS max_tx_duration_seconds
  FROM (VALUES ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'),
    ('fastpath function call'), ('disabled')) AS states(state)
  LEFT JOIN (
    SELECT datname, state, usename, COALESCE(application_name, '') AS application_name, pg_catalog.count(*),
      COALESCE(EXTRACT(EPOCH FROM (pg_catalog.max(pg_catalog.now() - xact_start))), 0)::float8 AS max_tx_secs
    FROM pg_catalog.pg_stat_activity GROUP BY datname, state, usename, application_name
  ) sa ON states.state = sa.state
  WHERE sa.usename IS NOT NULL`
	databaseSQL = `SELECT datname, pg_catalog.pg_database_size(datname)::float8, pg_catalog.age(datfrozenxid)::float8,
  pg_catalog.mxid_age(datminmxid)::float8 FROM pg_catalog.pg_database WHERE datallowconn`
	replicationSQL = `SELECT EXTRACT(EPOCH FROM pg_catalog.pg_postmaster_start_time())::float8,
  CASE WHEN (NOT pg_catalog.pg_is_in_recovery() OR pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn())
    THEN 0 ELSE COALESCE(GREATEST(0, EXTRACT(EPOCH FROM (pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()))), 0)::float8 END,
  pg_catalog.pg_is_in_recovery(), EXISTS (TABLE pg_catalog.pg_stat_wal_receiver),
  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication),
  CASE WHEN pg_catalog.pg_is_in_recovery() THEN '' ELSE pg_catalog.pg_current_wal_lsn()::text END,
  COALESCE(pg_catalog.pg_last_wal_receive_lsn()::text, ''), COALESCE(pg_catalog.pg_last_wal_replay_lsn()::text, '')`
	slotsMetricsSQL = `SELECT slot_name, slot_type, COALESCE(database::text, ''), active,
  COALESCE((CASE pg_catalog.pg_is_in_recovery()
    WHEN TRUE THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), restart_lsn)
    ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn) END)::float8, 'NaN')
  FROM pg_catalog.pg_replication_slots WHERE NOT temporary`
	standbyLagSQL = `SELECT application_name, COALESCE(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), replay_lsn)::float8, 'NaN')
  FROM pg_catalog.pg_stat_replication WHERE NOT pg_catalog.pg_is_in_recovery()`
)

// queryPostgres runs the queries; the first error aborts the scrape's
// PostgreSQL part (up 0). The groups replaced by custom queries of the
// same name (defaultGroups) are left out.
func (c *pgCollector) queryPostgres(ctx context.Context, replaced map[string]bool, emit func(prometheus.Metric)) error {
	conn, err := c.db.get(ctx)
	if err != nil {
		return err
	}
	skip := map[string]bool{}
	for g := range replaced {
		for _, n := range defaultGroups[g] {
			skip[n] = true
		}
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		if !skip[descName(d)] {
			emit(prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
		}
	}
	each := func(sql string, scan func(rows pgx.Rows) error) error {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if err := each(backendsSQL, func(r pgx.Rows) error {
		var db, user, app, state string
		var total int64
		var maxTx float64
		if err := r.Scan(&db, &user, &app, &state, &total, &maxTx); err != nil {
			return err
		}
		gauge(descBackends, float64(total), db, user, app, state)
		gauge(descBackendsMaxTx, maxTx, db, user, app, state)
		return nil
	}); err != nil {
		return err
	}
	if err := each(databaseSQL, func(r pgx.Rows) error {
		var db string
		var size, xid, mxid float64
		if err := r.Scan(&db, &size, &xid, &mxid); err != nil {
			return err
		}
		gauge(descDBSize, size, db)
		gauge(descXIDAge, xid, db)
		gauge(descMXIDAge, mxid, db)
		return nil
	}); err != nil {
		return err
	}
	var start, lag float64
	var inRec, receiver bool
	var streaming int64
	var current, received, replayed string
	if err := conn.QueryRow(ctx, replicationSQL).Scan(&start, &lag, &inRec, &receiver, &streaming, &current, &received, &replayed); err != nil {
		return err
	}
	gauge(descStart, start)
	gauge(descLag, lag)
	gauge(descInRecovery, b2f(inRec))
	gauge(descReceiverUp, b2f(receiver))
	gauge(descStreaming, float64(streaming))
	for _, p := range []struct {
		d *prometheus.Desc
		v string
	}{{descWALCurrent, current}, {descWALReceived, received}, {descWALReplayed, replayed}} {
		if p.v == "" {
			continue
		}
		l, err := role.ParseLSN(p.v)
		if err != nil {
			return err
		}
		gauge(p.d, float64(l))
	}
	if err := each(slotsMetricsSQL, func(r pgx.Rows) error {
		var name, typ, db string
		var active bool
		var diff float64
		if err := r.Scan(&name, &typ, &db, &active, &diff); err != nil {
			return err
		}
		gauge(descSlotActive, b2f(active), name, typ, db)
		gauge(descSlotDiff, diff, name, typ, db)
		return nil
	}); err != nil {
		return err
	}
	return each(standbyLagSQL, func(r pgx.Rows) error {
		var app string
		var diff float64
		if err := r.Scan(&app, &diff); err != nil {
			return err
		}
		gauge(descStandbyLag, diff, app)
		return nil
	})
}

// serveMetrics serves /metrics on addr (FlagMetricsAddr) until the
// returned function stops it.
func (m *Manager) serveMetrics(addr string, defaults bool, log *slog.Logger) (func(), error) {
	db, err := newLocalDB(m.cfg.RunDir, m.cfg.Port)
	if err != nil {
		return nil, err
	}
	db.cfg.RuntimeParams["application_name"] = "pgsync-metrics"
	reg := prometheus.NewRegistry()
	col := &pgCollector{cluster: m.cfg.Cluster, defaults: defaults, status: m.status.Get, log: log, db: db}
	if len(m.cfg.MetricsQueries) > 0 {
		if col.custom, err = newCustomCollector(&m.cfg, m.cfg.MetricsQueries, defaults, m.status, log); err != nil {
			return nil, err
		}
	}
	reg.MustRegister(col)
	if m.counters != nil {
		reg.MustRegister(m.counters.renewals, m.counters.failovers)
	}
	mux := http.NewServeMux()
	mux.Handle(pc.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: maxMetricsScrapesInFlight}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if m.cfg.MetricsTLS {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.metricsCertificate()}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "error", err.Error())
		}
	}()
	return func() {
		_ = srv.Close()
		col.mu.Lock()
		db.close()
		col.mu.Unlock()
		if col.custom != nil {
			col.custom.close()
		}
	}, nil
}

// metricsCertificate serves the server certificate postgres serves: the
// user's (spec.certificates.serverTLSSecret) once installed, or the one
// the instance issues itself (tls.go); read again when its files change
// — the loop re-issues it (a new CA, a renewal, a new address) or
// installs a changed Secret — so the next TLS handshake has the new one.
func (m *Manager) metricsCertificate() func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var mu sync.Mutex
	var cert *tls.Certificate
	var stamp string
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		certFile, keyFile := m.tlsPath(tlsServerCert), m.tlsPath(tlsServerKey)
		if _, err := os.Stat(m.tlsPath(userServerCertFile)); err == nil {
			certFile, keyFile = m.tlsPath(userServerCertFile), m.tlsPath(userServerKeyFile)
		}
		var now string
		for _, f := range []string{certFile, keyFile} {
			fi, err := os.Stat(f)
			if err != nil {
				return nil, fmt.Errorf("metrics TLS: the server certificate is not issued yet: %w", err)
			}
			now += fi.ModTime().String() + strconv.FormatInt(fi.Size(), 10)
		}
		mu.Lock()
		defer mu.Unlock()
		if cert != nil && now == stamp {
			return cert, nil
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("metrics TLS: %w", err)
		}
		cert, stamp = &c, now
		return cert, nil
	}
}
