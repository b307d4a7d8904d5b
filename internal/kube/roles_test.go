package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestRenderRoleSecrets: the managed roles' password Secrets are projected
// (optional, username and password) into the credentials volume with the
// manager told where; the roles key lists the roles with their defaults;
// a cluster without roles renders neither, nor a Role rule for Secrets.
func TestRenderRoleSecrets(t *testing.T) {
	load := func(extra string) *cluster.Cluster {
		t.Helper()
		doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: x}\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 1\n  storage: {size: 1Gi}\n" + extra
		set, err := cluster.Load([]cluster.File{{Path: "c.yaml", Data: []byte(doc)}})
		if err != nil {
			t.Fatal(err)
		}
		return set.Clusters[0]
	}
	render := func(c *cluster.Cluster) *Objects {
		t.Helper()
		o, err := Render(c, Options{InstanceImage: "pgsync:test", TargetPrimary: "pg-0"})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	plain := render(load(""))
	roles := render(load("  managed:\n    roles:\n    - {name: dante, login: true, passwordSecret: {name: dante-pw}}\n    - {name: gone, ensure: absent, passwordSecret: {name: gone-pw}}\n    - {name: group}\n"))

	if _, ok := plain.Params.Data[pc.RolesKey]; ok {
		t.Error("a cluster without managed roles has a roles key")
	}
	if got, want := roles.Params.Data[pc.RolesKey], `{"roles":[{"name":"dante","login":true,"inherit":true,"connectionLimit":-1,"passwordSecret":"dante-pw"},{"name":"gone","absent":true,"inherit":false,"connectionLimit":0},{"name":"group","inherit":true,"connectionLimit":-1}]}`; got != want {
		t.Errorf("roles key\n got %s\nwant %s", got, want)
	}
	secretSources := func(o *Objects) []corev1.SecretProjection {
		var out []corev1.SecretProjection
		for _, v := range o.StatefulSet.Spec.Template.Spec.Volumes {
			if v.Name != volCredentials {
				continue
			}
			for _, s := range v.Projected.Sources {
				if s.Secret != nil && s.Secret.Name == "dante-pw" || s.Secret != nil && s.Secret.Name == "gone-pw" {
					out = append(out, *s.Secret)
				}
			}
		}
		return out
	}
	if got := secretSources(plain); len(got) != 0 {
		t.Errorf("projected without roles: %v", got)
	}
	got := secretSources(roles)
	if len(got) != 1 || got[0].Optional == nil || !*got[0].Optional || len(got[0].Items) != 2 ||
		got[0].Items[0] != (corev1.KeyToPath{Key: "username", Path: "roles/dante-pw/username"}) ||
		got[0].Items[1] != (corev1.KeyToPath{Key: "password", Path: "roles/dante-pw/password"}) {
		t.Errorf("projected password Secrets (an absent role's not): %+v", got)
	}
	env := func(o *Objects) string {
		for _, e := range o.StatefulSet.Spec.Template.Spec.Containers[0].Env {
			if e.Name == pc.EnvRoleSecretsDir {
				return e.Value
			}
		}
		return ""
	}
	if env(plain) != "" || env(roles) != pc.RoleSecretsDir {
		t.Errorf("%s: without roles %q, with %q", pc.EnvRoleSecretsDir, env(plain), env(roles))
	}
	for _, rule := range roles.Role.Rules {
		for _, r := range rule.Resources {
			if r == "secrets" {
				t.Errorf("the instances' Role grants %v on Secrets: the manager reads none through the API", rule.Verbs)
			}
		}
	}
}
