// Package dbroles decides what the primary's instance manager runs to make
// PostgreSQL's roles match spec.managed.roles (podcontract.ManagedRoles):
// a pure function of the wanted roles, the roles observed in pg_authid and
// the passwords read from their Secrets. No I/O, no clock; randomness (the
// SCRAM salt) comes through the Verifier the caller passes. The manager
// (internal/instance, roles.go) reads the catalog, calls Plan, runs the
// statements and reports the outcome per role.
//
// Roles the spec does not list are never touched. A role to drop that owns
// objects is not dropped by force: DROP ROLE fails and the failure is
// reported, as CloudNativePG does; pgsync never reassigns or drops the
// objects itself.
//
// It imports pgx only for identifier quoting.
package dbroles

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Observed is one role as pg_authid holds it.
type Observed struct {
	Name                                                                    string
	Superuser, Inherit, CreateRole, CreateDB, Login, Replication, BypassRLS bool
	ConnectionLimit                                                         int
	// ValidUntil: nil is NULL (never expires); Infinity is 'infinity'.
	ValidUntil *time.Time
	Infinity   bool
	// Password is rolpassword (a SCRAM or MD5 verifier); nil is NULL.
	Password *string
	Comment  string
	// Memberships maps each role this one is a member of to the roles
	// that granted the membership (PostgreSQL 16 records each grantor).
	Memberships map[string][]string
}

// Want is one wanted role and, when its entry names a Secret, the
// password read from it (HasPassword).
type Want struct {
	pc.ManagedRole
	Password    string
	HasPassword bool
}

// Kind is what a statement does, for logs and tests.
type Kind string

// Kinds of Statement.
const (
	Create   Kind = "create"
	Alter    Kind = "alter"
	Password Kind = "password"
	Comment  Kind = "comment"
	Grant    Kind = "grant"
	Revoke   Kind = "revoke"
	Drop     Kind = "drop"
)

// Statement is one SQL statement for one role.
type Statement struct {
	Role string
	Kind Kind
	// What describes the change for logs (never a password or verifier).
	What string
	SQL  string
	// Secret: SQL carries a password verifier; run it with statement
	// logging off and never log or report its text.
	Secret bool
}

// Verifier turns a cleartext password into the SCRAM-SHA-256 verifier
// stored for it (a fresh salt each call); Matches says whether a stored
// verifier is that of password (rolname: MD5's salt).
type Verifier interface {
	New(password string) (string, error)
	Matches(password, stored, rolname string) bool
}

// Options of Plan.
type Options struct {
	// Major is the server's major version: 16 and later record a grantor
	// per membership, which a REVOKE must name.
	Major int
}

// Plan returns the statements that make observed (by name) match want, in
// want's order, each role's statements together. A role's statements
// after its first failure are skipped by the caller.
func Plan(want []Want, observed map[string]Observed, v Verifier, opts Options) ([]Statement, error) {
	var out []Statement
	for _, w := range want {
		o, exists := observed[w.Name]
		if w.Absent {
			if exists {
				out = append(out, Statement{Role: w.Name, Kind: Drop, What: "drop (ensure: absent)", SQL: "DROP ROLE " + ident(w.Name)})
			}
			continue
		}
		stmts, err := planPresent(w, o, exists, v, opts)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", w.Name, err)
		}
		out = append(out, stmts...)
	}
	return out, nil
}

func planPresent(w Want, o Observed, exists bool, v Verifier, opts Options) ([]Statement, error) {
	var out []Statement
	add := func(k Kind, what, sql string, secret bool) {
		out = append(out, Statement{Role: w.Name, Kind: k, What: what, SQL: sql, Secret: secret})
	}
	flags := []struct {
		on, off string
		want    bool
		have    bool
	}{
		{"SUPERUSER", "NOSUPERUSER", w.Superuser, o.Superuser},
		{"CREATEDB", "NOCREATEDB", w.CreateDB, o.CreateDB},
		{"CREATEROLE", "NOCREATEROLE", w.CreateRole, o.CreateRole},
		{"INHERIT", "NOINHERIT", w.Inherit, o.Inherit},
		{"LOGIN", "NOLOGIN", w.Login, o.Login},
		{"REPLICATION", "NOREPLICATION", w.Replication, o.Replication},
		{"BYPASSRLS", "NOBYPASSRLS", w.BypassRLS, o.BypassRLS},
	}
	var validUntil *time.Time
	if w.ValidUntil != "" {
		t, err := time.Parse(time.RFC3339, w.ValidUntil)
		if err != nil {
			return nil, fmt.Errorf("validUntil %q: %w", w.ValidUntil, err)
		}
		validUntil = &t
	}
	if !exists {
		var attrs []string
		for _, f := range flags {
			if f.want {
				attrs = append(attrs, f.on)
			} else {
				attrs = append(attrs, f.off)
			}
		}
		attrs = append(attrs, "CONNECTION LIMIT "+strconv.Itoa(w.ConnectionLimit))
		if validUntil != nil {
			attrs = append(attrs, "VALID UNTIL "+literal(validUntil.UTC().Format(time.RFC3339Nano)))
		}
		secret := false
		switch {
		case w.HasPassword:
			stored, err := storedForm(w.Password, v)
			if err != nil {
				return nil, err
			}
			attrs = append(attrs, "PASSWORD "+literal(stored))
			secret = true
		case w.DisablePassword:
			attrs = append(attrs, "PASSWORD NULL")
		}
		add(Create, "create", "CREATE ROLE "+ident(w.Name)+" WITH "+strings.Join(attrs, " "), secret)
		if w.Comment != "" {
			add(Comment, "comment", "COMMENT ON ROLE "+ident(w.Name)+" IS "+literal(w.Comment), false)
		}
		for _, g := range w.InRoles {
			add(Grant, "member of "+g, "GRANT "+ident(g)+" TO "+ident(w.Name), false)
		}
		return out, nil
	}

	var attrs, what []string
	for _, f := range flags {
		if f.want != f.have {
			if f.want {
				attrs = append(attrs, f.on)
			} else {
				attrs = append(attrs, f.off)
			}
			what = append(what, strings.ToLower(attrs[len(attrs)-1]))
		}
	}
	if w.ConnectionLimit != o.ConnectionLimit {
		attrs = append(attrs, "CONNECTION LIMIT "+strconv.Itoa(w.ConnectionLimit))
		what = append(what, fmt.Sprintf("connection limit %d → %d", o.ConnectionLimit, w.ConnectionLimit))
	}
	switch {
	case validUntil != nil && (o.ValidUntil == nil || o.Infinity || !o.ValidUntil.Equal(*validUntil)):
		attrs = append(attrs, "VALID UNTIL "+literal(validUntil.UTC().Format(time.RFC3339Nano)))
		what = append(what, "valid until "+w.ValidUntil)
	case validUntil == nil && o.ValidUntil != nil && !o.Infinity:
		// ALTER ROLE cannot set NULL back: 'infinity' is the same to
		// PostgreSQL (CloudNativePG does the same).
		attrs = append(attrs, "VALID UNTIL 'infinity'")
		what = append(what, "valid until infinity")
	}
	if len(attrs) > 0 {
		add(Alter, strings.Join(what, ", "), "ALTER ROLE "+ident(w.Name)+" WITH "+strings.Join(attrs, " "), false)
	}
	switch {
	case w.HasPassword && !passwordMatches(w, o, v):
		stored, err := storedForm(w.Password, v)
		if err != nil {
			return nil, err
		}
		add(Password, "password from its Secret", "ALTER ROLE "+ident(w.Name)+" WITH PASSWORD "+literal(stored), true)
	case w.DisablePassword && o.Password != nil:
		add(Password, "password disabled (NULL)", "ALTER ROLE "+ident(w.Name)+" WITH PASSWORD NULL", false)
	}
	if w.Comment != o.Comment {
		c := "NULL"
		if w.Comment != "" {
			c = literal(w.Comment)
		}
		add(Comment, "comment", "COMMENT ON ROLE "+ident(w.Name)+" IS "+c, false)
	}
	for _, g := range w.InRoles {
		if _, ok := o.Memberships[g]; !ok {
			add(Grant, "member of "+g, "GRANT "+ident(g)+" TO "+ident(w.Name), false)
		}
	}
	var gone []string
	for g := range o.Memberships {
		if !slices.Contains(w.InRoles, g) {
			gone = append(gone, g)
		}
	}
	slices.Sort(gone)
	for _, g := range gone {
		grantors := o.Memberships[g]
		if opts.Major < 16 || len(grantors) == 0 {
			add(Revoke, "no longer member of "+g, "REVOKE "+ident(g)+" FROM "+ident(w.Name), false)
			continue
		}
		for _, by := range grantors {
			add(Revoke, "no longer member of "+g, "REVOKE "+ident(g)+" FROM "+ident(w.Name)+" GRANTED BY "+ident(by), false)
		}
	}
	return out, nil
}

// passwordMatches: the stored verifier is what the Secret's password
// makes (a verifier given as the password is compared as it is).
func passwordMatches(w Want, o Observed, v Verifier) bool {
	if o.Password == nil {
		return false
	}
	if isVerifier(w.Password) {
		return *o.Password == w.Password
	}
	return v.Matches(w.Password, *o.Password, w.Name)
}

// storedForm is what goes into PASSWORD '…': a verifier given as the
// password as it is (CloudNativePG's pre-hashed passwords), any other
// password as a new SCRAM verifier, so that no cleartext password reaches
// SQL, the server's log or pg_stat_statements.
func storedForm(password string, v Verifier) (string, error) {
	if isVerifier(password) {
		return password, nil
	}
	return v.New(password)
}

var (
	scramForm = regexp.MustCompile(`^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$`)
	md5Form   = regexp.MustCompile(`^md5[0-9a-f]{32}$`)
)

// isVerifier: the password is already in PostgreSQL's stored form.
func isVerifier(p string) bool { return scramForm.MatchString(p) || md5Form.MatchString(p) }

// MD5Matches says whether stored is PostgreSQL's MD5 verifier of password
// for rolname ("md5" + md5(password + rolname)).
func MD5Matches(password, stored, rolname string) bool {
	sum := md5.Sum([]byte(password + rolname))
	return stored == "md5"+hex.EncodeToString(sum[:])
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// literal quotes s as an escape string constant (E'…'), which means the
// same whatever standard_conforming_strings says. Names and comments are
// free of NUL (internal/cluster refuses them).
func literal(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
