package kube

import (
	corev1 "k8s.io/api/core/v1"

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

// mountRoleSecrets projects the managed roles' password Secrets into the
// credentials volume (username and password of each, optional: a missing
// Secret or key leaves the file out, which the manager reports, rather
// than a pod that cannot start) and tells the manager where
// (PGSYNC_ROLE_SECRETS_DIR). Nothing is added without such a Secret, so
// other clusters' pod template is unchanged. The kubelet keeps the files
// up to date when a Secret changes; a Secret newly named is mounted when
// the pods restart, which its restart revision asks for.
func mountRoleSecrets(c *cluster.Cluster, spec *corev1.PodSpec) {
	secrets := c.Spec.RolePasswordSecrets()
	if len(secrets) == 0 {
		return
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.Name != volCredentials || v.Projected == nil {
			continue
		}
		for _, s := range secrets {
			dir := pc.RoleSecretsSubdir + "/" + s + "/"
			v.Projected.Sources = append(v.Projected.Sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: s},
				Items: []corev1.KeyToPath{{Key: corev1.BasicAuthUsernameKey, Path: dir + pc.RoleUsernameFile},
					{Key: corev1.BasicAuthPasswordKey, Path: dir + pc.RolePasswordFile}},
				Optional: ptr(true),
			}})
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name == pc.ContainerPostgres {
			spec.Containers[i].Env = append(spec.Containers[i].Env, corev1.EnvVar{Name: pc.EnvRoleSecretsDir, Value: pc.RoleSecretsDir})
		}
	}
}
