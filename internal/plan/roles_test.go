package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rolesSpec is the seed's cluster with spec.managed.roles written as
// YAML flow entries.
func rolesSpec(roles ...string) string {
	if len(roles) == 0 {
		return website(img131, 3)
	}
	return website(img131, 3, "  managed:\n    roles:\n", "    - "+strings.Join(roles, "\n    - ")+"\n")
}

// TestRoleChanges: what the plan says of each kind of role change.
func TestRoleChanges(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after []string
		want          []string
	}{
		{"none", nil, nil, nil},
		{"unchanged, defaults written or implied", []string{"{name: dante, login: true}"},
			[]string{"{name: dante, login: true, inherit: true, connectionLimit: -1, ensure: present}"}, nil},
		{"added", nil, []string{"{name: dante, login: true, connectionLimit: 5, validUntil: '2030-01-01T00:00:00Z', inRoles: [pg_monitor, pg_signal_backend], passwordSecret: {name: dante-pw}}"},
			[]string{"managed role dante: ensure present (inherit, login, connection limit 5, valid until 2030-01-01T00:00:00Z, member of pg_monitor pg_signal_backend, password from Secret dante-pw)"}},
		{"altered", []string{"{name: dante, login: true, inRoles: [pg_monitor], comment: a}"},
			[]string{"{name: dante, superuser: true, inherit: false, connectionLimit: 10, validUntil: '2031-01-01T00:00:00Z', inRoles: [pg_signal_backend], comment: b, disablePassword: true}"},
			[]string{"managed role dante: superuser false → true, inherit true → false, login true → false, connection limit -1 → 10, valid until infinity → 2031-01-01T00:00:00Z, member of pg_monitor → pg_signal_backend, comment changed, password left as it is → disabled (NULL)"}},
		{"membership order is no change", []string{"{name: dante, inRoles: [a, b]}"}, []string{"{name: dante, inRoles: [b, a]}"}, nil},
		{"dropped", []string{"{name: dante, login: true}"}, []string{"{name: dante, ensure: absent}"},
			[]string{"managed role dante: drop (ensure: absent; not if it owns objects)"}},
		{"absent stays absent", []string{"{name: dante, ensure: absent}"}, []string{"{name: dante, ensure: absent}"}, nil},
		{"absent again present", []string{"{name: dante, ensure: absent}"}, []string{"{name: dante}"},
			[]string{"managed role dante: ensure present (inherit, password left as it is)"}},
		{"no longer listed", []string{"{name: dante}", "{name: beatrice}"}, []string{"{name: beatrice}"},
			[]string{"managed role dante: no longer managed (left in the database as it is)"}},
		{"password Secret renamed", []string{"{name: dante, passwordSecret: {name: a}}"}, []string{"{name: dante, passwordSecret: {name: b}}"},
			[]string{"managed role dante: password from Secret a → from Secret b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, a := mustLoad(t, rolesSpec(tc.before...))[0], mustLoad(t, rolesSpec(tc.after...))[0]
			if got := roleChanges(b, a); !cmp.Equal(got, tc.want) {
				t.Errorf("roleChanges\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRoleChangeIsAReload: a change of the managed roles is a reload of
// the configuration, naming the roles, and restarts nothing.
func TestRoleChangeIsAReload(t *testing.T) {
	old := mustLoad(t, rolesSpec("{name: dante}"))
	desired := mustLoad(t, rolesSpec("{name: dante, login: true}", "{name: beatrice, ensure: absent}"))
	p, err := Make(desired, Converged(old), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := p.Clusters[0]
	got := steps(cp)
	if want := []string{"update-objects", "reload-config"}; !cmp.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	want := "reload the configuration, nothing restarts: managed role dante: login false → true, managed role beatrice: drop (ensure: absent; not if it owns objects)"
	if r := cp.Steps[1].Reason; r != want {
		t.Errorf("reason\n got %s\nwant %s", r, want)
	}
}
