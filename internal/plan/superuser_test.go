package plan

import (
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// TestPlanSaysSuperuserAccessGoes: a cluster whose params ConfigMap lacks
// the superuser-access key (rendered by a pgsync from before the setting,
// whose superuser always had access) is told, in the plan that applies
// it, that the superuser's access goes unless the file says true; once
// the key is there, or with access on, nothing is said.
func TestPlanSaysSuperuserAccessGoes(t *testing.T) {
	const drift = "ConfigMap website-params: data.superuser-access"
	for _, tc := range []struct {
		name  string
		edit  func(*cluster.Cluster)
		drift []string
		want  string // in the warning; "" for none
	}{
		{"not written, ConfigMap from before", nil, []string{drift}, "spec.enableSuperuserAccess is not written, and its default is false"},
		{"false, ConfigMap from before", func(c *cluster.Cluster) { f := false; c.Spec.EnableSuperuserAccess = &f }, []string{drift}, "spec.enableSuperuserAccess is false."},
		{"true", func(c *cluster.Cluster) { v := true; c.Spec.EnableSuperuserAccess = &v }, []string{drift}, ""},
		{"ConfigMap already has the key", nil, nil, ""},
		{"other drift", nil, []string{"ConfigMap website-params: data.parameters.json"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, website(img131, 3))[0]
			observed := Converged([]*cluster.Cluster{c})
			observed.Clusters[0].Drift = tc.drift
			if tc.edit != nil {
				tc.edit(c)
			}
			p, err := Make([]*cluster.Cluster{c}, observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range p.Clusters[0].Warnings {
				if strings.HasPrefix(w, "superuser access goes") {
					got = append(got, w)
				}
			}
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("warned %q", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.Contains(got[0], "enableSuperuserAccess: true")):
				t.Errorf("warnings %q: want one saying %q and how to keep access", p.Clusters[0].Warnings, tc.want)
			}
		})
	}
}
