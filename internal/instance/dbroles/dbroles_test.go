package dbroles

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// fakeVerifier stands for SCRAM: "V(password)" is the verifier of password.
type fakeVerifier struct{}

func (fakeVerifier) New(p string) (string, error) { return "V(" + p + ")", nil }
func (fakeVerifier) Matches(p, stored, _ string) bool {
	return stored == "V("+p+")"
}

func present(name string, f func(r *pc.ManagedRole)) Want {
	r := pc.ManagedRole{Name: name, Inherit: true, ConnectionLimit: -1}
	if f != nil {
		f(&r)
	}
	return Want{ManagedRole: r}
}

func withPassword(w Want, p string) Want { w.Password, w.HasPassword = p, true; return w }

// matching is the observed role that present(name, nil) wants.
func matching(name string) Observed {
	return Observed{Name: name, Inherit: true, ConnectionLimit: -1}
}

func str(s string) *string { return &s }

// TestPlan: which statements each difference makes, per role, in order;
// a role that matches makes none.
func TestPlan(t *testing.T) {
	when := time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC)
	other := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		want     []Want
		observed []Observed
		major    int
		// statements as "role kind: what".
		plan []string
	}{
		{"nothing wanted", nil, []Observed{matching("stranger")}, 15, nil},
		{"matches", []Want{present("dante", nil)}, []Observed{matching("dante")}, 15, nil},
		{"created with all of it", []Want{withPassword(present("dante", func(r *pc.ManagedRole) {
			r.Login, r.CreateDB, r.Comment, r.InRoles, r.ValidUntil, r.ConnectionLimit = true, true, "poet", []string{"pg_monitor", "poets"}, "2030-01-31T12:00:00Z", 3
		}), "pw")}, nil, 15, []string{"dante create: create", "dante comment: comment", "dante grant: member of pg_monitor", "dante grant: member of poets"}},
		{"attributes altered", []Want{present("dante", func(r *pc.ManagedRole) {
			r.Login, r.Inherit, r.ConnectionLimit, r.Superuser = true, false, 10, true
		})}, []Observed{matching("dante")}, 15, []string{"dante alter: superuser, noinherit, login, connection limit -1 → 10"}},
		{"valid until set", []Want{present("dante", func(r *pc.ManagedRole) { r.ValidUntil = "2030-01-31T13:00:00+01:00" })},
			[]Observed{func() Observed { o := matching("dante"); o.ValidUntil = &other; return o }()}, 15,
			[]string{"dante alter: valid until 2030-01-31T13:00:00+01:00"}},
		{"valid until the same instant", []Want{present("dante", func(r *pc.ManagedRole) { r.ValidUntil = "2030-01-31T13:00:00+01:00" })},
			[]Observed{func() Observed { o := matching("dante"); o.ValidUntil = &when; return o }()}, 15, nil},
		{"valid until removed: infinity", []Want{present("dante", nil)},
			[]Observed{func() Observed { o := matching("dante"); o.ValidUntil = &when; return o }()}, 15,
			[]string{"dante alter: valid until infinity"}},
		{"valid until infinity already", []Want{present("dante", nil)},
			[]Observed{func() Observed { o := matching("dante"); o.ValidUntil, o.Infinity = &when, true; return o }()}, 15, nil},
		{"password the same", []Want{withPassword(present("dante", nil), "pw")},
			[]Observed{func() Observed { o := matching("dante"); o.Password = str("V(pw)"); return o }()}, 15, nil},
		{"password changed", []Want{withPassword(present("dante", nil), "new")},
			[]Observed{func() Observed { o := matching("dante"); o.Password = str("V(pw)"); return o }()}, 15,
			[]string{"dante password: password from its Secret"}},
		{"password set where there was none", []Want{withPassword(present("dante", nil), "pw")}, []Observed{matching("dante")}, 15,
			[]string{"dante password: password from its Secret"}},
		{"no Secret: password left alone", []Want{present("dante", nil)},
			[]Observed{func() Observed { o := matching("dante"); o.Password = str("V(pw)"); return o }()}, 15, nil},
		{"password disabled", []Want{present("dante", func(r *pc.ManagedRole) { r.DisablePassword = true })},
			[]Observed{func() Observed { o := matching("dante"); o.Password = str("V(pw)"); return o }()}, 15,
			[]string{"dante password: password disabled (NULL)"}},
		{"password disabled already", []Want{present("dante", func(r *pc.ManagedRole) { r.DisablePassword = true })},
			[]Observed{matching("dante")}, 15, nil},
		{"pre-hashed password compared as it is", []Want{withPassword(present("dante", nil), "md5"+strings.Repeat("a", 32))},
			[]Observed{func() Observed { o := matching("dante"); o.Password = str("md5" + strings.Repeat("a", 32)); return o }()}, 15, nil},
		{"comment changed and removed", []Want{present("dante", func(r *pc.ManagedRole) { r.Comment = "b" }), present("beatrice", nil)},
			[]Observed{func() Observed { o := matching("dante"); o.Comment = "a"; return o }(), func() Observed { o := matching("beatrice"); o.Comment = "x"; return o }()}, 15,
			[]string{"dante comment: comment", "beatrice comment: comment"}},
		{"memberships granted and revoked", []Want{present("dante", func(r *pc.ManagedRole) { r.InRoles = []string{"a", "b"} })},
			[]Observed{func() Observed {
				o := matching("dante")
				o.Memberships = map[string][]string{"b": {"postgres"}, "d": {"postgres"}, "c": {"postgres"}}
				return o
			}()}, 15, []string{"dante grant: member of a", "dante revoke: no longer member of c", "dante revoke: no longer member of d"}},
		{"revoked from every grantor on 16", []Want{present("dante", nil)},
			[]Observed{func() Observed {
				o := matching("dante")
				o.Memberships = map[string][]string{"c": {"alice", "postgres"}}
				return o
			}()}, 16,
			[]string{"dante revoke: no longer member of c", "dante revoke: no longer member of c"}},
		{"dropped", []Want{{ManagedRole: pc.ManagedRole{Name: "dante", Absent: true}}}, []Observed{matching("dante")}, 15, []string{"dante drop: drop (ensure: absent)"}},
		{"absent already", []Want{{ManagedRole: pc.ManagedRole{Name: "dante", Absent: true}}}, nil, 15, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := map[string]Observed{}
			for _, o := range tc.observed {
				obs[o.Name] = o
			}
			stmts, err := Plan(tc.want, obs, fakeVerifier{}, Options{Major: tc.major})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range stmts {
				got = append(got, s.Role+" "+string(s.Kind)+": "+s.What)
				if s.Secret != strings.Contains(s.SQL, "PASSWORD E'") {
					t.Errorf("%s: Secret %v for %s", s.Role, s.Secret, s.Kind)
				}
			}
			if !cmp.Equal(got, tc.plan) {
				t.Errorf("plan\n got %q\nwant %q", got, tc.plan)
			}
		})
	}
}

// TestQuoting: names and comments that need quoting stay one identifier
// or literal; a cleartext password never reaches the SQL, a verifier
// given as the password does, as it is.
func TestQuoting(t *testing.T) {
	w := withPassword(present(`we"ird ro'le`, func(r *pc.ManagedRole) {
		r.Comment = `it's a \ back'slash`
		r.InRoles = []string{`gr"oup`}
	}), "cleartext")
	stmts, err := Plan([]Want{w}, nil, fakeVerifier{}, Options{Major: 15})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`CREATE ROLE "we""ird ro'le" WITH NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOLOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 PASSWORD E'V(cleartext)'`,
		`COMMENT ON ROLE "we""ird ro'le" IS E'it''s a \\ back''slash'`,
		`GRANT "gr""oup" TO "we""ird ro'le"`,
	}
	var got []string
	for _, s := range stmts {
		got = append(got, s.SQL)
		if strings.Contains(s.SQL, "cleartext'") || strings.Contains(s.What, "cleartext") {
			t.Errorf("the cleartext password is in %q / %q", s.SQL, s.What)
		}
	}
	if !cmp.Equal(got, want) {
		t.Errorf("SQL\n got %q\nwant %q", got, want)
	}
	scram := "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
	stmts, _ = Plan([]Want{withPassword(present("x", nil), scram)}, nil, fakeVerifier{}, Options{})
	if !strings.Contains(stmts[0].SQL, "PASSWORD E'"+scram+"'") {
		t.Errorf("a SCRAM verifier given as the password: %s", stmts[0].SQL)
	}
}

// TestMD5Matches: PostgreSQL's MD5 verifier, md5(password || rolname).
func TestMD5Matches(t *testing.T) {
	stored := "md54a0a68b43b6cd5cf266fa02f196e2371" // md5("secret" || "alice")
	if !MD5Matches("secret", stored, "alice") || MD5Matches("secret", stored, "bob") || MD5Matches("Secret", stored, "alice") {
		t.Error("MD5Matches does not compute md5(password || rolname)")
	}
}
