package cluster

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRolesFile: CloudNativePG's roles sample validates as written, with
// CloudNativePG's defaults, and names the one password Secret to read.
func TestRolesFile(t *testing.T) {
	data, err := os.ReadFile("testdata/cnpg/roles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, errs := load(t, File{Path: "roles.yaml", Data: data})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := set.Clusters[0].Spec
	roles := s.ManagedRoles()
	if len(roles) != 4 || roles[0].Name != "dante" || !roles[3].Absent() || roles[0].Inherit != nil || roles[2].ConnectionLimit == nil || *roles[2].ConnectionLimit != 10 {
		t.Errorf("roles = %+v", roles)
	}
	if got := s.RolePasswordSecrets(); !cmp.Equal(got, []string{"cluster-example-petrarca"}) {
		t.Errorf("RolePasswordSecrets = %v", got)
	}
	if got := set.Clusters[0].Pos("spec.managed.roles[1].passwordSecret.name").String(); got != "roles.yaml:31:15" {
		t.Errorf("position of passwordSecret.name = %s", got)
	}
}

// TestRolesValidation: every refusal at its field, all in one pass;
// managed.services is read beside the roles (services_test.go).
func TestRolesValidation(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 1\n  storage:\n    size: 1Gi\n  managed:\n"
	for _, tc := range []struct {
		name, body string
		want       []string
		warnings   []string
	}{
		{"fine", "    roles:\n    - {name: alice, login: true, inherit: false, connectionLimit: -1, validUntil: '2030-01-31T12:00:00+01:00', inRoles: [pg_monitor], passwordSecret: {name: alice-pw}}\n", nil, nil},
		{"reserved names", "    roles:\n    - name: postgres\n    - name: streaming_replica\n    - name: pg_monitor\n", []string{
			`c.yaml:13:13: spec.managed.roles[0].name: "postgres" is the superuser, which pgsync manages (its password is NAME-superuser's)`,
			`c.yaml:14:13: spec.managed.roles[1].name: "streaming_replica" is the replication role, which pgsync manages (its password is NAME-replication's)`,
			`c.yaml:15:13: spec.managed.roles[2].name: "pg_monitor" starts with pg_, which PostgreSQL reserves for its own roles`,
		}, nil},
		{"bad values", "    roles:\n    - name: bob\n      ensure: gone\n      connectionLimit: -2\n      validUntil: tomorrow\n      inRoles: [bob, g, g, '']\n    - name: bob\n    - comment: nameless\n    - name: " + strings.Repeat("x", 64) + "\n", []string{
			`c.yaml:14:15: spec.managed.roles[0].ensure: invalid value "gone" (allowed: present, absent)`,
			`c.yaml:15:24: spec.managed.roles[0].connectionLimit: must be -1 (no limit) or more (got -2)`,
			`c.yaml:16:19: spec.managed.roles[0].validUntil: "tomorrow" is not an RFC 3339 time such as 2030-01-31T00:00:00Z`,
			`c.yaml:17:17: spec.managed.roles[0].inRoles[0]: a role cannot be a member of itself`,
			`c.yaml:17:25: spec.managed.roles[0].inRoles[2]: "g" is listed twice`,
			`c.yaml:17:28: spec.managed.roles[0].inRoles[3]: "" is not a PostgreSQL role name: 1 to 63 bytes, no NUL`,
			`c.yaml:18:13: spec.managed.roles[1].name: role "bob" is already managed by spec.managed.roles[0]`,
			`c.yaml:19:7: spec.managed.roles[2].name: required`,
			`c.yaml:20:13: spec.managed.roles[3].name: "` + strings.Repeat("x", 64) + `" is not a PostgreSQL role name: 1 to 63 bytes, no NUL`,
		}, nil},
		{"passwords", "    roles:\n    - name: carol\n      passwordSecret: {name: carol-pw}\n      disablePassword: true\n    - name: dave\n      passwordSecret: {name: pg-superuser}\n    - name: app\n      passwordSecret: {name: app-pw}\n    - name: erin\n      passwordSecret: {name: Erin_PW}\n", []string{
			`c.yaml:14:23: spec.managed.roles[0].passwordSecret: cannot be used with disablePassword: true (a role both sets and disables its password)`,
			`c.yaml:17:30: spec.managed.roles[1].passwordSecret.name: "pg-superuser" is a credential Secret pgsync generates for the cluster; name a basic-auth Secret of your own`,
			`c.yaml:19:23: spec.managed.roles[2].passwordSecret: "app" is the application database's owner, whose password comes from pg-app: set it there`,
			`c.yaml:21:30: spec.managed.roles[3].passwordSecret.name: "Erin_PW" is not a valid Secret name`,
		}, nil},
		{"absent", "    roles:\n    - name: frank\n      ensure: absent\n      login: true\n    - name: app\n      ensure: absent\n", []string{
			`c.yaml:17:15: spec.managed.roles[1].ensure: "app" is the application database's owner (spec.bootstrap.initdb.owner), which cannot be dropped`,
		}, []string{
			`c.yaml:15:14: spec.managed.roles[0].login: ignored: ensure: absent drops the role`,
		}},
		{"services beside roles", "    services:\n      disabledDefaultServices: [ro]\n    roles: [{name: gina}]\n", nil, nil},
		{"typo", "    role: [{name: hank}]\n", []string{
			`c.yaml:12:5: spec.managed.role: unknown field "role" (did you mean roles?)`,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, errs := load(t, File{Path: "c.yaml", Data: []byte(head + tc.body)})
			var got, warned []string
			for _, e := range errs {
				got = append(got, e.String())
			}
			for _, w := range set.Warnings {
				warned = append(warned, w.String())
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			if !cmp.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !cmp.Equal(warned, tc.warnings) {
				t.Errorf("warnings\n%s\nwant\n%s", strings.Join(warned, "\n"), strings.Join(tc.warnings, "\n"))
			}
		})
	}
}
