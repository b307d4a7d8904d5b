package conffile

import (
	"slices"
	"strings"
	"testing"
)

// TestHBASuperuser: with superuser access off the superuser's remote
// logins are rejected by pgsync's own rules, before any user line (which
// therefore cannot let them back in); on, no such rule. Either way the
// manager's local session is peer authentication through IdentMap, and
// streaming_replica's rules come first.
func TestHBASuperuser(t *testing.T) {
	rejects := []string{
		"host all postgres 0.0.0.0/0 reject", "host all postgres ::/0 reject",
		"host replication postgres 0.0.0.0/0 reject", "host replication postgres ::/0 reject",
	}
	user := []string{"hostssl all postgres 10.0.0.0/8 scram-sha-256"}
	for _, tc := range []struct {
		name string
		o    HBAOptions
		want []string // the own rules after streaming_replica's
	}{
		{"off, TLS", HBAOptions{TLS: true}, append([]string{"hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"}, rejects...)},
		{"off, no TLS", HBAOptions{}, rejects},
		{"on, TLS", HBAOptions{TLS: true, SuperuserAccess: true}, []string{"hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"}},
		{"on, no TLS", HBAOptions{SuperuserAccess: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, first := HBAFor(user, tc.o)
			lines := strings.Split(conf, "\n")
			if lines[first-1] != user[0] {
				t.Fatalf("user line at %d is %q:\n%s", first, lines[first-1], conf)
			}
			var own []string
			for _, l := range lines[:first-1] {
				if l != "" && !strings.HasPrefix(l, "#") {
					own = append(own, strings.Join(strings.Fields(l), " "))
				}
			}
			if own[0] != "local all postgres peer map=pgsync" {
				t.Errorf("first rule %q, want the manager's peer login", own[0])
			}
			// Six: the local rules and streaming_replica's four.
			if got := own[6:]; !slices.Equal(got, tc.want) {
				t.Errorf("own rules after streaming_replica's:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestIdent(t *testing.T) {
	for _, tc := range []struct{ user, line string }{
		{"postgres", "pgsync  postgres  postgres"},
		{"a b", `pgsync  "a b"  postgres`},
		{`x"y`, `pgsync  "x""y"  postgres`},
	} {
		got := Ident(tc.user)
		if l := strings.Split(strings.TrimSpace(got), "\n"); l[len(l)-1] != tc.line {
			t.Errorf("Ident(%q) = %q, want last line %q", tc.user, got, tc.line)
		}
	}
}
