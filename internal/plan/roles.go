package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
)

// roleChanges says what changes in spec.managed.roles between two specs,
// one entry per role, in the order of after (then the roles it no longer
// lists). The primary's manager carries it out when it reads the new
// ConfigMap: nothing restarts. A role's password is never known here,
// only the Secret it comes from.
func roleChanges(before, after *cluster.Cluster) []string {
	b := rolesByName(before)
	var out []string
	listed := map[string]bool{}
	for _, r := range after.Spec.ManagedRoles() {
		listed[r.Name] = true
		old, had := b[r.Name]
		switch {
		case r.Absent() && (!had || !old.Absent()):
			out = append(out, fmt.Sprintf("managed role %s: drop (ensure: absent; not if it owns objects)", r.Name))
		case r.Absent():
		case !had || old.Absent():
			out = append(out, fmt.Sprintf("managed role %s: ensure present (%s)", r.Name, strings.Join(roleAttributes(r), ", ")))
		default:
			if d := roleDiff(old, r); len(d) > 0 {
				out = append(out, fmt.Sprintf("managed role %s: %s", r.Name, strings.Join(d, ", ")))
			}
		}
	}
	for _, r := range before.Spec.ManagedRoles() {
		if !listed[r.Name] {
			out = append(out, fmt.Sprintf("managed role %s: no longer managed (left in the database as it is)", r.Name))
		}
	}
	return out
}

func rolesByName(c *cluster.Cluster) map[string]cluster.RoleConfiguration {
	out := map[string]cluster.RoleConfiguration{}
	if c == nil {
		return out
	}
	for _, r := range c.Spec.ManagedRoles() {
		out[r.Name] = r
	}
	return out
}

// roleFlags are the role's boolean attributes with CloudNativePG's
// defaults applied (inherit true), in CREATE ROLE's order.
func roleFlags(r cluster.RoleConfiguration) []struct {
	name string
	on   bool
} {
	return []struct {
		name string
		on   bool
	}{
		{"superuser", r.Superuser}, {"createdb", r.CreateDB}, {"createrole", r.CreateRole},
		{"inherit", r.Inherit == nil || *r.Inherit}, {"login", r.Login}, {"replication", r.Replication},
		{"bypassrls", r.BypassRLS},
	}
}

func connectionLimit(r cluster.RoleConfiguration) int {
	if r.ConnectionLimit == nil {
		return -1
	}
	return *r.ConnectionLimit
}

func passwordSource(r cluster.RoleConfiguration) string {
	switch {
	case r.PasswordSecret != nil:
		return "from Secret " + r.PasswordSecret.Name
	case r.DisablePassword:
		return "disabled (NULL)"
	}
	return "left as it is"
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, " ")
}

// roleAttributes describes a role to ensure present.
func roleAttributes(r cluster.RoleConfiguration) []string {
	var out []string
	for _, f := range roleFlags(r) {
		if f.on {
			out = append(out, f.name)
		}
	}
	if l := connectionLimit(r); l != -1 {
		out = append(out, fmt.Sprintf("connection limit %d", l))
	}
	if r.ValidUntil != "" {
		out = append(out, "valid until "+r.ValidUntil)
	}
	if len(r.InRoles) > 0 {
		out = append(out, "member of "+strings.Join(r.InRoles, " "))
	}
	out = append(out, "password "+passwordSource(r))
	return out
}

// roleDiff lists the attribute changes of a role ensured present in both.
func roleDiff(b, a cluster.RoleConfiguration) []string {
	var out []string
	fb, fa := roleFlags(b), roleFlags(a)
	for i := range fa {
		if fb[i].on != fa[i].on {
			out = append(out, fmt.Sprintf("%s %t → %t", fa[i].name, fb[i].on, fa[i].on))
		}
	}
	if lb, la := connectionLimit(b), connectionLimit(a); lb != la {
		out = append(out, fmt.Sprintf("connection limit %d → %d", lb, la))
	}
	if b.ValidUntil != a.ValidUntil {
		out = append(out, fmt.Sprintf("valid until %s → %s", orDefault(b.ValidUntil, "infinity"), orDefault(a.ValidUntil, "infinity")))
	}
	if !slices.Equal(sortedCopy(b.InRoles), sortedCopy(a.InRoles)) {
		out = append(out, fmt.Sprintf("member of %s → %s", orNone(b.InRoles), orNone(a.InRoles)))
	}
	if b.Comment != a.Comment {
		out = append(out, "comment changed")
	}
	if pb, pa := passwordSource(b), passwordSource(a); pb != pa {
		out = append(out, fmt.Sprintf("password %s → %s", pb, pa))
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// sameList: the same strings in the same order.
func sameList(a, b []string) bool { return slices.Equal(a, b) }
