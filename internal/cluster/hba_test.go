package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHBA(t *testing.T) {
	for _, tc := range []struct {
		line  string
		major int
		want  string // "" = accepted; else a substring of the error
	}{
		{"host all all 10.0.0.0/8 scram-sha-256", 15, ""},
		{"host shop shop 198.18.0.0/16 scram-sha-256", 15, ""},
		{"host all app 0.0.0.0/0 reject", 15, ""},
		{"hostnossl all all ::/0 md5", 15, "rejects every plaintext connection"},
		{"hostssl all all 10.0.0.0/8 scram-sha-256 clientcert=verify-full", 15, ""},
		{"hostssl all app 10.0.0.0/8 cert", 15, ""},
		{"hostssl all app 10.0.0.0/8 cert clientname=DN", 15, ""},
		{"host all all fd00::/8 scram-sha-256 # application pods", 15, ""},
		{"host db1,db2 +readers,app 10.1.0.0/16 scram-sha-256", 15, ""},
		{"host db1, db2 app 10.1.0.0/16 scram-sha-256", 15, ""},
		{`host "my db" "all" 10.1.0.0/16 scram-sha-256`, 15, ""},
		{"host all all 10.1.2.3 255.255.255.0 scram-sha-256", 15, ""},
		{"host all all .example.com scram-sha-256", 15, ""},
		{"host all all samenet scram-sha-256", 15, ""},
		{"host replication app 10.0.0.0/8 scram-sha-256", 15, ""},
		{"local all all trust", 15, ""},
		{"local all all peer", 15, ""},
		{"host all all 10.0.0.0/8 ldap ldapserver=ldap.example.com ldapprefix=\"cn=\" ldapsuffix=\",dc=example,dc=com\"", 15, ""},
		{"host all all 10.0.0.0/8 pam pamservice=postgresql", 15, ""},
		{"host all /^app_ 10.0.0.0/8 scram-sha-256", 16, ""},
		{"host all all 10.0.0.0/8 oauth issuer=https://idp.example.com scope=openid", 18, ""},
		{"host all all 10.0.0.0/8 oauth issuer=https://idp.example.com scope=openid", 17, "oauth exists from PostgreSQL 18 on, not in 17"},
		{"host all all 10.0.0.0/8 oauth scope=openid", 18, "oauth needs issuer= and scope="},
		{"host all all 10.0.0.0/8 oauth issuer=https://idp.example.com scope=openid ldapserver=x", 18, `option "ldapserver" does not apply to method oauth`},

		{"", 15, "must be one non-empty pg_hba.conf line"},
		{"# just a comment", 15, "a comment only"},
		{"hots all all 10.0.0.0/8 md5", 15, `unknown connection type "hots"`},
		{"host all all 10.0.0.0/8", 15, "too few fields: host DATABASE USER ADDRESS METHOD"},
		{"local all all", 15, "too few fields: local DATABASE USER METHOD"},
		{"host all all 10.0.0.0/8 scram", 15, `unknown authentication method "scram" (allowed: trust, reject, scram-sha-256`},
		{"host all all 10.0.0.0/33 md5", 15, `address "10.0.0.0/33" is not a valid CIDR`},
		{"host all all 10.0.0.300/8 md5", 15, "not a valid CIDR"},
		{"host all all 10.0.0.1 md5", 15, `address "10.0.0.1" has no mask: write it as CIDR (10.0.0.1/32)`},
		{"host all all 10.0.0.1 ffff:: md5", 15, "is not a mask of the same family"},
		{"host all all not_a_host! md5", 15, "neither an IP address"},
		{`host "all db all 10.0.0.0/8 md5`, 15, "unterminated double quote"},
		{"host db1, all 10.0.0.0/8 md5", 15, "too few fields"}, // "db1, all" is one list: the databases
		{"host all all 10.0.0.0/8 md5 map=x", 15, `option "map" does not apply to method md5 (it takes none)`},
		{"host all all 10.0.0.0/8 md5 x", 15, `option "x" is not NAME=VALUE`},
		{"host @dbs all 10.0.0.0/8 md5", 15, "reads names from a file"},
		{"host all @users 10.0.0.0/8 md5", 15, "reads names from a file"},
		{"include other.conf", 16, "includes a file"},
		{"host all /^app_ 10.0.0.0/8 md5", 15, "regular expressions need PostgreSQL 16"},
		{"host all /^(app 10.0.0.0/8 md5", 16, "not a valid regular expression"},
		{"hostssl all all 0.0.0.0/0 scram-sha-256", 15, ""},
		{"host all all 0.0.0.0/0 cert", 15, "needs a hostssl line"},
		{"hostgssenc all all 0.0.0.0/0 gss", 15, "Kerberos keytab"},
		{"host all all 0.0.0.0/0 gss", 15, "Kerberos keytab"},
		{"host all all 0.0.0.0/0 sspi", 15, "only on Windows"},
		{"host all all 0.0.0.0/0 peer", 15, "only on local sockets"},
		{"host all all 0.0.0.0/0 trust", 15, "trust over the network lets anyone"},
		{"host all all 10.0.0.0/8 ldap ldapserver=x ldapbasedn=dc=x ldapbinddn=cn=a ldapbindpasswd=secret", 15, "ldapbindpasswd is a credential"},
		{"host all all 10.0.0.0/8 radius radiusservers=r radiussecrets=s", 15, "radius needs radiussecrets, a credential"},
		{"host all all 10.0.0.0/8 ldap ldapserver=l", 15, "ldap needs ldapbasedn"},
		{"host all all 10.0.0.0/8 ldap ldapbasedn=dc=x", 15, "ldap needs ldapserver or ldapurl"},
		{"host all all 10.0.0.0/8 ldap ldapserver=l ldapprefix=cn= ldapbasedn=dc=x", 15, "not both"},
		{"local all all peer map=m", 15, "pg_ident.conf"},
		{"host all all 10.0.0.0/8 md5\x01", 15, "control character"},
	} {
		_, err := ParseHBA(tc.line, tc.major)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ParseHBA(%q) = %v, want accepted", tc.line, err)
		case tc.want != "" && err == nil:
			t.Errorf("ParseHBA(%q) accepted, want %q", tc.line, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("ParseHBA(%q) = %v, want it to contain %q", tc.line, err, tc.want)
		}
	}
}

func TestParseHBAFields(t *testing.T) {
	r, err := ParseHBA(`host  db1, "All" +readers,app 10.1.2.3 255.255.0.0 ldap ldapserver=l ldapport=389 ldapprefix=cn= # c`, 15)
	if err != nil {
		t.Fatal(err)
	}
	want := HBARule{Type: "host", Databases: []string{"db1", "All"}, Users: []string{"+readers", "app"}, Address: "10.1.2.3", Mask: "255.255.0.0",
		Method: "ldap", Options: map[string]string{"ldapserver": "l", "ldapport": "389", "ldapprefix": "cn="}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("rule (-want +got):\n%s", diff)
	}
}

// TestPgHBAValidatedAtLine: every bad rule at its line, in one pass; a
// cleartext password method over TCP is a warning.
func TestPgHBAValidatedAtLine(t *testing.T) {
	doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec:\n  imageName: pg:15.4\n  storage: {size: 1Gi}\n  postgresql:\n    pg_hba:\n" +
		"      - host all app 10.0.0.0/8 scram-sha-256\n" +
		"      - host all all 0.0.0.0/0 trust\n" +
		"      - host all app 10.0.0.0/8 password\n" +
		"      - host all all 10.0.0.0/8 scram\n"
	set, errs := load(t, File{Path: "a.yaml", Data: []byte(doc)})
	var got []string
	for _, d := range errs {
		got = append(got, d.String())
	}
	want := []string{
		"a.yaml:10:9: spec.postgresql.pg_hba[1]: trust over the network lets anyone who can reach the pod log in as any role named, without a password; use scram-sha-256",
		`a.yaml:12:9: spec.postgresql.pg_hba[3]: unknown authentication method "scram" (allowed: trust, reject, scram-sha-256, md5, password, gss, sspi, ident, peer, pam, ldap, radius, cert, oauth)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if len(set.Warnings) != 1 || set.Warnings[0].Field != "spec.postgresql.pg_hba[2]" || !strings.Contains(set.Warnings[0].Message, "clear text") {
		t.Errorf("warnings = %v", set.Warnings)
	}
}
