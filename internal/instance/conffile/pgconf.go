// Package conffile renders the part of PostgreSQL's configuration that the
// instance manager owns: `pgsync.conf` (included from postgresql.conf) with
// the Cluster's parameters and the replication settings, and pg_hba.conf.
// Everything here is pure text in, text out.
//
// It must not import `k8s.io/client-go/...`, `github.com/jackc/pgx/...` or
// `pgsync/...`.
package conffile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FileName is the generated file inside PGDATA.
const FileName = "pgsync.conf"

// IncludeLine is appended once to postgresql.conf.
const IncludeLine = "include_if_exists = '" + FileName + "'\t# written by pgsync: do not edit pgsync.conf"

// Fixed are parameters the instance manager sets itself; the Cluster may not
// override them (they decide where postgres listens, logs and follows).
var fixed = map[string]bool{
	"data_directory": true, "config_file": true, "hba_file": true, "ident_file": true,
	"external_pid_file": true, "port": true, "listen_addresses": true,
	"unix_socket_directories": true, "logging_collector": true, "log_destination": true,
	"log_line_prefix": true, "primary_conninfo": true, "primary_slot_name": true,
	"promote_trigger_file": true, "recovery_target_timeline": true,
	"wal_retrieve_retry_interval": true, "password_encryption": true,
	"synchronous_standby_names": true,
	// TLS (the manager's certificates).
	"ssl": true, "ssl_cert_file": true, "ssl_key_file": true, "ssl_ca_file": true,
}

// FixedNames lists the parameters the manager sets itself and ignores in
// the Cluster's (sorted): the planner refuses each of them at validate
// time, and a contract test holds the two lists together.
func FixedNames() []string {
	out := make([]string, 0, len(fixed))
	for name := range fixed {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// defaults apply unless the Cluster sets them.
var defaults = map[string]string{
	"wal_level":                    "replica",
	"hot_standby":                  "on",
	"max_wal_senders":              "10",
	"max_replication_slots":        "10",
	"wal_keep_size":                "512MB",
	"wal_receiver_status_interval": "1s",
	"hot_standby_feedback":         "off",
	"log_checkpoints":              "on",
}

// Settings is the input to Render.
type Settings struct {
	Port            int
	ListenAddresses string
	SocketDir       string
	// Parameters from the Cluster spec (postgresql.parameters).
	Parameters map[string]string
	// PrimaryConnInfo is set for a standby (see ConnInfo); empty on a
	// primary.
	PrimaryConnInfo string
	// TakeoverRetry: this standby is the switchover target (see Render).
	TakeoverRetry bool
	// SynchronousStandbyNames is the primary's synchronous_standby_names
	// (the manager derives it from spec.postgresql.synchronous and the
	// standbys that stream); "" is asynchronous replication.
	SynchronousStandbyNames string
	// PrimarySlotName is a standby's primary_slot_name ("": none).
	PrimarySlotName string
	// TLS, when set, turns ssl on with these files.
	TLS *ServerTLS
}

// ServerTLS are the server's TLS files: its certificate and key, and the
// CA that client certificates (the cert method) must be signed by.
type ServerTLS struct{ CertFile, KeyFile, CAFile string }

// Render returns the content of pgsync.conf and the parameter names it
// refused: pgsync owns them, or the value holds a control character (a
// newline would end the line and make postgres refuse the whole file;
// validation refuses these first).
func Render(s Settings) (string, []string) {
	vals := maps.Clone(defaults)
	var rejected []string
	for k, v := range s.Parameters {
		name := strings.ToLower(strings.TrimSpace(k))
		if fixed[name] || !validName(name) || strings.ContainsFunc(v, isControl) {
			rejected = append(rejected, k)
			continue
		}
		vals[name] = v
	}
	vals["port"] = fmt.Sprint(s.Port)
	vals["listen_addresses"] = s.ListenAddresses
	vals["unix_socket_directories"] = s.SocketDir
	vals["logging_collector"] = "off"
	vals["log_destination"] = "stderr"
	vals["log_line_prefix"] = LogLinePrefix
	vals["password_encryption"] = "scram-sha-256"
	vals["recovery_target_timeline"] = "latest"
	// A standby waits this long before it retries the WAL stream after the
	// primary went away. A promotion noticed while the WAL receiver is
	// being restarted waits out this interval too (the 5 s default is the
	// stall of DESIGN §6), so a switchover target renders a much shorter
	// one while it takes over; the others keep one that does not flood the
	// log with reconnection attempts during an outage.
	vals["wal_retrieve_retry_interval"] = "200ms"
	if s.TakeoverRetry {
		vals["wal_retrieve_retry_interval"] = "10ms"
	}
	if s.PrimaryConnInfo != "" {
		vals["primary_conninfo"] = s.PrimaryConnInfo
	}
	vals["synchronous_standby_names"] = s.SynchronousStandbyNames
	if s.PrimarySlotName != "" {
		vals["primary_slot_name"] = s.PrimarySlotName
	}
	// ssl and its files are reloadable (context sighup): a renewed
	// certificate is picked up by a reload.
	if t := s.TLS; t != nil {
		vals["ssl"] = "on"
		vals["ssl_cert_file"], vals["ssl_key_file"], vals["ssl_ca_file"] = t.CertFile, t.KeyFile, t.CAFile
	}

	var b strings.Builder
	b.WriteString("# Generated by the pgsync instance manager. Edits are overwritten.\n")
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		fmt.Fprintf(&b, "%s = %s\n", k, Quote(vals[k]))
	}
	slices.Sort(rejected)
	return b.String(), rejected
}

// LogLinePrefix is what the log relay parses (see package pglog).
const LogLinePrefix = "%m [%p] "

// Quote renders a configuration value as a single-quoted string.
func Quote(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func validName(n string) bool {
	if n == "" {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ConnInfo renders a libpq connection string for primary_conninfo,
// pg_basebackup and pg_rewind. Passwords never go in: passfile names a
// password file in the run directory.
func ConnInfo(host string, port int, user, appName, passfile string) string {
	return ConnInfoTLS(host, port, user, appName, passfile, nil)
}

// ClientTLS is how a connection of the manager's uses TLS: the server is
// verified (sslmode=verify-full: signed by RootCert and naming the host
// connected to), and with CertFile and KeyFile set the client presents a
// certificate (the cert method). RequireAuth, when set (libpq 16 and
// later), is the only authentication the client accepts from the server.
type ClientTLS struct {
	RootCert, CertFile, KeyFile string
	RequireAuth                 string
}

// ConnInfoTLS is ConnInfo with t's TLS settings (nil: as ConnInfo,
// libpq's default sslmode).
func ConnInfoTLS(host string, port int, user, appName, passfile string, t *ClientTLS) string {
	kv := [][2]string{{"host", host}, {"port", fmt.Sprint(port)}, {"user", user}, {"dbname", "postgres"}}
	if appName != "" {
		kv = append(kv, [2]string{"application_name", appName})
	}
	if passfile != "" {
		kv = append(kv, [2]string{"passfile", passfile})
	}
	if t != nil {
		kv = append(kv, [2]string{"sslmode", "verify-full"}, [2]string{"sslrootcert", t.RootCert})
		if t.CertFile != "" {
			kv = append(kv, [2]string{"sslcert", t.CertFile}, [2]string{"sslkey", t.KeyFile})
		}
		if t.RequireAuth != "" {
			kv = append(kv, [2]string{"require_auth", t.RequireAuth})
		}
	}
	kv = append(kv, [2]string{"connect_timeout", "5"})
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + quoteConnValue(p[1])
	}
	return strings.Join(parts, " ")
}

// PgxTLS renders t's settings for pgx (which knows no require_auth;
// verify-full makes a server without the CA's certificate fail before it
// can ask for anything); nil is "sslmode=prefer", as before TLS.
func PgxTLS(t *ClientTLS) string {
	if t == nil {
		return "sslmode=prefer"
	}
	s := "sslmode=verify-full sslrootcert=" + quoteConnValue(t.RootCert)
	if t.CertFile != "" {
		s += " sslcert=" + quoteConnValue(t.CertFile) + " sslkey=" + quoteConnValue(t.KeyFile)
	}
	return s
}

func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
}

// ReplicationUser is the role standbys stream as.
const ReplicationUser = "streaming_replica"

// HBA renders pg_hba.conf: SCRAM everywhere, no trust, first match wins.
// In order: pgsync's own rules, which no user line may shadow — the
// manager's session over the local socket, replication as
// streaming_replica (standbys, pg_basebackup), and streaming_replica's
// connections to the postgres database that pg_rewind and the rejoin's
// timeline check make from the other instances (it has EXECUTE on the
// functions they use: ensureRejoinGrants) — the superuser has no rule of
// its own, so a user line may refuse its remote logins; then user, the Cluster's
// spec.postgresql.pg_hba lines, as written; then the defaults for every
// other connection, which user lines may therefore narrow or widen. first
// is the line number (from 1) of user[0] in conf.
func HBA(user []string) (conf string, first int) { return HBAWith(user, false) }

// HBAWith is HBA, with tls the rules of a server with TLS on: every remote
// connection is hostssl (a plaintext one is rejected before any user
// rule), and replication as streaming_replica is authenticated by its
// client certificate (cert), not by a password.
func HBAWith(user []string, tls bool) (conf string, first int) {
	return HBAFor(user, HBAOptions{TLS: tls, SuperuserAccess: true})
}

// HBAOptions are what pg_hba.conf depends on besides the user's lines.
type HBAOptions struct {
	// TLS: see HBAWith.
	TLS bool
	// SuperuserAccess (spec.enableSuperuserAccess): off, every remote
	// login as the superuser is rejected among pgsync's own rules, before
	// any user line (its password is NULL too, so none would succeed;
	// the rules also refuse a password someone set by hand).
	SuperuserAccess bool
}

// HBAFor renders pg_hba.conf as HBA does, with o's options.
func HBAFor(user []string, o HBAOptions) (conf string, first int) {
	own, defaults := hbaOwn, hbaDefaults
	if o.TLS {
		own, defaults = hbaOwnTLS, hbaDefaultsTLS
	}
	if !o.SuperuserAccess {
		own = strings.TrimSuffix(own, hbaUserHeader) + hbaNoSuperuser + hbaUserHeader
	}
	var b strings.Builder
	b.WriteString(own)
	first = strings.Count(own, "\n") + 1
	for _, l := range user {
		if strings.ContainsFunc(l, func(r rune) bool { return r != '\t' && isControl(r) }) {
			// A newline would add rules (and shift the line numbers
			// rejectedHBA names); validation refuses these. Written as a
			// line postgres refuses, so the refusal is seen.
			l = RefusedHBALine
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(defaults)
	return b.String(), first
}

// RefusedHBALine stands in for a user line holding a control character:
// postgres refuses it (unknown connection type), so /status names it.
const RefusedHBALine = "pgsync-refused-a-line-with-a-control-character"

// IdentMap is the pg_ident.conf map of the manager's local sessions: its
// OS user may log in as the superuser over the local socket, by peer
// authentication (no password: the superuser may have none).
const IdentMap = "pgsync"

// Ident renders pg_ident.conf: osUser, the OS user the manager and
// postgres run as, is the superuser in map IdentMap.
func Ident(osUser string) string {
	u := osUser
	if u == "" || strings.ContainsAny(u, " \t\"#") {
		u = `"` + strings.ReplaceAll(u, `"`, `""`) + `"`
	}
	return "# Generated by the pgsync instance manager. Edits are overwritten.\n" +
		"# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n" +
		IdentMap + "  " + u + "  postgres\n"
}

const hbaUserHeader = "# spec.postgresql.pg_hba\n"

const hbaNoSuperuser = `# no remote login as the superuser (enableSuperuserAccess is off)
host       all          postgres           0.0.0.0/0    reject
host       all          postgres           ::/0         reject
host       replication  postgres           0.0.0.0/0    reject
host       replication  postgres           ::/0         reject
`

const hbaOwn = `# Generated by the pgsync instance manager. Edits are overwritten.
# TYPE  DATABASE     USER               ADDRESS      METHOD
# pgsync's own connections
local   all          postgres                        peer map=` + IdentMap + `
local   replication  ` + ReplicationUser + `                    scram-sha-256
host    replication  ` + ReplicationUser + `  0.0.0.0/0    scram-sha-256
host    replication  ` + ReplicationUser + `  ::/0         scram-sha-256
host    postgres     ` + ReplicationUser + `  0.0.0.0/0    scram-sha-256
host    postgres     ` + ReplicationUser + `  ::/0         scram-sha-256
# spec.postgresql.pg_hba
`

const hbaDefaults = `# defaults
local   all          all                             scram-sha-256
host    replication  postgres           0.0.0.0/0    scram-sha-256
host    replication  postgres           ::/0         scram-sha-256
host    all          all                0.0.0.0/0    scram-sha-256
host    all          all                ::/0         scram-sha-256
`

const hbaOwnTLS = `# Generated by the pgsync instance manager. Edits are overwritten.
# TYPE     DATABASE     USER               ADDRESS      METHOD
# pgsync's own connections
local      all          postgres                        peer map=` + IdentMap + `
local      replication  ` + ReplicationUser + `                    scram-sha-256
hostssl    replication  ` + ReplicationUser + `  0.0.0.0/0    cert
hostssl    replication  ` + ReplicationUser + `  ::/0         cert
hostssl    postgres     ` + ReplicationUser + `  0.0.0.0/0    cert
hostssl    postgres     ` + ReplicationUser + `  ::/0         cert
# no plaintext over the network, whatever the rules below say
hostnossl  all          all                0.0.0.0/0    reject
hostnossl  all          all                ::/0         reject
# spec.postgresql.pg_hba
`

const hbaDefaultsTLS = `# defaults
local      all          all                             scram-sha-256
hostssl    replication  postgres           0.0.0.0/0    scram-sha-256
hostssl    replication  postgres           ::/0         scram-sha-256
hostssl    all          all                0.0.0.0/0    scram-sha-256
hostssl    all          all                ::/0         scram-sha-256
`

// PassFile renders a libpq password file line for host:port:*:user.
func PassFile(entries ...PassEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%s:%s:*:%s:%s\n", esc(e.Host), e.Port, esc(e.User), esc(e.Password))
	}
	return b.String()
}

// PassEntry is one line of a password file ("*" matches anything).
type PassEntry struct{ Host, Port, User, Password string }

func esc(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), ":", `\:`)
}
