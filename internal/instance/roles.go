package instance

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/instance/dbroles"
	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// rolesInterval is how often the primary compares the managed roles with
// the database and their Secrets: a changed password is applied within
// it. A new version of the roles key is acted on at once.
const rolesInterval = 10 * time.Second

// secretSource reads the password of a managed role from its Secret (a
// basic-auth Secret whose username is the role), as projected into the
// pod (internal/kube): the manager reads no Secret through the API.
type secretSource interface {
	Password(ctx context.Context, secret, rolname string) (string, error)
}

// rolesState is the primary's managed roles, as last reconciled (only the
// loop touches it).
type rolesState struct {
	raw      string    // the roles key last acted on
	next     time.Time // the next periodic check
	nextRead time.Time // the next look at the roles key
	failed   map[string]string
}

// rolesFile is the roles key of the params ConfigMap volume, next to the
// parameters file ("" without one).
func (c *Config) rolesFile() string {
	if c.ParametersFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(c.ParametersFile), pc.RolesKey)
}

// alignRoles reconciles spec.managed.roles on the primary: once per
// rolesInterval and whenever the roles key changes. Only on the Lease
// holder that accepts writes, so a new primary (after a switchover or a
// failover) does it on its first iterations. Problems are the roles'
// (status, Events), not the loop's: they never delay a renewal beyond
// the bounded time it takes.
func (m *Manager) alignRoles(ctx context.Context, in role.Input) {
	if in.Lease.Holder != m.cfg.Instance || !in.Local.Accepting || in.Local.InRecovery {
		if m.roles.raw != "" || m.roles.failed != nil {
			// No longer the primary: its last pass is not the cluster's
			// state, and were it primary again it starts afresh.
			m.roles = rolesState{}
			m.status.update(func(s *Status) { s.ManagedRoles = nil })
		}
		return
	}
	path := m.cfg.rolesFile()
	if path == "" || m.now().Before(m.roles.nextRead) {
		return
	}
	m.roles.nextRead = m.now().Add(time.Second)
	data, err := readTogether(path)
	if err != nil {
		m.log.Warn("read managed roles", "error", err.Error())
		return
	}
	raw := string(data[0].b)
	if raw == m.roles.raw && m.now().Before(m.roles.next) {
		return
	}
	if !data[0].ok && m.roles.raw == "" {
		return // no managed roles, and never had any
	}
	var want pc.ManagedRoles
	if data[0].ok {
		if err := json.Unmarshal(data[0].b, &want); err != nil {
			if raw != m.roles.raw {
				m.log.Error("managed roles not applied", "file", path, "error", err.Error())
			}
			m.roles.raw, m.roles.next = raw, m.now().Add(rolesInterval)
			return
		}
	}
	m.roles.raw, m.roles.next = raw, m.now().Add(rolesInterval)
	// Bounded well within the Lease: the loop renews after this.
	rctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseDuration/4)
	defer cancel()
	st := m.reconcileRoles(rctx, want.Roles)
	m.reportRoles(st)
}

// reconcileRoles reads the wanted roles' state and Secrets, plans and runs
// the statements; it returns the outcome per role.
func (m *Manager) reconcileRoles(ctx context.Context, roles []pc.ManagedRole) pc.ManagedRolesStatus {
	st := pc.ManagedRolesStatus{Reconciled: []string{}, Failed: map[string]string{}, At: m.now()}
	if len(roles) == 0 {
		return st
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	observed, major, err := m.db.managedRoles(ctx, names)
	if err != nil {
		for _, n := range names {
			st.Failed[n] = "cannot read the database's roles: " + err.Error()
		}
		return st
	}
	var want []dbroles.Want
	for _, r := range roles {
		w := dbroles.Want{ManagedRole: r}
		if r.PasswordSecret != "" && !r.Absent {
			if m.secrets == nil {
				st.Failed[r.Name] = "password Secret " + r.PasswordSecret + " is not mounted in this pod"
				continue
			}
			pw, err := m.secrets.Password(ctx, r.PasswordSecret, r.Name)
			if err != nil {
				st.Failed[r.Name] = err.Error()
				continue
			}
			w.Password, w.HasPassword = pw, true
		}
		want = append(want, w)
	}
	stmts, err := dbroles.Plan(want, observed, scramVerifierSource{}, dbroles.Options{Major: major})
	if err != nil {
		for _, w := range want {
			st.Failed[w.Name] = err.Error()
		}
		return st
	}
	for _, s := range stmts {
		if _, failed := st.Failed[s.Role]; failed {
			continue // the rest of a failed role waits for the next pass
		}
		if err := m.db.runRoleStatement(ctx, s); err != nil {
			st.Failed[s.Role] = roleError(s, err)
			continue
		}
		m.log.Info("managed role changed", "role", s.Role, "change", string(s.Kind), "what", s.What)
	}
	for _, w := range want {
		if _, failed := st.Failed[w.Name]; !failed {
			st.Reconciled = append(st.Reconciled, w.Name)
		}
	}
	return st
}

// roleError says why a statement failed, without the statement (it may
// carry a verifier): PostgreSQL's message and detail, and what to do for
// a role that owns objects.
func roleError(s dbroles.Statement, err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Sprintf("%s: %v", s.What, err)
	}
	msg := fmt.Sprintf("%s: %s", s.What, pgErr.Message)
	if pgErr.Detail != "" {
		msg += " (" + strings.ReplaceAll(pgErr.Detail, "\n", "; ") + ")"
	}
	if pgErr.Code == "2BP01" { // dependent_objects_still_exist
		msg += "; pgsync does not drop or reassign them: REASSIGN OWNED BY / DROP OWNED BY in each database, then it is dropped"
	}
	return msg
}

// reportRoles publishes the outcome in /status, logs and records an Event
// for each new problem, and one when a failed role is reconciled again.
func (m *Manager) reportRoles(st pc.ManagedRolesStatus) {
	m.status.update(func(s *Status) { s.ManagedRoles = &st })
	prev := m.roles.failed
	for _, name := range sortedNames(st.Failed) {
		msg := st.Failed[name]
		if prev[name] == msg {
			continue
		}
		m.log.Error("managed role not reconciled", "role", name, "error", msg)
		m.event(corev1.EventTypeWarning, pc.EventRoleFailed, fmt.Sprintf("managed role %s: %s", name, msg))
	}
	for name := range prev {
		if _, still := st.Failed[name]; !still && slices.Contains(st.Reconciled, name) {
			m.log.Info("managed role reconciled", "role", name)
			m.event(corev1.EventTypeNormal, pc.EventRoleReconciled, fmt.Sprintf("managed role %s reconciled", name))
		}
	}
	m.roles.failed = st.Failed
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// managedRolesSQL reads the roles named in $1 as pg_authid holds them
// (rolpassword is the stored verifier, never a password), their comments
// and memberships with each grantor.
const managedRolesSQL = `
SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
  r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil, r.rolpassword,
  coalesce(shobj_description(r.oid, 'pg_authid'), ''),
  coalesce((SELECT array_agg(g.rolname || '/' || coalesce(b.rolname, '') ORDER BY g.rolname, b.rolname)
    FROM pg_auth_members am JOIN pg_authid g ON g.oid = am.roleid LEFT JOIN pg_authid b ON b.oid = am.grantor
    WHERE am.member = r.oid), '{}'),
  current_setting('server_version_num')::int / 10000
FROM pg_authid r WHERE r.rolname = ANY($1)`

// managedRoles returns the named roles that exist, and the server's major.
func (d *localDB) managedRoles(ctx context.Context, names []string) (map[string]dbroles.Observed, int, error) {
	c, err := d.get(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := c.Query(ctx, managedRolesSQL, names)
	if err != nil {
		d.close()
		return nil, 0, err
	}
	defer rows.Close()
	out := map[string]dbroles.Observed{}
	major := 0
	for rows.Next() {
		var o dbroles.Observed
		var until pgtype.Timestamptz
		var members []string
		if err := rows.Scan(&o.Name, &o.Superuser, &o.Inherit, &o.CreateRole, &o.CreateDB, &o.Login, &o.Replication,
			&o.BypassRLS, &o.ConnectionLimit, &until, &o.Password, &o.Comment, &members, &major); err != nil {
			d.close()
			return nil, 0, err
		}
		if until.Valid {
			t := until.Time
			o.ValidUntil, o.Infinity = &t, until.InfinityModifier == pgtype.Infinity
		}
		o.Memberships = map[string][]string{}
		for _, m := range members {
			i := strings.LastIndex(m, "/")
			g, by := m[:i], m[i+1:]
			if by != "" {
				o.Memberships[g] = append(o.Memberships[g], by)
			} else if _, ok := o.Memberships[g]; !ok {
				o.Memberships[g] = nil
			}
		}
		out[o.Name] = o
	}
	if err := rows.Err(); err != nil {
		d.close()
		return nil, 0, err
	}
	return out, major, nil
}

// runRoleStatement runs one statement in a transaction of its own. One
// that carries a verifier runs with statement logging off, so that not
// even the verifier reaches the server's log, on success or error
// (CloudNativePG does the same).
func (d *localDB) runRoleStatement(ctx context.Context, s dbroles.Statement) error {
	c, err := d.get(ctx)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if s.Secret {
			if _, err := tx.Exec(ctx, `SET LOCAL log_statement = 'none'; SET LOCAL log_min_error_statement = 'panic'`, pgx.QueryExecModeSimpleProtocol); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, s.SQL, pgx.QueryExecModeSimpleProtocol)
		return err
	})
	var pgErr *pgconn.PgError
	if err != nil && !errors.As(err, &pgErr) {
		d.close() // not PostgreSQL's answer: the session may be gone
	}
	return err
}

// scramVerifierSource is dbroles.Verifier with PostgreSQL's SCRAM-SHA-256
// (and MD5, for a role whose password was stored that way).
type scramVerifierSource struct{}

func (scramVerifierSource) New(password string) (string, error) { return scramVerifier(password) }

// Matches recomputes stored's verifier from password with stored's own
// salt and iteration count.
func (scramVerifierSource) Matches(password, stored, rolname string) bool {
	if strings.HasPrefix(stored, "md5") {
		return dbroles.MD5Matches(password, stored, rolname)
	}
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	iterSalt, _, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterS, saltB64, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(iterS)
	if err != nil || iter < 1 {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		return false
	}
	again, err := scramVerifierWithSalt(password, salt, iter)
	return err == nil && hmac.Equal([]byte(again), []byte(stored))
}

// fileSecrets reads managed roles' password Secrets as the pod projects
// them (podcontract.RoleSecretsDir: NAME/username, NAME/password), never
// through the API. The kubelet rewrites the files when a Secret changes.
type fileSecrets struct{ dir string }

// Password returns the password of the Secret secret, whose username must
// be rolname. Errors name the Secret and the key, never a value but the
// username.
func (f fileSecrets) Password(_ context.Context, secret, rolname string) (string, error) {
	if f.dir == "" || secret == "" || strings.ContainsAny(secret, "/\x00") || secret == "." || secret == ".." {
		return "", fmt.Errorf("password Secret %s is not mounted in this pod: its pods restart to mount a newly named Secret", secret)
	}
	dir := filepath.Join(f.dir, secret)
	files, err := readTogether(filepath.Join(dir, pc.RoleUsernameFile), filepath.Join(dir, pc.RolePasswordFile))
	if err != nil {
		return "", fmt.Errorf("read password Secret %s: %w", secret, err)
	}
	user, pw := files[0], files[1]
	switch {
	case !user.ok && !pw.ok:
		return "", fmt.Errorf("password Secret %s is not in this pod: it does not exist (or has neither %s nor %s), or is newly named and its pods have not restarted yet", secret, pc.RoleUsernameFile, pc.RolePasswordFile)
	case !user.ok:
		return "", fmt.Errorf("password Secret %s has no %s key", secret, pc.RoleUsernameFile)
	case string(user.b) != rolname:
		return "", fmt.Errorf("password Secret %s is for user %q, not role %q", secret, user.b, rolname)
	case !pw.ok || len(pw.b) == 0:
		return "", fmt.Errorf("password Secret %s has no %s", secret, pc.RolePasswordFile)
	}
	return string(pw.b), nil
}
