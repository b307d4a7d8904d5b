package cluster

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSQLRefsFile: CloudNativePG's post-init SQL references decode as
// written, and the phases come in the order they run.
func TestSQLRefsFile(t *testing.T) {
	data, err := os.ReadFile("testdata/cnpg/initdb-sql-refs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, _ := load(t, File{Path: "a.yaml", Data: data})
	i := set.Clusters[0].Spec.Bootstrap.InitDB
	type phase struct {
		Field, Database string
		Refs            *SQLRefs
	}
	var got []phase
	for _, p := range i.PostInitPhases() {
		got = append(got, phase{p.Field, p.Database, p.Refs})
	}
	want := []phase{
		{"postInitSQL", "postgres", &SQLRefs{SecretRefs: []SQLRef{{"post-init-roles", "roles.sql"}}}},
		{"postInitTemplateSQL", "template1", &SQLRefs{ConfigMapRefs: []SQLRef{{"post-init-template", "extensions.sql"}}}},
		{"postInitApplicationSQL", "", &SQLRefs{SecretRefs: []SQLRef{{"post-init-sql-secret", "secret.sql"}},
			ConfigMapRefs: []SQLRef{{"post-init-sql-configmap", "configmap.sql"}, {"post-init-sql-configmap", "grants.sql"}}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("phases (-want +got):\n%s", d)
	}
}
