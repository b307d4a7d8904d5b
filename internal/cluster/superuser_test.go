package cluster

import (
	"strings"
	"testing"
)

// TestEnableSuperuserAccess: true (what pgsync does) and nothing
// validate; false is refused at its value, saying what does it instead.
func TestEnableSuperuserAccess(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 3\n  storage:\n    size: 1Gi\n"
	for _, tc := range []struct {
		body, want string
	}{
		{"", ""},
		{"  enableSuperuserAccess: true\n", ""},
		{"  enableSuperuserAccess: false\n", `c.yaml:11:26: spec.enableSuperuserAccess: false is not supported by pgsync yet: it does not turn the superuser's remote logins off by itself;`},
	} {
		_, errs := load(t, File{Path: "c.yaml", Data: []byte(head + tc.body)})
		var got []string
		for _, e := range errs {
			got = append(got, e.String())
		}
		if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.want) || !strings.Contains(got[0], "hostssl all postgres 0.0.0.0/0 reject")) {
			t.Errorf("%q: %q, want %q", tc.body, got, tc.want)
		}
	}
}
