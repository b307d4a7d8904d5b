package conffile

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	conf, rejected := Render(Settings{
		Port: 5433, ListenAddresses: "*", SocketDir: "/run/pgsync",
		Parameters: map[string]string{
			"shared_buffers": "256MB", "Port": "1", "primary_conninfo": "host=evil",
			"work_mem": "it's", "bad name": "x", "wal_keep_size": "1GB",
			"application_name": "two\nlines", "cluster_name": "nul\x00",
		},
		PrimaryConnInfo: ConnInfo("db-0.x", 5432, ReplicationUser, "db-1", "/run/pgsync/pgpass"),
	})
	for _, want := range []string{
		"port = '5433'\n",
		"shared_buffers = '256MB'\n",
		"work_mem = 'it''s'\n",
		"wal_keep_size = '1GB'\n",
		"wal_retrieve_retry_interval = '200ms'\n",
		"primary_conninfo = 'host=db-0.x port=5432 user=streaming_replica dbname=postgres application_name=db-1 passfile=/run/pgsync/pgpass connect_timeout=5'\n",
		"log_destination = 'stderr'\n",
		"unix_socket_directories = '/run/pgsync'\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("missing %q in\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "evil") {
		t.Errorf("a Cluster parameter overrode primary_conninfo:\n%s", conf)
	}
	if strings.Contains(conf, "two") || strings.Contains(conf, "nul") {
		t.Errorf("a value with a control character was written:\n%s", conf)
	}
	if got := strings.Join(rejected, ","); got != "Port,application_name,bad name,cluster_name,primary_conninfo" {
		t.Errorf("rejected = %q", got)
	}
	target, _ := Render(Settings{Port: 5432, ListenAddresses: "*", SocketDir: "/tmp", PrimaryConnInfo: "host=x", TakeoverRetry: true})
	if !strings.Contains(target, "wal_retrieve_retry_interval = '10ms'\n") {
		t.Errorf("a switchover target keeps the slow WAL retry:\n%s", target)
	}
	primary, _ := Render(Settings{Port: 5432, ListenAddresses: "*", SocketDir: "/tmp"})
	if strings.Contains(primary, "primary_conninfo") {
		t.Errorf("primary config carries primary_conninfo:\n%s", primary)
	}
	again, _ := Render(Settings{Port: 5432, ListenAddresses: "*", SocketDir: "/tmp"})
	if again != primary {
		t.Error("Render is not deterministic")
	}
}

func TestConnInfoQuoting(t *testing.T) {
	got := ConnInfo("h", 1, "o'brien", "", "/a b/pass")
	want := `host=h port=1 user='o\'brien' dbname=postgres passfile='/a b/pass' connect_timeout=5`
	if got != want {
		t.Errorf("ConnInfo = %s, want %s", got, want)
	}
}

func TestPassFile(t *testing.T) {
	got := PassFile(PassEntry{"*", "*", "streaming_replica", `p:w\d`})
	if got != "*:*:*:streaming_replica:p\\:w\\\\d\n" {
		t.Errorf("PassFile = %q", got)
	}
}

func TestHBA(t *testing.T) {
	user := []string{"host all app 10.0.0.0/8 reject", "hostssl all all 0.0.0.0/0 scram-sha-256"}
	conf, first := HBA(user)
	if strings.Contains(conf, "trust") {
		t.Error("pg_hba.conf must not use trust")
	}
	lines := strings.Split(conf, "\n")
	for i, u := range user {
		if got := lines[first-1+i]; got != u {
			t.Errorf("line %d = %q, want user line %d %q", first+i, got, i, u)
		}
	}
	// pgsync's own rules come before every user line, the defaults after.
	index := func(rule string) int {
		for i, l := range lines {
			if strings.Join(strings.Fields(l), " ") == rule {
				return i + 1
			}
		}
		t.Fatalf("no rule %q in\n%s", rule, conf)
		return 0
	}
	for _, own := range []string{
		"local all postgres peer map=pgsync",
		"local replication streaming_replica scram-sha-256",
		"host replication streaming_replica 0.0.0.0/0 scram-sha-256",
		"host replication streaming_replica ::/0 scram-sha-256",
		"host postgres streaming_replica 0.0.0.0/0 scram-sha-256",
		"host postgres streaming_replica ::/0 scram-sha-256",
	} {
		if index(own) >= first {
			t.Errorf("%q comes after the user lines", own)
		}
	}
	for _, def := range []string{"local all all scram-sha-256", "host all all 0.0.0.0/0 scram-sha-256", "host all all ::/0 scram-sha-256"} {
		if index(def) < first+len(user) {
			t.Errorf("default %q comes before a user line", def)
		}
	}
	injected, firstInj := HBA([]string{"host all app 10.0.0.0/8 reject\nhost all all 0.0.0.0/0 trust", "host all b 10.0.0.0/8 reject"})
	injLines := strings.Split(injected, "\n")
	if strings.Contains(injected, "trust") || injLines[firstInj-1] != RefusedHBALine || injLines[firstInj] != "host all b 10.0.0.0/8 reject" {
		t.Errorf("a line with a newline added rules or moved the next one:\n%s", injected)
	}
	none, firstNone := HBA(nil)
	if firstNone != first || strings.Count(none, "\n") != strings.Count(conf, "\n")-len(user) {
		t.Errorf("without user lines: first %d, %d lines", firstNone, strings.Count(none, "\n"))
	}
}

func TestRenderTLS(t *testing.T) {
	plain, _ := Render(Settings{Port: 5432, ListenAddresses: "*", SocketDir: "/run/pgsync"})
	if strings.Contains(plain, "ssl") {
		t.Errorf("ssl settings without TLS:\n%s", plain)
	}
	conf, rejected := Render(Settings{Port: 5432, ListenAddresses: "*", SocketDir: "/run/pgsync",
		Parameters: map[string]string{"ssl": "off", "ssl_cert_file": "/tmp/evil.crt"},
		TLS:        &ServerTLS{CertFile: "/run/pgsync/tls/server.crt", KeyFile: "/run/pgsync/tls/server.key", CAFile: "/run/pgsync/tls/ca.crt"},
		PrimaryConnInfo: ConnInfoTLS("db-0.x", 5432, ReplicationUser, "db-1", "", &ClientTLS{RootCert: "/r/ca.crt",
			CertFile: "/r/replica.crt", KeyFile: "/r/replica.key", RequireAuth: "none"}),
	})
	for _, want := range []string{
		"ssl = 'on'\n", "ssl_cert_file = '/run/pgsync/tls/server.crt'\n", "ssl_key_file = '/run/pgsync/tls/server.key'\n",
		"ssl_ca_file = '/run/pgsync/tls/ca.crt'\n",
		"primary_conninfo = 'host=db-0.x port=5432 user=streaming_replica dbname=postgres application_name=db-1 sslmode=verify-full sslrootcert=/r/ca.crt sslcert=/r/replica.crt sslkey=/r/replica.key require_auth=none connect_timeout=5'\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("missing %q in\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "evil") || strings.Join(rejected, ",") != "ssl,ssl_cert_file" {
		t.Errorf("the Cluster's ssl parameters were not refused (rejected %v):\n%s", rejected, conf)
	}
}

func TestHBATLS(t *testing.T) {
	conf, first := HBAWith([]string{"host all app 10.0.0.0/8 scram-sha-256"}, true)
	lines := strings.Split(conf, "\n")
	var own []string
	for _, l := range lines[:first-1] {
		if l != "" && !strings.HasPrefix(l, "#") {
			own = append(own, strings.Join(strings.Fields(l), " "))
		}
	}
	want := []string{
		"local all postgres peer map=pgsync",
		"local replication streaming_replica scram-sha-256",
		"hostssl replication streaming_replica 0.0.0.0/0 cert",
		"hostssl replication streaming_replica ::/0 cert",
		"hostssl postgres streaming_replica 0.0.0.0/0 cert",
		"hostssl postgres streaming_replica ::/0 cert",
		"hostnossl all all 0.0.0.0/0 reject",
		"hostnossl all all ::/0 reject",
	}
	if strings.Join(own, "\n") != strings.Join(want, "\n") {
		t.Errorf("pgsync's own rules:\n%s\nwant\n%s", strings.Join(own, "\n"), strings.Join(want, "\n"))
	}
	if lines[first-1] != "host all app 10.0.0.0/8 scram-sha-256" {
		t.Errorf("user line at %d: %q", first, lines[first-1])
	}
	for _, l := range lines[first:] {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "host" {
			t.Errorf("a default rule accepts plaintext: %q", l)
		}
	}
}
