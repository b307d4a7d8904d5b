package kube

import (
	"crypto/rand"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestRenderSuperuser: which Secret pgsync generates and the pods project
// for the superuser's password, and what the params ConfigMap tells the
// managers, for each way of writing enableSuperuserAccess and
// superuserSecret.
func TestRenderSuperuser(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		generated  []string // the credential Secrets NewSecrets creates
		projected  string   // the Secret the superuser-password file comes from
		access     string
	}{
		{"default: off, as CloudNativePG", "", []string{"web-app"}, "web-superuser", pc.SuperuserAccessOff},
		{"off", "  enableSuperuserAccess: false\n", []string{"web-app"}, "web-superuser", pc.SuperuserAccessOff},
		{"on: NAME-superuser generated", "  enableSuperuserAccess: true\n", []string{"web-superuser", "web-app"}, "web-superuser", pc.SuperuserAccessOn},
		{"on with the user's Secret: none generated", "  enableSuperuserAccess: true\n  superuserSecret:\n    name: my-su\n", []string{"web-app"}, "my-su", pc.SuperuserAccessOn},
		// Mounted while off, so turning access on needs no restart.
		{"off with the user's Secret", "  superuserSecret:\n    name: my-su\n", []string{"web-app"}, "my-su", pc.SuperuserAccessOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCluster(t, func(y string) string { return strings.Replace(y, "spec:\n", "spec:\n"+tc.spec, 1) })
			secrets, err := NewSecrets(c, func(string) bool { return false }, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range secrets {
				names = append(names, s.Name)
			}
			same(t, names, tc.generated)
			same(t, SecretNames(c), tc.generated)
			o := render(t, c)
			same(t, o.Params.Data[pc.SuperuserAccessKey], tc.access)
			var src *corev1.SecretProjection
			for _, v := range o.StatefulSet.Spec.Template.Spec.Volumes {
				if v.Projected == nil {
					continue
				}
				for _, p := range v.Projected.Sources {
					if p.Secret != nil && slices.ContainsFunc(p.Secret.Items, func(k corev1.KeyToPath) bool { return k.Path == "superuser-password" }) {
						src = p.Secret
					}
				}
			}
			if src == nil {
				t.Fatal("no superuser-password projection")
			}
			same(t, src.Name, tc.projected)
			same(t, src.Items, []corev1.KeyToPath{{Key: "password", Path: "superuser-password"}})
			if src.Optional == nil || !*src.Optional {
				t.Error("the projection must be optional: neither Secret exists while access is off")
			}
		})
	}
}
