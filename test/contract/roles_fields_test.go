package contract

import (
	"encoding/json"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// spec.managed.roles' effects: the params ConfigMap's roles key, which the
// primary's manager reconciles (internal/instance TestManagedRoles shows
// them in the database), and for passwordSecret the Secret projected into
// the pods. Each entry reads its own field of the first role, with the
// manager's defaults when there is none (inherit true, connectionLimit
// -1), so that only that field's change shows.
func init() {
	first := func(o *kube.Objects) pc.ManagedRole {
		var m pc.ManagedRoles
		if raw, ok := o.Params.Data[pc.RolesKey]; ok {
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				panic(err)
			}
		}
		if len(m.Roles) == 0 {
			return pc.ManagedRole{Inherit: true, ConnectionLimit: -1}
		}
		return m.Roles[0]
	}
	role := func(f func(r *cluster.RoleConfiguration)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) {
			r := cluster.RoleConfiguration{Name: "fx_role"}
			f(&r)
			s.Managed = &cluster.ManagedConfiguration{Roles: []cluster.RoleConfiguration{r}}
		}
	}
	where := "the params ConfigMap's " + pc.RolesKey + ", reconciled by the primary's manager (TestManagedRoles)"
	field := func(get func(r pc.ManagedRole) any) func(o *kube.Objects) any {
		return func(o *kube.Objects) any { return get(first(o)) }
	}
	for path, e := range map[string]effect{
		"name":            {set: role(func(r *cluster.RoleConfiguration) {}), render: field(func(r pc.ManagedRole) any { return r.Name })},
		"comment":         {set: role(func(r *cluster.RoleConfiguration) { r.Comment = "fx" }), render: field(func(r pc.ManagedRole) any { return r.Comment })},
		"ensure":          {set: role(func(r *cluster.RoleConfiguration) { r.Ensure = cluster.EnsureAbsent }), render: field(func(r pc.ManagedRole) any { return r.Absent })},
		"login":           {set: role(func(r *cluster.RoleConfiguration) { r.Login = true }), render: field(func(r pc.ManagedRole) any { return r.Login })},
		"superuser":       {set: role(func(r *cluster.RoleConfiguration) { r.Superuser = true }), render: field(func(r pc.ManagedRole) any { return r.Superuser })},
		"createdb":        {set: role(func(r *cluster.RoleConfiguration) { r.CreateDB = true }), render: field(func(r pc.ManagedRole) any { return r.CreateDB })},
		"createrole":      {set: role(func(r *cluster.RoleConfiguration) { r.CreateRole = true }), render: field(func(r pc.ManagedRole) any { return r.CreateRole })},
		"inherit":         {set: role(func(r *cluster.RoleConfiguration) { r.Inherit = ptr(false) }), render: field(func(r pc.ManagedRole) any { return r.Inherit })},
		"replication":     {set: role(func(r *cluster.RoleConfiguration) { r.Replication = true }), render: field(func(r pc.ManagedRole) any { return r.Replication })},
		"bypassrls":       {set: role(func(r *cluster.RoleConfiguration) { r.BypassRLS = true }), render: field(func(r pc.ManagedRole) any { return r.BypassRLS })},
		"connectionLimit": {set: role(func(r *cluster.RoleConfiguration) { r.ConnectionLimit = ptr(7) }), render: field(func(r pc.ManagedRole) any { return r.ConnectionLimit })},
		"validUntil":      {set: role(func(r *cluster.RoleConfiguration) { r.ValidUntil = "2030-01-01T00:00:00Z" }), render: field(func(r pc.ManagedRole) any { return r.ValidUntil })},
		"inRoles":         {set: role(func(r *cluster.RoleConfiguration) { r.InRoles = []string{"pg_monitor"} }), render: field(func(r pc.ManagedRole) any { return r.InRoles })},
		"disablePassword": {set: role(func(r *cluster.RoleConfiguration) { r.DisablePassword = true }), render: field(func(r pc.ManagedRole) any { return r.DisablePassword })},
		"passwordSecret.name": {
			where: "the roles key's passwordSecret and the Secret projected into the credentials volume (TestManagedRoles, TestRenderRoleSecrets)",
			set: role(func(r *cluster.RoleConfiguration) {
				r.PasswordSecret = &cluster.LocalObjectReference{Name: "fx-role-pw"}
			}),
			render: func(o *kube.Objects) any {
				var projected []string
				for _, v := range podSpec(o).Volumes {
					if v.Projected == nil {
						continue
					}
					for _, src := range v.Projected.Sources {
						if src.Secret != nil {
							projected = append(projected, src.Secret.Name)
						}
					}
				}
				return []any{first(o).PasswordSecret, projected}
			}},
	} {
		if e.where == "" {
			e.where = where
		}
		effects["spec.managed.roles[]."+path] = e
	}
}
