package instance_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeletvol"
)

// rolesVolume writes one version of the params ConfigMap volume with
// roles as its roles key (nil: no roles key).
func rolesVolume(t *testing.T, c *insttest.Cluster, revision string, roles []pc.ManagedRole) {
	t.Helper()
	if fi, err := os.Lstat(c.ParametersFile); err == nil && fi.Mode().IsRegular() {
		if err := os.Remove(c.ParametersFile); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string][]byte{filepath.Base(c.ParametersFile): []byte(`{"max_connections": "50"}`),
		pc.ConfigRevisionKey: []byte(revision), pc.HBAKey: []byte(`[]`)}
	if roles != nil {
		raw, err := json.Marshal(pc.ManagedRoles{Roles: roles})
		if err != nil {
			t.Fatal(err)
		}
		files[pc.RolesKey] = raw
	}
	if err := kubeletvol.Write(filepath.Dir(c.ParametersFile), files, 0o444, kubeletvol.Owner{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

// roleSecret writes a managed role's password Secret as the kubelet
// projects it into the pod (dir/NAME/username, dir/NAME/password, one
// atomic update, as the kubelet rewrites a changed Secret).
func roleSecret(t *testing.T, dir, name, user, password string) {
	t.Helper()
	files := map[string][]byte{pc.RoleUsernameFile: []byte(user), pc.RolePasswordFile: []byte(password)}
	if err := kubeletvol.Write(filepath.Join(dir, name), files, 0o444, kubeletvol.Owner{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

// waitRoles waits until instance i's last reconciliation of the managed
// roles satisfies ok, and returns it.
func waitRoles(t *testing.T, c *insttest.Cluster, i int, what string, ok func(pc.ManagedRolesStatus) bool) pc.ManagedRolesStatus {
	t.Helper()
	s := c.WaitStatus(i, stepTimeout, what, func(s instance.Status) bool { return s.ManagedRoles != nil && ok(*s.ManagedRoles) })
	return *s.ManagedRoles
}

func reconciled(names ...string) func(pc.ManagedRolesStatus) bool {
	return func(s pc.ManagedRolesStatus) bool {
		for _, n := range names {
			if !slices.Contains(s.Reconciled, n) {
				return false
			}
		}
		return true
	}
}

// dbRole is a role as the test reads it back.
type dbRole struct {
	Login, CreateDB, Superuser, Inherit bool
	ConnLimit                           int
	ValidUntil                          string
	Comment                             string
	Members                             []string
	Password                            string
}

func readRole(t *testing.T, conn *pgx.Conn, name string) (dbRole, bool) {
	t.Helper()
	var r dbRole
	err := conn.QueryRow(context.Background(), `SELECT rolcanlogin, rolcreatedb, rolsuper, rolinherit, rolconnlimit,
  coalesce(rolvaliduntil::text, ''), coalesce(shobj_description(oid, 'pg_authid'), ''),
  coalesce((SELECT array_agg(g.rolname::text ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid), '{}'),
  coalesce(rolpassword, '')
FROM pg_authid a WHERE rolname = $1`, name).Scan(&r.Login, &r.CreateDB, &r.Superuser, &r.Inherit, &r.ConnLimit, &r.ValidUntil, &r.Comment, &r.Members, &r.Password)
	if err == pgx.ErrNoRows {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// TestManagedRoles: the primary's manager creates, alters and drops the
// managed roles of the ConfigMap's roles key (attributes, memberships,
// comments, passwords from basic-auth Secrets as the pod projects them),
// reports what it cannot do (a membership in a missing role, a role to
// drop that owns a table) in /status and as Events, applies a changed
// password, leaves unlisted roles alone, never logs a password, and after
// a switchover the new primary carries on.
func TestManagedRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "rl", 2)
	ctx := context.Background()
	const pw1, pw2 = "first-Pa55word-of-dante", "second-Pa55word-of-dante"
	// The projected password Secrets (internal/kube's mountRoleSecrets),
	// shared by both instances like a Secret mounted in each pod.
	secretsDir := filepath.Join(c.Dir, "role-secrets")
	roleSecret(t, secretsDir, "rl-dante", "dante", pw1)
	roleSecret(t, secretsDir, "rl-wrong", "someone-else", "x")
	c.Env = append(c.Env, pc.EnvRoleSecretsDir+"="+secretsDir)

	poets := pc.ManagedRole{Name: "poets", Inherit: true, ConnectionLimit: -1}
	dante := pc.ManagedRole{Name: "dante", Comment: "Dante Alighieri", Login: true, CreateDB: true, Inherit: true,
		ConnectionLimit: 5, ValidUntil: "2053-11-13T00:00:00Z", InRoles: []string{"pg_monitor", "poets"}, PasswordSecret: "rl-dante"}
	ghost := pc.ManagedRole{Name: "virgil", Login: true, Inherit: true, ConnectionLimit: -1, InRoles: []string{"shades"}}
	wrong := pc.ManagedRole{Name: "statius", Login: true, Inherit: true, ConnectionLimit: -1, PasswordSecret: "rl-wrong"}
	rolesVolume(t, c, "r1", []pc.ManagedRole{poets, dante, ghost, wrong})

	var conn *pgx.Conn
	logins := func(i int, password string) error {
		return ping(ctx, c.InstanceDSN(i, "dante", password, "postgres"))
	}
	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"created with attributes, memberships, comment and the Secret's password", func(t *testing.T) {
			c.Start(0)
			c.WaitStatus(0, bootTimeout, "primary", isPrimary)
			c.Start(1)
			c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
			st := waitRoles(t, c, 0, "dante and poets reconciled, virgil and statius failed", func(s pc.ManagedRolesStatus) bool {
				return reconciled("poets", "dante")(s) && s.Failed["virgil"] != "" && s.Failed["statius"] != ""
			})
			if !strings.Contains(st.Failed["virgil"], `role "shades" does not exist`) {
				t.Errorf("virgil's failure: %q", st.Failed["virgil"])
			}
			if !strings.Contains(st.Failed["statius"], `is for user "someone-else", not role "statius"`) {
				t.Errorf("statius's failure: %q", st.Failed["statius"])
			}
			if ev := waitEvent(t, c, c.Instances[0].Name, pc.EventRoleFailed); !strings.Contains(ev, "managed role") {
				t.Errorf("event: %s", ev)
			}
			var err error
			conn, err = pgx.Connect(ctx, c.InstanceDSN(0, "postgres", insttest.SuperuserPassword, "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			r, ok := readRole(t, conn, "dante")
			if !ok || !r.Login || !r.CreateDB || r.Superuser || !r.Inherit || r.ConnLimit != 5 || !strings.HasPrefix(r.ValidUntil, "2053-11-13") ||
				r.Comment != "Dante Alighieri" || !slices.Equal(r.Members, []string{"pg_monitor", "poets"}) || !strings.HasPrefix(r.Password, "SCRAM-SHA-256$4096:") {
				t.Errorf("dante = %+v (exists %v)", r, ok)
			}
			if r, ok := readRole(t, conn, "virgil"); !ok || !r.Login || len(r.Members) != 0 {
				t.Errorf("virgil (created, its membership failed) = %+v (exists %v)", r, ok)
			}
			if err := logins(0, pw1); err != nil {
				t.Errorf("dante cannot log in with the Secret's password: %v", err)
			}
			if _, err := conn.Exec(ctx, `CREATE ROLE beatrice LOGIN; CREATE ROLE laura LOGIN; CREATE TABLE canzoniere (v int); ALTER TABLE canzoniere OWNER TO laura; CREATE ROLE stranger LOGIN CONNECTION LIMIT 2`); err != nil {
				t.Fatal(err)
			}
		}},
		{"idempotent: a pass with nothing to change changes nothing", func(t *testing.T) {
			before := c.WaitStatus(0, stepTimeout, "roles", func(s instance.Status) bool { return s.ManagedRoles != nil })
			changes := strings.Count(c.LogTail(0, 100000), "managed role changed")
			waitRoles(t, c, 0, "another pass", func(s pc.ManagedRolesStatus) bool { return s.At.After(before.ManagedRoles.At) })
			if after := strings.Count(c.LogTail(0, 100000), "managed role changed"); after != changes {
				t.Errorf("a pass over reconciled roles changed something: %d → %d changes logged", changes, after)
			}
		}},
		{"altered, memberships revoked, dropped; a role owning a table is not", func(t *testing.T) {
			d := dante
			d.CreateDB, d.ConnectionLimit, d.ValidUntil, d.InRoles, d.Comment, d.Inherit = false, -1, "", []string{"poets"}, "Durante di Alighiero", false
			rolesVolume(t, c, "r2", []pc.ManagedRole{poets, d, {Name: "beatrice", Absent: true}, {Name: "laura", Absent: true}})
			st := waitRoles(t, c, 0, "dante altered, beatrice dropped, laura failed", func(s pc.ManagedRolesStatus) bool {
				return reconciled("poets", "dante", "beatrice")(s) && s.Failed["laura"] != "" && s.Failed["virgil"] == "" && len(s.Failed) == 1
			})
			if f := st.Failed["laura"]; !strings.Contains(f, "owner of table canzoniere") || !strings.Contains(f, "REASSIGN OWNED BY") {
				t.Errorf("laura's failure: %q", f)
			}
			r, _ := readRole(t, conn, "dante")
			if r.CreateDB || r.Inherit || r.ConnLimit != -1 || r.ValidUntil != "infinity" || r.Comment != "Durante di Alighiero" || !slices.Equal(r.Members, []string{"poets"}) {
				t.Errorf("dante = %+v", r)
			}
			if _, ok := readRole(t, conn, "beatrice"); ok {
				t.Error("beatrice (ensure: absent) still exists")
			}
			if _, ok := readRole(t, conn, "laura"); !ok {
				t.Error("laura, who owns a table, was dropped")
			}
			var owner string
			if err := conn.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 'canzoniere'`).Scan(&owner); err != nil || owner != "laura" {
				t.Errorf("canzoniere's owner = %q (%v): pgsync must not reassign it", owner, err)
			}
			// No longer listed: left as they are.
			if r, ok := readRole(t, conn, "virgil"); !ok || !r.Login {
				t.Errorf("virgil, no longer listed, was changed: %+v (exists %v)", r, ok)
			}
			if r, ok := readRole(t, conn, "stranger"); !ok || r.ConnLimit != 2 {
				t.Errorf("a role never listed was changed: %+v (exists %v)", r, ok)
			}
			if err := logins(0, pw1); err != nil {
				t.Errorf("dante's password changed with its attributes: %v", err)
			}
		}},
		{"a changed Secret changes the password", func(t *testing.T) {
			roleSecret(t, secretsDir, "rl-dante", "dante", pw2)
			deadline := time.Now().Add(stepTimeout)
			for logins(0, pw2) != nil {
				if time.Now().After(deadline) {
					t.Fatal("the new password never worked")
				}
				time.Sleep(500 * time.Millisecond)
			}
			if err := logins(0, pw1); err == nil {
				t.Error("the old password still works")
			}
		}},
		{"after a switchover the new primary reconciles", func(t *testing.T) {
			if err := c.SetTarget(ctx, c.Instances[1].Name); err != nil {
				t.Fatal(err)
			}
			c.WaitStatus(1, stepTimeout, "primary", isPrimary)
			conn.Close(ctx)
			// The laura entry gone: nothing left failed; a new role.
			rolesVolume(t, c, "r3", []pc.ManagedRole{poets, {Name: "cavalcanti", Login: true, Inherit: true, ConnectionLimit: -1, InRoles: []string{"poets"}}})
			waitRoles(t, c, 1, "cavalcanti reconciled on the new primary", func(s pc.ManagedRolesStatus) bool {
				return reconciled("poets", "cavalcanti")(s) && len(s.Failed) == 0
			})
			var err error
			conn, err = pgx.Connect(ctx, c.InstanceDSN(1, "postgres", insttest.SuperuserPassword, "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if r, ok := readRole(t, conn, "cavalcanti"); !ok || !r.Login || !slices.Equal(r.Members, []string{"poets"}) {
				t.Errorf("cavalcanti = %+v (exists %v)", r, ok)
			}
			if err := logins(1, pw2); err != nil {
				t.Errorf("dante's password did not survive the switchover: %v", err)
			}
			c.WaitStatus(0, stepTimeout, "the old primary, now a standby, reports no roles", func(s instance.Status) bool {
				return s.Role == "standby" && s.ManagedRoles == nil
			})
		}},
		{"no password in the logs or /status", func(t *testing.T) {
			for i := range c.Instances {
				log := c.LogTail(i, 1000000)
				s, _ := c.Status(i)
				raw, _ := json.Marshal(s)
				for _, pw := range []string{pw1, pw2} {
					if strings.Contains(log, pw) || strings.Contains(string(raw), pw) {
						t.Errorf("%s: a password of dante's is in the log or /status", c.Instances[i].Name)
					}
				}
				if strings.Contains(log, "SCRAM-SHA-256$") {
					t.Errorf("%s: a verifier is in the log", c.Instances[i].Name)
				}
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.Logf("rl-0 log:\n%s", c.LogTail(0, 60))
			t.Logf("rl-1 log:\n%s", c.LogTail(1, 60))
			return
		}
	}
}
