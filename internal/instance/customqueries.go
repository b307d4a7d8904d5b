package instance

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgsync/pgsync/internal/instance/customq"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Custom queries (spec.monitoring.customQueriesConfigMap and
// customQueriesSecret; docs/metrics.md, "Custom queries"). The pod
// projects each {name, key} as a file (internal/kube); at every scrape
// the manager reads the files again — the kubelet updates them in place,
// so a changed ConfigMap is served without a restart — and runs the
// queries in CloudNativePG's format (package customq) as pc.MetricsRole,
// a login member of pg_monitor and nothing else, each in a read-only
// transaction with search_path pinned. A problem is one query's or one
// file's: reported on /status, in the log (once, until it changes) and
// by NameCustomQueryErrors; the other metrics are served all the same.
const (
	NameCustomQueryErrors = "pgsync_instance_custom_query_errors_total"
	NameLastError         = "cnpg_last_error"
	metricsAppName        = "cnpg_metrics_exporter"
)

var descLastError = prometheus.NewDesc(NameLastError, "1 if the last collection of the custom queries ended with an error, 0 otherwise.", nil, nil)

// defaultGroups are the names of CloudNativePG's default queries pgsync
// serves, with their metrics: a custom query of the same name replaces
// the group, as in CloudNativePG.
var defaultGroups = map[string][]string{
	"backends":             {NameBackendsTotal, NameBackendsMaxTx},
	"pg_database":          {NameDatabaseSize, NameDatabaseXIDAge, NameDatabaseMXIDAge},
	"pg_postmaster":        {NamePostmasterStart},
	"pg_replication":       {NameReplicationLag, NameInRecovery, NameWALReceiverUp, NameStreamingReplicas},
	"pg_replication_slots": {NameSlotActive, NameSlotLSNDiff},
}

// ownNames are the metrics no custom query may serve.
var ownNames = []string{NameCollectorUp, NameWALCurrent, NameWALReceived, NameWALReplayed, NameStandbyLag, NameRole, NameLeaseHolder,
	NameLeaseRenewals, NameFailovers, NamePostgresStarts, NamePostgresCrashes, NameFenced, NameLastFailoverTime, NameCustomQueryErrors, NameLastError}

// sourcedQuery is a valid query and the file it came from.
type sourcedQuery struct {
	source string
	hash   [32]byte // of the file, which keys its cache
	customq.Query
}

// loadedQueries is one scrape's reading of the files.
type loadedQueries struct {
	queries []sourcedQuery
	errs    []pc.CustomQueryError
	// replaced are the default groups custom queries replace.
	replaced map[string]bool
}

// customCollector runs the custom queries. One scrape at a time (mu).
type customCollector struct {
	dir       string
	files     []string
	defaultDB string
	defaults  bool
	socketDir string
	port      int
	// keyFile keys the role's password (the cluster's CA key, the same
	// on every instance); superuser is the fallback key.
	keyFile   string
	superuser string
	super     *localDB // creates the role on the primary
	status    *statusBox
	log       *slog.Logger
	errors    *prometheus.CounterVec

	mu      sync.Mutex
	conns   map[string]*pgx.Conn
	version int // server_version_num, 0 until read
	// roleTried is when the role was last set up: once a minute at most,
	// so a login refused for another reason (a pg_hba rule of the
	// user's) does not rewrite the role at every scrape.
	roleTried time.Time
	cache     map[string]cachedRun
	reported  map[string]string // what was logged, by source/query/db
}

type cachedRun struct {
	until   time.Time
	metrics []prometheus.Metric
}

func newCustomCollector(cfg *Config, files []string, defaults bool, status *statusBox, log *slog.Logger) (*customCollector, error) {
	super, err := newLocalDB(cfg.RunDir, cfg.Port)
	if err != nil {
		return nil, err
	}
	super.cfg.RuntimeParams["application_name"] = metricsAppName
	db := cfg.Credentials.AppDatabase
	if db == "" {
		db = "postgres"
	}
	c := &customCollector{dir: pc.MetricsQueriesDir, files: files, defaultDB: db, defaults: defaults, socketDir: cfg.RunDir, port: cfg.Port,
		superuser: cfg.Credentials.SuperuserPassword, super: super, status: status, log: log,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameCustomQueryErrors,
			Help: "Failed runs of custom queries, and files or queries refused, by file (relative to the queries' directory) and query (empty: the file's own problem)."},
			[]string{"source", "query"}),
		conns: map[string]*pgx.Conn{}, cache: map[string]cachedRun{}, reported: map[string]string{}}
	if cfg.MetricsQueriesDir != "" {
		c.dir = cfg.MetricsQueriesDir
	}
	if cfg.CADir != "" {
		c.keyFile = filepath.Join(cfg.CADir, pc.CAKeyKey)
	}
	return c, nil
}

// load reads and checks the files: a query of a later file replaces one
// of the same name; a query whose metric another one (or pgsync) serves
// is refused.
func (c *customCollector) load() loadedQueries {
	var out loadedQueries
	byKey := map[string]int{}
	for _, f := range c.files {
		data, err := os.ReadFile(filepath.Join(c.dir, f))
		if err != nil {
			msg := "cannot read it: " + err.Error()
			if errors.Is(err, os.ErrNotExist) {
				kind := "ConfigMap"
				if strings.HasPrefix(f, pc.MetricsQueriesSecret+"/") {
					kind = "Secret"
				}
				msg = "missing: no " + kind + " of that name in the namespace, or it has no such key (the projection is optional)"
			}
			out.errs = append(out.errs, pc.CustomQueryError{Source: f, Error: msg})
			continue
		}
		qs, errs := customq.Parse(data)
		for _, e := range errs {
			out.errs = append(out.errs, pc.CustomQueryError{Source: f, Query: e.Query, Error: e.Err})
		}
		h := sha256.Sum256(data)
		for _, q := range qs {
			if i, ok := byKey[q.Key]; ok {
				c.logOnce(f+"/"+q.Key+"/replaces", "", "metrics: custom query replaces one of the same name", "source", f, "query", q.Key, "replaced", out.queries[i].source)
				out.queries[i] = sourcedQuery{source: f, hash: h, Query: q}
				continue
			}
			byKey[q.Key] = len(out.queries)
			out.queries = append(out.queries, sourcedQuery{source: f, hash: h, Query: q})
		}
	}
	served := map[string]string{}
	for _, n := range ownNames {
		served[n] = "pgsync itself"
	}
	out.replaced = map[string]bool{}
	if c.defaults {
		for g, names := range defaultGroups {
			if _, ok := byKey[g]; ok {
				out.replaced[g] = true
				continue
			}
			for _, n := range names {
				served[n] = "pgsync's default query " + g
			}
		}
	}
	kept := out.queries[:0]
	for _, q := range out.queries {
		clash := ""
		for _, m := range q.Metrics() {
			if by, ok := served[m]; ok {
				clash = fmt.Sprintf("metric %s is served already, by %s", m, by)
				break
			}
		}
		if clash != "" {
			out.errs = append(out.errs, pc.CustomQueryError{Source: q.source, Query: q.Key, Error: clash})
			continue
		}
		for _, m := range q.Metrics() {
			served[m] = "query " + q.Key + " of " + q.source
		}
		kept = append(kept, q)
	}
	out.queries = kept
	return out
}

// run runs the loaded queries; the metrics of the failed ones are left
// out. While postgres does not accept connections (cnpg_collector_up
// says so) none runs, and only the files' problems are reported.
func (c *customCollector) run(ctx context.Context, l loadedQueries, primary, accepting bool) ([]prometheus.Metric, []pc.CustomQueryError, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := slices.Clone(l.errs)
	var out []prometheus.Metric
	ran := 0
	if !accepting {
		return nil, errs, 0
	}
	var existing []string
	listed := false
	now := time.Now()
	used := map[string]bool{}
	for _, q := range l.queries {
		if q.Primary && !primary {
			continue
		}
		if q.RunOnServer != nil {
			v, err := c.serverVersion(ctx)
			if err != nil {
				errs = append(errs, c.queryError(q, "", err))
				continue
			}
			if !q.RunOnServer.Matches(customq.ServerVersion(v)) {
				continue
			}
		}
		ran++
		if customq.Patterns(q.Databases) && !listed {
			listed = true
			var err error
			if existing, err = c.databases(ctx); err != nil {
				errs = append(errs, c.queryError(q, "", fmt.Errorf("listing the databases for target_databases: %w", err)))
			}
		}
		for _, db := range customq.Targets(q.Databases, c.defaultDB, existing) {
			used[db] = true
			key := fmt.Sprintf("%s\x00%x\x00%s\x00%s", q.source, q.hash, q.Key, db)
			if r, ok := c.cache[key]; ok && now.Before(r.until) {
				out = append(out, r.metrics...)
				continue
			}
			ms, err := c.runOn(ctx, q, db)
			if err != nil {
				errs = append(errs, c.queryError(q, db, err))
				continue
			}
			if q.CacheSeconds > 0 {
				c.cache[key] = cachedRun{until: now.Add(time.Duration(q.CacheSeconds) * time.Second), metrics: ms}
			}
			out = append(out, ms...)
		}
	}
	for k, r := range c.cache {
		if !now.Before(r.until) {
			delete(c.cache, k)
		}
	}
	for db, conn := range c.conns {
		if !used[db] {
			_ = conn.Close(context.Background())
			delete(c.conns, db)
		}
	}
	return out, errs, ran
}

// report publishes one scrape's problems: /status, the log (each once
// until it changes or goes), the error counter.
func (c *customCollector) report(errs []pc.CustomQueryError, ran int) {
	seen := map[string]bool{}
	for _, e := range errs {
		c.errors.WithLabelValues(e.Source, e.Query).Inc()
		k := e.Source + "\x00" + e.Query + "\x00" + e.Database
		seen[k] = true
		c.logOnce(k, e.Error, "metrics: custom query not served", "source", e.Source, "query", e.Query, "database", e.Database, "error", e.Error)
	}
	c.mu.Lock()
	for k := range c.reported {
		if !seen[k] && !strings.HasSuffix(k, "/replaces") {
			parts := strings.Split(k, "\x00")
			c.log.Info("metrics: custom query served again", "source", parts[0], "query", parts[1], "database", parts[2])
			delete(c.reported, k)
		}
	}
	c.mu.Unlock()
	st := &pc.CustomQueriesStatus{At: time.Now().UTC(), Ran: ran, Errors: errs}
	c.status.update(func(s *Status) { s.CustomQueries = st })
}

func (c *customCollector) logOnce(key, msg, text string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.reported[key]; ok && prev == msg {
		return
	}
	c.reported[key] = msg
	c.log.Warn(text, args...)
}

// queryError is err as reported: from a Secret, PostgreSQL's message is
// replaced by its SQLSTATE (the message may quote the query).
func (c *customCollector) queryError(q sourcedQuery, db string, err error) pc.CustomQueryError {
	msg := err.Error()
	var pgErr *pgconn.PgError
	if strings.HasPrefix(q.source, pc.MetricsQueriesSecret+"/") && errors.As(err, &pgErr) {
		msg = "PostgreSQL refused it: SQLSTATE " + pgErr.Code + " (its message is withheld: the query comes from a Secret)"
	}
	return pc.CustomQueryError{Source: q.source, Query: q.Key, Database: db, Error: msg}
}

// runOn runs q on db in a read-only transaction (the predicate first).
func (c *customCollector) runOn(ctx context.Context, q sourcedQuery, db string) ([]prometheus.Metric, error) {
	conn, err := c.conn(ctx, db)
	if err != nil {
		return nil, err
	}
	ms, err := runQuery(ctx, conn, q.Query)
	if err != nil && (conn.IsClosed() || ctx.Err() != nil) {
		c.drop(db)
	}
	return ms, err
}

func runQuery(ctx context.Context, conn *pgx.Conn, q customq.Query) ([]prometheus.Metric, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog, public, pg_temp"); err != nil {
		return nil, err
	}
	if q.Predicate != "" {
		var ok *bool
		err := tx.QueryRow(ctx, q.Predicate).Scan(&ok)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("predicate_query: %w", err)
		case ok == nil || !*ok:
			return nil, nil
		}
	}
	rows, err := tx.Query(ctx, q.SQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	var data [][]any
	for rows.Next() {
		vs, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for i := range vs {
			vs[i] = pgValue(vs[i])
		}
		data = append(data, vs)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return q.Rows(cols, data)
}

// pgValue decodes a column's value into the kinds customq reads.
func pgValue(v any) any {
	switch x := v.(type) {
	case nil, float64, bool, string, time.Time:
		return x
	case float32:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint32:
		return float64(x)
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return nil
		}
		return f.Float64
	case pgtype.Interval:
		if !x.Valid {
			return nil
		}
		return time.Duration(x.Microseconds)*time.Microsecond + time.Duration(x.Days)*24*time.Hour + time.Duration(x.Months)*30*24*time.Hour
	case []byte:
		return string(x)
	case []any:
		out := make([]float64, 0, len(x))
		for _, e := range x {
			f, ok := pgValue(e).(float64)
			if !ok {
				return fmt.Sprint(x)
			}
			out = append(out, f)
		}
		return out
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func (c *customCollector) drop(db string) {
	if conn, ok := c.conns[db]; ok {
		_ = conn.Close(context.Background())
		delete(c.conns, db)
	}
	c.version = 0
}

// conn is a session on db as pc.MetricsRole. When the role cannot log in
// (missing, or its password from before a new CA) and this instance is
// the primary, the role is created or its password set, then tried again.
func (c *customCollector) conn(ctx context.Context, db string) (*pgx.Conn, error) {
	if conn, ok := c.conns[db]; ok && !conn.IsClosed() {
		return conn, nil
	}
	password, err := c.rolePassword()
	if err != nil {
		return nil, err
	}
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=%s connect_timeout=2 sslmode=disable", c.socketDir, c.port, quoteConnValue(db)))
	if err != nil {
		return nil, err
	}
	cc.User, cc.Password = pc.MetricsRole, password
	cc.RuntimeParams["application_name"] = metricsAppName
	cc.RuntimeParams["search_path"] = "pg_catalog, public, pg_temp"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil && loginRefused(err) && time.Since(c.roleTried) > time.Minute {
		c.roleTried = time.Now()
		if perr := c.ensureRole(ctx, password); perr != nil {
			return nil, fmt.Errorf("%w (and %s could not be set up: %v)", err, pc.MetricsRole, perr)
		}
		conn, err = pgx.ConnectConfig(ctx, cc)
	}
	if err != nil {
		return nil, err
	}
	c.conns[db] = conn
	return conn, nil
}

func quoteConnValue(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// loginRefused: the role is missing or its password wrong.
func loginRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// rolePassword is the role's password, the same on every instance without
// being stored anywhere: an HMAC of the cluster's CA key (or, for a pod
// without one, of the superuser's password).
func (c *customCollector) rolePassword() (string, error) {
	key := []byte(c.superuser)
	if c.keyFile != "" {
		b, err := os.ReadFile(c.keyFile)
		if err != nil {
			return "", fmt.Errorf("the key of %s's password: %w", pc.MetricsRole, err)
		}
		key = b
	}
	if len(key) == 0 {
		return "", fmt.Errorf("no key for %s's password: neither the cluster's CA nor a superuser password", pc.MetricsRole)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("pgsync " + pc.MetricsRole))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}

// ensureRole creates pc.MetricsRole or sets its password (a SCRAM
// verifier: the password is never in the statement), as CloudNativePG's:
// a login member of pg_monitor, nothing more. Only a primary can; a
// standby gets it by replication.
func (c *customCollector) ensureRole(ctx context.Context, password string) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	conn, err := c.super.get(ctx)
	if err != nil {
		return err
	}
	var inRecovery, exists bool
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_is_in_recovery(), EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", pc.MetricsRole).Scan(&inRecovery, &exists); err != nil {
		c.super.close()
		return err
	}
	if inRecovery {
		return errors.New("a standby: the primary's manager creates it, and it replicates here")
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	stmt := verb + " ROLE " + pgx.Identifier{pc.MetricsRole}.Sanitize() +
		" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD '" + strings.ReplaceAll(verifier, "'", "''") + "'"
	if _, err := conn.Exec(ctx, stmt); err != nil {
		c.super.close()
		return err
	}
	// Its sessions leave their errors and statements out of the server
	// log, which the manager relays to its own: the queries of a Secret
	// would be quoted there. The manager reports their problems itself.
	for _, q := range []string{"GRANT pg_monitor TO %s", "ALTER ROLE %s SET log_min_messages = 'fatal'", "ALTER ROLE %s SET log_min_error_statement = 'panic'",
		"ALTER ROLE %s SET log_statement = 'none'", "ALTER ROLE %s SET log_min_duration_statement = -1"} {
		if _, err := conn.Exec(ctx, fmt.Sprintf(q, pgx.Identifier{pc.MetricsRole}.Sanitize())); err != nil {
			c.super.close()
			return err
		}
	}
	c.log.Info("metrics: role for custom queries set up", "role", pc.MetricsRole, "created", !exists)
	return nil
}

func (c *customCollector) serverVersion(ctx context.Context) (int, error) {
	if c.version > 0 {
		return c.version, nil
	}
	conn, err := c.conn(ctx, c.defaultDB)
	if err != nil {
		return 0, err
	}
	var s string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&s); err != nil {
		c.drop(c.defaultDB)
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("server_version_num %q: %w", s, err)
	}
	c.version = v
	return v, nil
}

// databases are those target_databases patterns expand over:
// CloudNativePG's (connectable, not templates, CONNECT granted).
func (c *customCollector) databases(ctx context.Context) ([]string, error) {
	conn, err := c.conn(ctx, c.defaultDB)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_catalog.pg_database
  WHERE datallowconn AND NOT datistemplate AND pg_catalog.has_database_privilege(datname, 'CONNECT')`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (c *customCollector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for db := range c.conns {
		c.drop(db)
	}
	c.super.close()
}
