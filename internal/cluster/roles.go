package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// ManagedConfiguration is CloudNativePG's spec.managed: the roles the
// primary's manager keeps, and the Services (services.go).
type ManagedConfiguration struct {
	Roles []RoleConfiguration `json:"roles"`
	// Services: omitted when unset, so the applied-spec annotation of a
	// cluster without it is what it was before pgsync read it.
	Services *ManagedServices `json:"services,omitempty"`
}

// RoleConfiguration is one entry of spec.managed.roles, CloudNativePG's
// RoleConfiguration: a PostgreSQL role the primary's instance manager
// creates, alters or drops to match (docs/instance-manager.md, "Managed
// roles"). Zero values are CREATE ROLE's defaults.
type RoleConfiguration struct {
	Name    string `json:"name"`
	Comment string `json:"comment"`
	// Ensure is "present" (default) or "absent" (the role is dropped).
	Ensure string `json:"ensure"`
	// PasswordSecret names a basic-auth Secret whose username is Name and
	// whose password becomes the role's; nil leaves the password as it is
	// (unless DisablePassword).
	PasswordSecret *LocalObjectReference `json:"passwordSecret"`
	// ConnectionLimit: nil is -1, no limit.
	ConnectionLimit *int `json:"connectionLimit"`
	// ValidUntil is an RFC 3339 time after which the password no longer
	// works; empty: never expires.
	ValidUntil string `json:"validUntil"`
	// InRoles are the roles this one is a member of, and no others.
	InRoles []string `json:"inRoles"`
	// Inherit: nil is true (PostgreSQL's default).
	Inherit         *bool `json:"inherit"`
	DisablePassword bool  `json:"disablePassword"`
	Superuser       bool  `json:"superuser"`
	CreateDB        bool  `json:"createdb"`
	CreateRole      bool  `json:"createrole"`
	Login           bool  `json:"login"`
	Replication     bool  `json:"replication"`
	BypassRLS       bool  `json:"bypassrls"`
}

// Values of RoleConfiguration.Ensure.
const (
	EnsurePresent = "present"
	EnsureAbsent  = "absent"
)

// Absent says the role is to be dropped.
func (r *RoleConfiguration) Absent() bool { return r.Ensure == EnsureAbsent }

// ManagedRoles returns spec.managed.roles (nil when there are none).
func (s *Spec) ManagedRoles() []RoleConfiguration {
	if s.Managed == nil {
		return nil
	}
	return s.Managed.Roles
}

// RolePasswordSecrets are the Secrets named by the managed roles'
// passwordSecret (roles ensured present only), sorted, each once: the
// Secrets the primary's manager reads.
func (s *Spec) RolePasswordSecrets() []string {
	var out []string
	for _, r := range s.ManagedRoles() {
		if r.PasswordSecret != nil && !r.Absent() && !slices.Contains(out, r.PasswordSecret.Name) {
			out = append(out, r.PasswordSecret.Name)
		}
	}
	slices.Sort(out)
	return out
}

// reservedRole says why a role name cannot be managed, or "". PostgreSQL
// reserves the pg_ prefix; postgres and streaming_replica are the roles
// pgsync itself keeps (CloudNativePG reserves the same).
func reservedRole(name string) string {
	switch {
	case name == "postgres":
		return "is the superuser, which pgsync manages (its password is NAME-superuser's)"
	case name == "streaming_replica":
		return "is the replication role, which pgsync manages (its password is NAME-replication's)"
	case name == pc.MetricsRole:
		return "is the role the instance managers run custom metrics queries as, which pgsync manages (docs/metrics.md)"
	case strings.HasPrefix(name, "pg_"):
		return "starts with pg_, which PostgreSQL reserves for its own roles"
	}
	return ""
}

// validateRoles checks spec.managed.roles with CloudNativePG's rules (its
// validating webhook: unique names, no reserved names, connectionLimit ≥
// -1, not both passwordSecret and disablePassword) and PostgreSQL's (63-
// byte names, no NUL), each problem at its field, in one pass.
func validateRoles(c *Cluster, bad func(field, format string, args ...any), warn func(field, format string, args ...any)) {
	roles := c.Spec.ManagedRoles()
	seen := map[string]int{}
	n := pc.Names{Cluster: c.Metadata.Name}
	for i, r := range roles {
		p := fmt.Sprintf("spec.managed.roles[%d]", i)
		switch {
		case r.Name == "":
			bad(p+".name", "required")
		case !identifier(r.Name):
			bad(p+".name", "%q is not a PostgreSQL role name: 1 to 63 bytes, no NUL", r.Name)
		case reservedRole(r.Name) != "":
			bad(p+".name", "%q %s", r.Name, reservedRole(r.Name))
		default:
			if first, dup := seen[r.Name]; dup {
				bad(p+".name", "role %q is already managed by spec.managed.roles[%d]", r.Name, first)
			} else {
				seen[r.Name] = i
			}
		}
		switch r.Ensure {
		case "", EnsurePresent:
		case EnsureAbsent:
			for _, f := range roleFieldsSet(&r) {
				warn(p+"."+f, "ignored: ensure: absent drops the role")
			}
		default:
			bad(p+".ensure", "invalid value %q (allowed: present, absent)", r.Ensure)
		}
		if strings.ContainsRune(r.Comment, 0) {
			bad(p+".comment", "contains a NUL character, which PostgreSQL text cannot hold")
		}
		if l := r.ConnectionLimit; l != nil && *l < -1 {
			bad(p+".connectionLimit", "must be -1 (no limit) or more (got %d)", *l)
		}
		if r.ValidUntil != "" {
			if _, err := time.Parse(time.RFC3339, r.ValidUntil); err != nil {
				bad(p+".validUntil", "%q is not an RFC 3339 time such as 2030-01-31T00:00:00Z", r.ValidUntil)
			}
		}
		if r.PasswordSecret != nil {
			s := r.PasswordSecret.Name
			switch {
			case r.DisablePassword:
				bad(p+".passwordSecret", "cannot be used with disablePassword: true (a role both sets and disables its password)")
			case !dns1123Subdomain(s):
				bad(p+".passwordSecret.name", "%q is not a valid Secret name", s)
			case s == n.SuperuserSecret() || s == n.ReplicationSecret() || s == n.AppSecret() || s == c.Spec.SuperuserSecretName():
				bad(p+".passwordSecret.name", "%q is a credential Secret pgsync generates for the cluster; name a basic-auth Secret of your own", s)
			}
		}
		if r.Name != "" && r.Name == c.AppOwner() && !r.Absent() && (r.PasswordSecret != nil || r.DisablePassword) {
			field := p + ".passwordSecret"
			if r.PasswordSecret == nil {
				field = p + ".disablePassword"
			}
			bad(field, "%q is the application database's owner, whose password comes from %s: set it there", r.Name, appSecretField(c))
		}
		if r.Name != "" && r.Name == c.AppOwner() && r.Absent() {
			bad(p+".ensure", "%q is the application database's owner (spec.bootstrap.initdb.owner), which cannot be dropped", r.Name)
		}
		inSeen := map[string]bool{}
		for j, g := range r.InRoles {
			f := fmt.Sprintf("%s.inRoles[%d]", p, j)
			switch {
			case !identifier(g):
				bad(f, "%q is not a PostgreSQL role name: 1 to 63 bytes, no NUL", g)
			case g == r.Name:
				bad(f, "a role cannot be a member of itself")
			case inSeen[g]:
				bad(f, "%q is listed twice", g)
			}
			inSeen[g] = true
		}
	}
}

// roleFieldsSet names the fields of r that set something besides name and
// ensure (for the warning that ensure: absent ignores them).
func roleFieldsSet(r *RoleConfiguration) []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(r.Comment != "", "comment")
	add(r.PasswordSecret != nil, "passwordSecret")
	add(r.ConnectionLimit != nil, "connectionLimit")
	add(r.ValidUntil != "", "validUntil")
	add(len(r.InRoles) > 0, "inRoles")
	add(r.Inherit != nil, "inherit")
	add(r.DisablePassword, "disablePassword")
	add(r.Superuser, "superuser")
	add(r.CreateDB, "createdb")
	add(r.CreateRole, "createrole")
	add(r.Login, "login")
	add(r.Replication, "replication")
	add(r.BypassRLS, "bypassrls")
	return out
}

func appSecretField(c *Cluster) string {
	if c.AppSecretName() != "" {
		return "spec.bootstrap.initdb.secret"
	}
	return pc.Names{Cluster: c.Metadata.Name}.AppSecret()
}

// identifier: a PostgreSQL identifier pgsync may quote: 1 to 63 bytes
// (NAMEDATALEN-1; longer ones PostgreSQL would truncate), no NUL.
func identifier(s string) bool {
	return s != "" && len(s) <= 63 && !strings.ContainsRune(s, 0)
}
