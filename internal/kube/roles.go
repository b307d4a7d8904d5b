package kube

import (
	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// managedRoles is the params ConfigMap's roles key (spec.managed.roles
// with CloudNativePG's defaults: inherit true, connectionLimit -1); ok is
// false when the Cluster has no managed roles, so other clusters'
// ConfigMap keeps its keys.
func managedRoles(c *cluster.Cluster) (pc.ManagedRoles, bool) {
	roles := c.Spec.ManagedRoles()
	if len(roles) == 0 {
		return pc.ManagedRoles{}, false
	}
	out := pc.ManagedRoles{Roles: make([]pc.ManagedRole, 0, len(roles))}
	for _, r := range roles {
		if r.Absent() {
			out.Roles = append(out.Roles, pc.ManagedRole{Name: r.Name, Absent: true})
			continue
		}
		m := pc.ManagedRole{
			Name: r.Name, Comment: r.Comment, Login: r.Login, Superuser: r.Superuser, CreateDB: r.CreateDB,
			CreateRole: r.CreateRole, Inherit: r.Inherit == nil || *r.Inherit, Replication: r.Replication,
			BypassRLS: r.BypassRLS, ConnectionLimit: -1, ValidUntil: r.ValidUntil, InRoles: r.InRoles,
			DisablePassword: r.DisablePassword,
		}
		if r.ConnectionLimit != nil {
			m.ConnectionLimit = *r.ConnectionLimit
		}
		if r.PasswordSecret != nil {
			m.PasswordSecret = r.PasswordSecret.Name
		}
		out.Roles = append(out.Roles, m)
	}
	return out, true
}
