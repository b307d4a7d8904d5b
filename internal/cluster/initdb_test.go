package cluster

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInitDBFiles: CloudNativePG-style files with bootstrap.initdb
// validate as written, with CloudNativePG's defaults for the rest.
func TestInitDBFiles(t *testing.T) {
	for p, c := range loadEach(t, "testdata/cnpg/initdb-*.yaml", 3) {
		if c.Spec.Bootstrap.InitDB == nil {
			t.Errorf("%s: no initdb", p)
		}
	}
	data, _ := os.ReadFile("testdata/cnpg/initdb-app.yaml")
	set, _ := load(t, File{Path: "a.yaml", Data: data})
	c := set.Clusters[0]
	if got := []string{c.AppDatabase(), c.AppOwner(), c.AppSecretName()}; !cmp.Equal(got, []string{"appdb", "appuser", "appuser-secret"}) {
		t.Errorf("database, owner, secret = %v", got)
	}
	data, _ = os.ReadFile("testdata/cnpg/initdb-icu.yaml")
	set, _ = load(t, File{Path: "a.yaml", Data: data})
	if c := set.Clusters[0]; c.AppDatabase() != "app" || c.AppOwner() != "app" || c.AppSecretName() != "" {
		t.Errorf("defaults: %s %s %q", c.AppDatabase(), c.AppOwner(), c.AppSecretName())
	}
}

// TestInitDBValidation: each refusal at its field, in one pass; options
// a major lacks are refused with the major.
func TestInitDBValidation(t *testing.T) {
	head := func(tag string) string {
		return "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:" + tag + "\n  instances: 1\n  storage:\n    size: 1Gi\n  bootstrap:\n    initdb:\n"
	}
	for _, tc := range []struct {
		name, tag, body string
		want            []string
	}{
		{"fine", "18.1-minimal-bookworm", "      localeProvider: icu\n      icuLocale: en-US\n      icuRules: '&a < b'\n", nil},
		{"builtin on 16", "16.4", "      localeProvider: builtin\n      builtinLocale: C.UTF-8\n", []string{
			`c.yaml:13:23: spec.bootstrap.initdb.localeProvider: builtin is not available in PostgreSQL 16: it came with PostgreSQL 17`,
			`c.yaml:14:22: spec.bootstrap.initdb.builtinLocale: not available in PostgreSQL 16: initdb has it from PostgreSQL 17`,
		}},
		{"icu on 14", "14", "      localeProvider: icu\n      icuLocale: en-US\n", []string{
			`c.yaml:13:23: spec.bootstrap.initdb.localeProvider: not available in PostgreSQL 14: initdb has it from PostgreSQL 15`,
			`c.yaml:14:18: spec.bootstrap.initdb.icuLocale: not available in PostgreSQL 14: initdb has it from PostgreSQL 15`,
		}},
		{"icuLocale without icu", "16", "      icuLocale: en-US\n", []string{
			`c.yaml:13:18: spec.bootstrap.initdb.icuLocale: needs localeProvider: icu`,
		}},
		{"names and sizes", "16", "      database: template1\n      owner: postgres\n      walSegmentSize: 48\n      secret: {name: Bad_Name}\n      postInitSQL: ['']\n      localeProvider: glibc\n", []string{
			`c.yaml:13:17: spec.bootstrap.initdb.database: "template1" is one of PostgreSQL's own databases; name the application database`,
			`c.yaml:14:14: spec.bootstrap.initdb.owner: "postgres" is a role pgsync manages (the superuser, the replication user); name the application's owner`,
			`c.yaml:15:23: spec.bootstrap.initdb.walSegmentSize: must be a power of 2 between 1 and 1024 megabytes (got 48)`,
			`c.yaml:16:22: spec.bootstrap.initdb.secret.name: "Bad_Name" is not a valid Secret name`,
			`c.yaml:17:21: spec.bootstrap.initdb.postInitSQL[0]: empty statement`,
			`c.yaml:18:23: spec.bootstrap.initdb.localeProvider: invalid value "glibc" (allowed: libc, icu, builtin)`,
		}},
		{"refs", "16", "      postInitSQLRefs:\n        configMapRefs: [{name: x, key: y.sql}]\n        secretRefs: [{name: s, key: a.sql}, {name: s, key: b.sql}]\n", nil},
		{"refs checked in one pass", "16", "      postInitSQLRefs:\n        configMapRefs:\n        - {key: y}\n        - {name: Bad_Name, key: 'a/b'}\n" +
			"      postInitTemplateSQLRefs:\n        secretRefs:\n        - {name: s}\n        - {name: s, key: k}\n        - {name: s, key: k}\n" +
			"      postInitApplicationSQLRefs:\n        secretRefs: [{name: s, key: k}]\n        configMapRefs: [{name: s, key: k}]\n        bogus: []\n", []string{
			`c.yaml:15:11: spec.bootstrap.initdb.postInitSQLRefs.configMapRefs[0].name: required: the ConfigMap holding the SQL file`,
			`c.yaml:16:33: spec.bootstrap.initdb.postInitSQLRefs.configMapRefs[1].key: "a/b" is not a valid ConfigMap key (letters, digits, '-', '_', '.')`,
			`c.yaml:16:18: spec.bootstrap.initdb.postInitSQLRefs.configMapRefs[1].name: "Bad_Name" is not a valid ConfigMap name`,
			`c.yaml:19:11: spec.bootstrap.initdb.postInitTemplateSQLRefs.secretRefs[0].key: required: the key of the Secret holding the SQL file`,
			`c.yaml:21:11: spec.bootstrap.initdb.postInitTemplateSQLRefs.secretRefs[2]: Secret s key k is listed already at spec.bootstrap.initdb.postInitTemplateSQLRefs.secretRefs[1] (it would run twice)`,
			`c.yaml:25:9: spec.bootstrap.initdb.postInitApplicationSQLRefs.bogus: unknown field "bogus" (allowed: configMapRefs, secretRefs)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, File{Path: "c.yaml", Data: []byte(head(tc.tag) + tc.body)})
			var got []string
			for _, e := range errs {
				got = append(got, e.String())
			}
			// Validation's order is the checks' order, not the file's.
			slices.Sort(got)
			slices.Sort(tc.want)
			if !cmp.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
