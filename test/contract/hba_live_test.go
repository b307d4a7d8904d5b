package contract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/pgconf/pgsettings"
	"github.com/pgsync/pgsync/test/prereq"
)

// TestHBARulesAgreeWithPostgres15: every pg_hba rule validate accepts is
// one a real PostgreSQL 15 parses without error (pg_hba_file_rules), and
// every rule refused for its syntax is refused by postgres too. (Rules
// refused by pgsync's policy — trust over TCP, hostssl without TLS,
// credentials in options, a host name no DNS name can be — postgres would
// take.)
func TestHBARulesAgreeWithPostgres15(t *testing.T) {
	bin := os.Getenv("PGSYNC_PG15_BINDIR")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	srv, err := pgsettings.Start(context.Background(), pgsettings.Options{BinDir: bin})
	switch {
	case errors.Is(err, pgsettings.ErrNoBinaries), errors.Is(err, pgsettings.ErrNoUser):
		prereq.Missing(t, "PostgreSQL 15 as an unprivileged user: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}()
	accepted := []string{
		"host all all 10.0.0.0/8 scram-sha-256",
		"host all app 0.0.0.0/0 reject",
		"host all all fd00::/8 scram-sha-256 # application pods",
		"host db1,db2 +readers,app 10.1.0.0/16 scram-sha-256",
		"host db1, db2 app 10.1.0.0/16 scram-sha-256",
		`host "my db" "all" 10.1.0.0/16 scram-sha-256`,
		"host all all 10.1.2.3 255.255.255.0 scram-sha-256",
		"host all all .example.com scram-sha-256",
		"host all all samenet scram-sha-256",
		"host replication app 10.0.0.0/8 scram-sha-256",
		"local all all peer",
		`host all all 10.0.0.0/8 ldap ldapserver=ldap.example.com ldapprefix="cn=" ldapsuffix=",dc=example,dc=com"`,
		`host all all 10.0.0.0/8 ldap ldapserver=ldap.example.com ldapbasedn="dc=example,dc=com"`,
		"host all all 10.0.0.0/8 pam pamservice=postgresql",
		"hostnogssenc all all 10.0.0.0/8 scram-sha-256",
	}
	syntax := []string{
		"hots all all 10.0.0.0/8 md5",
		"host all all 10.0.0.0/8",
		"host all all 10.0.0.0/8 scram",
		"host all all 10.0.0.0/33 md5",
		"host all all 10.0.0.1 md5",
		"host all all 10.0.0.0/8 ldap ldapserver=ldap.example.com ldapbasedn=dc=example,dc=com",
		"host all all 10.0.0.0/8 md5 map=x",
		"host all all 10.0.0.0/8 ldap ldapserver=l",
		"host all all 10.0.0.0/8 ldap ldapserver=l ldapprefix=cn= ldapbasedn=dc=x",
		"host all all 0.0.0.0/0 peer",
	}
	lines := append(append([]string{}, accepted...), syntax...)
	if err := srv.WriteFile("pg_hba.conf", []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Query("SELECT line_number, coalesce(error, '') FROM pg_hba_file_rules")
	if err != nil {
		t.Fatal(err)
	}
	pgErr := map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var n int
		num, msg, _ := strings.Cut(l, "\t")
		if _, err := fmt.Sscan(num, &n); err == nil {
			pgErr[n] = msg
		}
	}
	for i, line := range lines {
		_, err := cluster.ParseHBA(line, 15)
		pg, seen := pgErr[i+1]
		switch {
		case !seen:
			t.Errorf("line %d %q: not in pg_hba_file_rules", i+1, line)
		case i < len(accepted) && (err != nil || pg != ""):
			t.Errorf("%q: validate: %v; postgres: %q — both must accept it", line, err, pg)
		case i >= len(accepted) && (err == nil || pg == ""):
			t.Errorf("%q: validate: %v; postgres: %q — both must refuse it", line, err, pg)
		}
	}
}
