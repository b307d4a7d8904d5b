package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// The post-init SQL of spec.bootstrap.initdb runs once, on the primary
// that bootstraps the cluster, in CloudNativePG's order: for postgres,
// then template1 (so the application database, created from it,
// inherits), then the application database, the inline statements of
// the phase first, then its SQLRefs files (the Secrets', then the
// ConfigMaps'), each file as one simple-protocol query, as CloudNativePG
// runs them (its statements in one implicit transaction unless it says
// BEGIN/COMMIT itself).
//
// None of it can be run twice, nor skipped: from the first statement
// until the last succeeded, bootstrapFailedFile in PGDATA says the
// bootstrap is not complete, with why when a statement failed. While it
// is there the manager keeps postgres stopped and routes nothing
// (holdFailedBootstrap), across restarts of the pod: a cluster never
// comes up without its post-init SQL, and the status says what failed.

// bootstrapFailedFile, in PGDATA, holds why the bootstrap did not
// complete.
const bootstrapFailedFile = "pgsync-bootstrap-failed"

// interruptedBootstrap is bootstrapFailedFile's text until a statement
// fails or all succeeded: a manager that stopped in between (the pod
// deleted) finds it.
const interruptedBootstrap = "the instance manager stopped while the post-init SQL ran: it may have run in part, and cannot be run again"

// postInitPhase is one database's post-init SQL.
type postInitPhase struct {
	field, database string
	stmts           []string
	files           []pc.SQLFile
}

func postInitPhases(o pc.InitDB, appDatabase string) []postInitPhase {
	return []postInitPhase{
		{"postInitSQL", "postgres", o.PostInitSQL, o.PostInitSQLRefs},
		{"postInitTemplateSQL", "template1", o.PostInitTemplateSQL, o.PostInitTemplateSQLRefs},
		{"postInitApplicationSQL", appDatabase, o.PostInitApplicationSQL, o.PostInitApplicationSQLRefs},
	}
}

// sqlRefsDir is where the SQLRefs files are projected.
func sqlRefsDir(o pc.InitDB) string {
	if o.SQLRefsDir != "" {
		return o.SQLRefsDir
	}
	return pc.PostInitSQLDir
}

// describeFile names a projected file by where it comes from.
func describeFile(field string, f pc.SQLFile) string {
	kind := "ConfigMap"
	if f.Secret {
		kind = "Secret"
	}
	return fmt.Sprintf("%sRefs: %s %s key %s", field, kind, f.Name, f.Key)
}

// missingSQLFiles names the SQLRefs files not (yet) in the pod: their
// ConfigMap, Secret or key is missing (the projection is optional).
func missingSQLFiles(o pc.InitDB) []string {
	var missing []string
	for _, ph := range postInitPhases(o, "") {
		for _, f := range ph.files {
			if _, err := os.Stat(filepath.Join(sqlRefsDir(o), f.Path)); err != nil {
				missing = append(missing, describeFile(ph.field, f))
			}
		}
	}
	return missing
}

// postInitFilesPresent holds the bootstrap, before initdb, until every
// SQLRefs file is in the pod: the kubelet projects an object created
// late within about a minute. The error (the manager's lastError) names
// what is missing; the loop asks again, after a pause.
func (m *Manager) postInitFilesPresent(ctx context.Context) error {
	missing := missingSQLFiles(m.cfg.InitDB)
	if len(missing) == 0 {
		return nil
	}
	err := fmt.Errorf("bootstrap waits for its post-init SQL files (create the ConfigMap or Secret, or its key, in the cluster's namespace): %s missing",
		strings.Join(missing, "; "))
	sleepCtx(ctx, 5*time.Second)
	return err
}

// postInit runs the post-init SQL, creating the managed roles and the
// application database before the application database's phase.
func (m *Manager) postInit(ctx context.Context) error {
	phases := postInitPhases(m.cfg.InitDB, m.cfg.Credentials.AppDatabase)
	var any bool
	for _, ph := range phases {
		any = any || len(ph.stmts) > 0 || len(ph.files) > 0
	}
	if !any {
		return m.db.ensureRoles(ctx, m.cfg.Credentials)
	}
	marker := filepath.Join(m.cfg.PGData, bootstrapFailedFile)
	if err := os.WriteFile(marker, []byte(interruptedBootstrap), 0o600); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	err := func() error {
		for n, ph := range phases {
			if n == len(phases)-1 {
				if err := m.db.ensureRoles(ctx, m.cfg.Credentials); err != nil {
					return err
				}
			}
			if err := m.db.runIn(ctx, ph.database, ph.field, ph.stmts); err != nil {
				return err
			}
			if err := m.db.runFiles(ctx, ph.database, ph.field, sqlRefsDir(m.cfg.InitDB), ph.files); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		if ctx.Err() == nil {
			msg := "bootstrap failed: " + err.Error()
			if werr := os.WriteFile(marker, []byte(msg), 0o600); werr != nil {
				return fmt.Errorf("%w (and recording it: %v)", err, werr)
			}
		}
		return err
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// holdFailedBootstrap: with bootstrapFailedFile in PGDATA, postgres is
// stopped, the status says why, and the loop decides nothing (true);
// the cluster must be created anew (docs/instance-manager.md#bootstrap).
func (m *Manager) holdFailedBootstrap(ctx context.Context) bool {
	b, err := os.ReadFile(filepath.Join(m.cfg.PGData, bootstrapFailedFile))
	if err != nil {
		return false
	}
	msg := strings.TrimSpace(string(b)) + "; the cluster must be created anew (its post-init SQL cannot run twice)"
	var was string
	m.status.update(func(s *Status) {
		was = s.LastError
		s.Role, s.Action, s.ActionReason = "bootstrapping", role.Wait.String(), "bootstrap failed"
		s.LastError, s.LastErrorTime = msg, m.now()
	})
	if was != msg {
		m.log.Error("bootstrap failed: holding this instance stopped", "error", msg)
	}
	if st := m.owner.State(); st.Wanted || st.Running {
		m.routed = false
		if err := m.owner.Stop(ctx, postmaster.Fast); err != nil {
			m.log.Warn("stop postgres after the failed bootstrap", "error", err.Error())
		}
	}
	sleepCtx(ctx, 5*time.Second)
	return true
}

// runFiles runs the SQLRefs files of field in database dbname, in order,
// each as one simple-protocol query.
func (d *localDB) runFiles(ctx context.Context, dbname, field, dir string, files []pc.SQLFile) error {
	if len(files) == 0 {
		return nil
	}
	cc := d.cfg.Copy()
	cc.Database = dbname
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("%sRefs: connect to database %s: %w", field, dbname, err)
	}
	defer c.Close(context.Background())
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			return fmt.Errorf("%s: %w", describeFile(field, f), err)
		}
		if f.Secret {
			if err := setQuietLogging(ctx, c, true); err != nil {
				return fmt.Errorf("%s: %w", describeFile(field, f), err)
			}
		}
		done, err := execFile(ctx, c.PgConn(), string(text))
		if err != nil {
			return sqlFileError(describeFile(field, f), dbname, f.Secret, string(text), done, err)
		}
		if f.Secret {
			if err := setQuietLogging(ctx, c, false); err != nil {
				return fmt.Errorf("%s: %w", describeFile(field, f), err)
			}
		}
	}
	return nil
}

// quietLogging are the settings under which PostgreSQL's log (the pod's,
// through the manager) repeats nothing of a Secret's file: not the
// failing statement, nor a message quoting it, nor a slow or sampled
// statement. The later ones are not in every major.
var quietLogging = []string{"log_min_messages = panic", "log_min_error_statement = panic", "log_statement = none",
	"log_min_duration_statement = -1", "log_min_duration_sample = -1", "log_transaction_sample_rate = 0"}

// setQuietLogging sets quietLogging for the session, or resets it.
func setQuietLogging(ctx context.Context, c *pgx.Conn, on bool) error {
	for _, s := range quietLogging {
		q := "SET " + s
		if !on {
			q = "RESET " + strings.Fields(s)[0]
		}
		if _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42704" { // undefined_object: not in this major
				continue
			}
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// execFile runs text as one simple-protocol query and returns how many
// of its statements completed: on an error, the failing one is the next.
func execFile(ctx context.Context, c *pgconn.PgConn, text string) (int, error) {
	mrr := c.Exec(ctx, text)
	done := 0
	for mrr.NextResult() {
		if _, err := mrr.ResultReader().Close(); err != nil {
			_ = mrr.Close()
			return done, err
		}
		done++
	}
	return done, mrr.Close()
}

// sqlFileError reports a file's failure: the file, the database, the
// statement (counted from 1) and, when PostgreSQL says where, the line
// and column in the file. PostgreSQL's message may quote the file (a
// value, a name), so a Secret's failure keeps only the SQLSTATE.
func sqlFileError(file, dbname string, secret bool, text string, done int, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		if secret {
			return fmt.Errorf("%s in database %s: statement %d: %s", file, dbname, done+1, errorClass(err))
		}
		return fmt.Errorf("%s in database %s: statement %d: %w", file, dbname, done+1, err)
	}
	where := fmt.Sprintf("statement %d", done+1)
	if line, col, ok := lineCol(text, int(pe.Position)); ok {
		where += fmt.Sprintf(", line %d, column %d", line, col)
	}
	if secret {
		return fmt.Errorf("%s in database %s: %s: %s (SQLSTATE %s; PostgreSQL's message is left out, the file being a Secret's)", file, dbname, where, pe.Severity, pe.Code)
	}
	return fmt.Errorf("%s in database %s: %s: %s: %s (SQLSTATE %s)", file, dbname, where, pe.Severity, pe.Message, pe.Code)
}

// errorClass says what kind of failure err is without its text (a
// connection's error never quotes the query, but say no more than
// needed).
func errorClass(err error) string {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return "the connection failed"
	default:
		return fmt.Sprintf("failed (%T)", err)
	}
}

// lineCol turns PostgreSQL's error position (1-based, in characters)
// into a line and column of text (both 1-based); false without one.
func lineCol(text string, pos int) (int, int, bool) {
	if pos <= 0 {
		return 0, 0, false
	}
	line, col, n := 1, 1, 1
	for _, r := range text {
		if n == pos {
			return line, col, true
		}
		n++
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	if n == pos { // at the end (an incomplete statement)
		return line, col, true
	}
	return 0, 0, false
}
