package instance

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/instance/role"
)

// localDB is a lazily (re)connected superuser session over the local
// socket, by peer authentication (no password: conffile.IdentMap). Not
// safe for concurrent use: each goroutine has its own.
type localDB struct {
	cfg  *pgx.ConnConfig
	conn *pgx.Conn
}

func newLocalDB(socketDir string, port int) (*localDB, error) {
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres connect_timeout=2 sslmode=disable", socketDir, port))
	if err != nil {
		return nil, fmt.Errorf("local connection config: %w", err)
	}
	cc.RuntimeParams["application_name"] = "pgsync-instance"
	// The manager's own writes (its roles, re-applied at every routing)
	// never wait for synchronous standbys: with required durability and
	// no standby yet, a new primary would otherwise never finish
	// bootstrapping.
	cc.RuntimeParams["synchronous_commit"] = "local"
	return &localDB{cfg: cc}, nil
}

func (d *localDB) get(ctx context.Context) (*pgx.Conn, error) {
	if d.conn != nil && !d.conn.IsClosed() {
		return d.conn, nil
	}
	c, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return nil, err
	}
	d.conn = c
	return c, nil
}

func (d *localDB) close() {
	if d.conn != nil {
		_ = d.conn.Close(context.Background())
		d.conn = nil
	}
}

// exec runs sql, dropping the connection on error so the next call
// reconnects.
func (d *localDB) exec(ctx context.Context, sql string, args ...any) error {
	c, err := d.get(ctx)
	if err != nil {
		return err
	}
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		d.close()
		return err
	}
	return nil
}

func (d *localDB) queryRow(ctx context.Context, sql string, dest ...any) error {
	c, err := d.get(ctx)
	if err != nil {
		return err
	}
	if err := c.QueryRow(ctx, sql).Scan(dest...); err != nil {
		d.close()
		return err
	}
	return nil
}

// quick is the per-iteration observation: is it up, in recovery, how far
// replayed.
type quick struct {
	InRecovery bool
	Replay     role.LSN
	// Received is the end of the WAL a standby has (received and flushed,
	// or replayed, whichever is further); Current a primary's position.
	Received role.LSN
	Current  role.LSN
}

func (d *localDB) observe(ctx context.Context) (quick, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var q quick
	var replay, received, current string
	err := d.queryRow(ctx, `SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn()::text, ''),
  coalesce(pg_last_wal_receive_lsn()::text, ''),
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END`, &q.InRecovery, &replay, &received, &current)
	if err != nil {
		return q, err
	}
	for _, f := range []struct {
		s   string
		dst *role.LSN
	}{{replay, &q.Replay}, {received, &q.Received}, {current, &q.Current}} {
		if f.s == "" {
			continue
		}
		if *f.dst, err = role.ParseLSN(f.s); err != nil {
			return q, err
		}
	}
	q.Received = max(q.Received, q.Replay)
	return q, nil
}

// promote asks for promotion and waits for the end of recovery.
// pg_promote(wait => true) checks only every 100 ms; polling
// pg_is_in_recovery() here answers within a few milliseconds.
func (d *localDB) promote(ctx context.Context) error {
	if err := d.exec(ctx, `SELECT pg_promote(wait => false)`); err != nil {
		return fmt.Errorf("pg_promote: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rec bool
		if err := d.queryRow(ctx, `SELECT pg_is_in_recovery()`, &rec); err != nil {
			return fmt.Errorf("wait for promotion: %w", err)
		}
		if !rec {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("promotion did not finish within 60s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// ensureRoles creates (or re-keys) the replication role and the
// application owner and database. Passwords travel as SCRAM verifiers, so
// not even a statement log shows them.
func (d *localDB) ensureRoles(ctx context.Context, c Credentials) error {
	if err := d.ensureRole(ctx, "streaming_replica", "LOGIN REPLICATION", c.ReplicationPassword); err != nil {
		return err
	}
	if c.AppUser == "" {
		return nil
	}
	if err := d.ensureRole(ctx, c.AppUser, "LOGIN", c.AppPassword); err != nil {
		return err
	}
	if c.AppDatabase == "" {
		return nil
	}
	var exists bool
	if err := d.queryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)`, quoteLiteral(c.AppDatabase)), &exists); err != nil {
		return fmt.Errorf("look up database %s: %w", c.AppDatabase, err)
	}
	if !exists {
		if err := d.exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, quoteIdent(c.AppDatabase), quoteIdent(c.AppUser))); err != nil {
			return fmt.Errorf("create database %s: %w", c.AppDatabase, err)
		}
	}
	return nil
}

// rejoinGrants are what pg_rewind needs of a role that is not superuser
// (its documentation: pg_ls_dir, pg_stat_file and both forms of
// pg_read_binary_file), the rejoin's timeline history being read with the
// first pg_read_binary_file too; from PostgreSQL 15, pg_checkpoint for
// the CHECKPOINT a rewind needs of a just-promoted source.
var rejoinGrants = []string{
	`GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO streaming_replica`,
	`GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO streaming_replica`,
	`GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO streaming_replica`,
	`GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO streaming_replica`,
	// The rejoin's wait for the checkpoint of a promotion before 15
	// (waitRemoteCheckpoint); PUBLIC may run it too, unless revoked.
	`GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_checkpoint() TO streaming_replica`,
}

// ensureRejoinGrants lets streaming_replica do what the rejoin of another
// instance does on this primary (timeline check, CHECKPOINT, pg_rewind),
// so no instance needs the superuser over the network. Run by a primary
// before it publishes its address: no standby follows, so none rejoins,
// before the grants are there (they replicate with the catalog).
func (d *localDB) ensureRejoinGrants(ctx context.Context) error {
	stmts := rejoinGrants
	var version int
	if err := d.queryRow(ctx, `SELECT current_setting('server_version_num')::int`, &version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if version >= 150000 {
		stmts = append(slices.Clone(stmts), `GRANT pg_checkpoint TO streaming_replica`)
	}
	for _, q := range stmts {
		if err := d.exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (d *localDB) ensureRole(ctx context.Context, name, attrs, password string) error {
	// No password (streaming_replica with TLS: it logs in by
	// certificate): none is set, so no password can log it in.
	pw := "NULL"
	if password != "" {
		verifier, err := scramVerifier(password)
		if err != nil {
			return err
		}
		pw = quoteLiteral(verifier)
	}
	var exists bool
	if err := d.queryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)`, quoteLiteral(name)), &exists); err != nil {
		return fmt.Errorf("look up role %s: %w", name, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	if err := d.exec(ctx, fmt.Sprintf(`%s ROLE %s %s PASSWORD %s`, verb, quoteIdent(name), attrs, pw)); err != nil {
		return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), name, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// scramVerifier computes PostgreSQL's SCRAM-SHA-256 password verifier
// (RFC 5802/7677 with 4096 iterations, as PostgreSQL does).
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	return scramVerifierWithSalt(password, salt, 4096)
}

func scramVerifierWithSalt(password string, salt []byte, iter int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b64(salt), b64(stored[:]), b64(serverKey)), nil
}

// fullStatus is what /status shows about postgres itself.
type fullStatus struct {
	InRecovery     bool
	Timeline       uint32
	CurrentLSN     string
	ReceivedLSN    string
	ReplayedLSN    string
	FlushedLSN     string
	Streaming      bool
	ReplayLagSecs  float64
	ServerVersion  string
	PendingRestart []string
	LagBytes       int64

	// ConfLoadTime is pg_conf_load_time() of the status session: when
	// this backend last read the configuration files (at a reload that
	// got past the name check, or at the server's start).
	ConfLoadTime time.Time
	// NotInEffect are the settings of pgsync.conf (as the file is now)
	// that postgres does not apply: refused by postgres (Refused) or
	// overridden by a later file. Changed restart-only ones are not
	// listed: they are PendingRestart.
	NotInEffect, Refused []string
	// HBAErrorLines and HBAErrors are pg_hba.conf's refused lines (as the
	// file is now): postgres keeps its previous rules while there is one.
	HBAErrorLines []int32
	HBAErrors     []string
}

const fullStatusSQL = `
SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery()
       THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END,
  coalesce(pg_last_wal_receive_lsn()::text, ''),
  coalesce(pg_last_wal_replay_lsn()::text, ''),
  CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT flushed_lsn::text FROM pg_stat_wal_receiver), '')
       ELSE pg_current_wal_flush_lsn()::text END,
  coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false),
  coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, 0),
  current_setting('server_version'),
  coalesce((SELECT array_agg(name::text ORDER BY name) FROM pg_settings WHERE pending_restart), '{}'),
  CASE WHEN pg_is_in_recovery()
       THEN coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint
       ELSE 0 END,
  pg_conf_load_time(),
  coalesce((SELECT array_agg(DISTINCT n ORDER BY n) FROM notinfo), '{}'),
  coalesce((SELECT array_agg(DISTINCT n ORDER BY n) FROM notinfo WHERE refused), '{}'),
  coalesce((SELECT array_agg(line_number ORDER BY line_number) FROM pg_hba_file_rules WHERE error IS NOT NULL), '{}'),
  coalesce((SELECT array_agg(error ORDER BY line_number) FROM pg_hba_file_rules WHERE error IS NOT NULL), '{}')`

// notInEffectSQL lists pgsync.conf's settings postgres does not apply.
// pg_file_settings parses the files as they are now. A syntax error or an
// unknown name (a row with an error and no such setting) makes postgres
// apply nothing from any file and leaves every other row "not applied":
// only the rows with an error are news then. Otherwise a row not applied
// without an error is overridden (by postgresql.auto.conf, read after
// pgsync.conf).
const notInEffectSQL = `
WITH notinfo AS (
  SELECT coalesce(f.name, 'line ' || f.sourceline) AS n, f.error IS NOT NULL AS refused
  FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name
  WHERE f.sourcefile = current_setting('data_directory') || '/` + conffile.FileName + `'
    AND NOT f.applied AND NOT coalesce(s.pending_restart, false)
    AND (f.error IS NOT NULL OR NOT EXISTS (
      SELECT 1 FROM pg_file_settings e LEFT JOIN pg_settings es ON es.name = e.name
      WHERE e.error IS NOT NULL AND es.name IS NULL)))`

func (d *localDB) fullStatus(ctx context.Context) (fullStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var s fullStatus
	var tli int32
	err := d.queryRow(ctx, notInEffectSQL+fullStatusSQL, &s.InRecovery, &tli, &s.CurrentLSN, &s.ReceivedLSN, &s.ReplayedLSN,
		&s.FlushedLSN, &s.Streaming, &s.ReplayLagSecs, &s.ServerVersion, &s.PendingRestart, &s.LagBytes,
		&s.ConfLoadTime, &s.NotInEffect, &s.Refused, &s.HBAErrorLines, &s.HBAErrors)
	s.Timeline = uint32(tli)
	return s, err
}

// errNotYetPromoted: the new Lease holder is still finishing its promotion;
// the rejoin is retried shortly.
var errNotYetPromoted = errors.New("the new primary is still in recovery")

// remoteCheckpoint runs CHECKPOINT on the primary at host:port. pg_rewind
// reads the source's timeline from its control file, which a promotion
// updates only at the next checkpoint: right after a failover it would
// still name the old timeline, and pg_rewind then finds the servers "on
// the same timeline" (no rewind) or sets a minimum recovery point on the
// wrong timeline (the standby never starts).
func remoteCheckpoint(ctx context.Context, host string, port int, user, password, ssl string) error {
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=5 %s", host, port, user, ssl))
	if err != nil {
		return err
	}
	cc.Password = password
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect to primary %s:%d: %w", host, port, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint on the primary: %w", err)
	}
	return nil
}

// isInsufficientPrivilege: the server refused a statement for lack of a
// privilege (SQLSTATE 42501), as CHECKPOINT without pg_checkpoint.
func isInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// waitRemoteCheckpoint waits until the primary's last checkpoint is on
// timeline tli (pg_control_checkpoint), as pg_rewind needs of its source:
// after a promotion that is the checkpoint the promoted primary's manager
// runs (checkpointAfterPromotion), or the one postgres itself requests.
func waitRemoteCheckpoint(ctx context.Context, host string, port int, user, password, ssl string, tli uint32, timeout time.Duration) error {
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=5 %s", host, port, user, ssl))
	if err != nil {
		return err
	}
	cc.Password = password
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect to primary %s:%d: %w", host, port, err)
	}
	defer c.Close(context.Background())
	for {
		var got int64
		if err := c.QueryRow(ctx, `SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()`).Scan(&got); err != nil {
			return fmt.Errorf("the primary's checkpoint timeline: %w", err)
		}
		if got >= int64(tli) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the primary's last checkpoint is still on timeline %d, not %d: %w", got, tli, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkpointAfterPromotion runs a CHECKPOINT on a just-promoted server
// before PostgreSQL 15, whose standbys' managers cannot run it themselves
// for pg_rewind (no pg_checkpoint role): they wait for it instead
// (waitRemoteCheckpoint). From 15 they run it, and a switchover's primary
// does no extra I/O.
func (m *Manager) checkpointAfterPromotion() {
	db, err := newLocalDB(m.cfg.RunDir, m.cfg.Port)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		defer db.close()
		err = db.checkpointBefore15(ctx)
	}
	if err != nil {
		m.log.Warn("checkpoint after promotion (a standby rejoining meanwhile waits for postgres' own)", "error", err.Error())
	}
}

// checkpointBefore15 runs CHECKPOINT on a server before PostgreSQL 15.
func (d *localDB) checkpointBefore15(ctx context.Context) error {
	var version int
	if err := d.queryRow(ctx, `SELECT current_setting('server_version_num')::int`, &version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if version >= 150000 {
		return nil
	}
	return d.exec(ctx, `CHECKPOINT`)
}

// remoteTimeline connects to a primary as user (streaming_replica, or the
// superuser of a primary that has not granted it the functions yet) and
// returns its current timeline and that timeline's history, read with
// pg_read_binary_file (which ensureRejoinGrants lets streaming_replica
// run; pg_read_file it may not).
func remoteTimeline(ctx context.Context, host string, port int, user, password, ssl string) (uint32, string, error) {
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=5 %s", host, port, user, ssl))
	if err != nil {
		return 0, "", err
	}
	cc.Password = password
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return 0, "", fmt.Errorf("connect to primary %s:%d: %w", host, port, err)
	}
	defer c.Close(context.Background())
	var rec bool
	if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&rec); err != nil {
		return 0, "", fmt.Errorf("primary state: %w", err)
	}
	if rec {
		return 0, "", errNotYetPromoted
	}
	var tli int32
	if err := c.QueryRow(ctx, `SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`).Scan(&tli); err != nil {
		return 0, "", fmt.Errorf("primary timeline: %w", err)
	}
	if tli <= 1 {
		return uint32(tli), "", nil
	}
	var hist []byte
	if err := c.QueryRow(ctx, fmt.Sprintf(`SELECT pg_read_binary_file('pg_wal/%08X.history')`, tli)).Scan(&hist); err != nil {
		return 0, "", fmt.Errorf("primary timeline history: %w", err)
	}
	return uint32(tli), string(hist), nil
}

// runIn runs post-init statements (what names them, for errors) in
// database dbname, each as one simple-protocol query, so one may hold
// several statements as in psql -c. The statements come from Git; their
// text is not logged (it may hold a password).
func (d *localDB) runIn(ctx context.Context, dbname, what string, stmts []string) error {
	if len(stmts) == 0 {
		return nil
	}
	cc := d.cfg.Copy()
	cc.Database = dbname
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("%s: connect to database %s: %w", what, dbname, err)
	}
	defer c.Close(context.Background())
	for i, q := range stmts {
		if _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("%s[%d] in database %s: %w", what, i, dbname, err)
		}
	}
	return nil
}
