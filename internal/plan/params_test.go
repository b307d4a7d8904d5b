package plan

import (
	"fmt"
	"strings"
	"testing"
)

// TestCheckParameterValues: every refusal is positioned at the value,
// names the field and says why; everything valid passes; one pass
// reports every problem.
func TestCheckParameterValues(t *testing.T) {
	const img15 = "localhost:5000/postgresql:15.18"
	const img19 = "ghcr.io/cloudnative-pg/postgresql:19-minimal-trixie"
	for _, tc := range []struct {
		name, value string
		image       string // default img15
		want        string // "" = accepted; else a substring of the message
	}{
		{"work_mem", "64MB", "", ""},
		{"work_mem", "lots", "", `invalid value for work_mem (integer): "lots" is not a number`},
		{"work_mem", "64mb", "", "valid units are TB, GB, MB, kB, B (case-sensitive)"},
		{"work_mem", "1", "", "outside the allowed range 64 (kB)"},
		{"max_connections", "200", "", ""},
		{"max_connections", "two hundred", "", "is not a number"},
		{"autovacuum", "perhaps", "", "want on, off, true, false, yes, no, 1 or 0"},
		{"log_statement", "everything", "", `is not one of "none", "ddl", "mod", "all"`},
		{"work_mem", "1", img131, "outside the allowed range 64 (kB)"}, // 13's own bounds
		{"maintenance_work_mem", "512kB", "ghcr.io/cloudnative-pg/postgresql:16.4", "outside the allowed range 1024 (kB)"},
		{"maintenance_work_mem", "512kB", "ghcr.io/cloudnative-pg/postgresql:17.6", ""}, // 64 kB from 17 on
		{"work_mem", "64mb", img131, "valid units"},
		{"application_name", "a\nb", "", "control character (U+000A at byte 1)"},
		{"application_name", "a\x00b", "", "control character (U+0000"},
		{"application_name", "a\rb", "", "control character (U+000D"},
		{"application_name", "tab\there", "", "control character (U+0009"},
		{"application_name", "it's", "", "unbalanced single quote"},
		{"search_path", `"$user, public`, "", "unbalanced double quote"},
		{"search_path", `"$user", public`, "", ""},
		{"archive_command", "cp %p /tmp/%f", "", `"archive_command" is managed by pgsync and cannot be set (it runs a shell command`},
		{"restore_command", "cp /x/%f %p", "", `"restore_command" is managed by pgsync and cannot be set (it runs a shell command`},
		{"archive_cleanup_command", "true", "", "runs a shell command"},
		{"recovery_end_command", "true", "", "runs a shell command"},
		{"archive_mode", "on", "", "WAL archiving is not a pgsync feature yet"},
		{"archive_library", "basic_archive", "", "loads a library"},
		{"ssl_passphrase_command", "echo x", "", "TLS is configured by pgsync"},
		{"ssl", "on", "", "TLS is configured by pgsync"},
		{"ssl_cert_file", "/tmp/c.pem", "", "TLS is configured by pgsync"},
		{"SSL_Ciphers", "HIGH", "", "TLS is configured by pgsync"},
		{"dynamic_library_path", "/tmp", "", "load libraries from anywhere"},
		{"log_rotation_age", "1d", "", "there is no log file"},
		{"unix_socket_permissions", "0777", "", "owns its socket directory"},
		{"full_page_writes", "off", "", "pg_rewind"},
		{"transaction_read_only", "on", "", "refuses in a configuration file"},
		{"shared_preload_libraries", "pg_stat_statements, auto_explain", "", ""},
		{"shared_preload_libraries", `"pg_stat_statements",pgaudit`, "", ""},
		{"shared_preload_libraries", "/tmp/evil.so", "", `"/tmp/evil.so" is not a plain library name: shared_preload_libraries takes names`},
		{"shared_preload_libraries", "pg_stat_statements,$libdir/evil", "", `"$libdir/evil" is not a plain library name`},
		{"session_preload_libraries", "../../tmp/x", "", "not a plain library name"},
		{"local_preload_libraries", "plugins/x", "", "not a plain library name"},
		{"jit_provider", "/tmp/jit", "", "not a plain library name"},
		{"jit_provider", "llvmjit", "", ""},
		// PostgreSQL 19 (tables from 19rc1): its own parameters and bounds.
		{"io_min_workers", "2", img19, ""},
		{"io_min_workers", "2", "", `"io_min_workers" does not exist in PostgreSQL 15 (it exists in 19)`},
		{"io_workers", "3", img19, `"io_workers" does not exist in PostgreSQL 19 (it exists in 18)`},
		{"escape_string_warning", "off", img19, "does not exist in PostgreSQL 19"},
		{"log_min_messages", "warning, checkpointer:debug1", img19, ""},
		{"autovacuum_vacuum_score_weight", "lots", img19, "is not a number"},
		{"hosts_file", "/tmp/pg_hosts.conf", img19, "TLS is configured by pgsync"},
		{"ssl_sni", "on", img19, "TLS is configured by pgsync"},
		{"output_plugin_libraries", "pgoutput, wal2json", img19, ""},
		{"output_plugin_libraries", "/tmp/evil.so", img19, "not a plain library name"},
		{"wal_level", "minimal", "", `"minimal" cannot stream to standbys`},
		{"wal_level", "logical", "", ""},
		{"max_wal_senders", "3", "", "3 is too few for 3 instances"},
		{"max_wal_senders", "0x4", "", ""},
		{"pg_stat_statements.max", "10000", "", ""},
		{"pg_stat_statements.save", "maybe", "", "want on, off"},
		{"myext.anything", "x", "", ""}, // unknown custom: a warning, any text
		{"myext.anything", "x\ny", "", "control character"},
	} {
		t.Run(fmt.Sprintf("%s=%q", tc.name, tc.value), func(t *testing.T) {
			image := tc.image
			if image == "" {
				image = img15
			}
			c := mustLoad(t, website(image, 3, fmt.Sprintf("  postgresql:\n    parameters:\n      %s: %q\n", tc.name, tc.value)))[0]
			_, problems := CheckParameters(c)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Fatalf("refused: %v", problems)
			case tc.want == "":
				return
			case len(problems) != 1:
				t.Fatalf("got %d problems %v, want one containing %q", len(problems), problems, tc.want)
			}
			got := problems[0].String()
			prefix := "c0.yaml:15:"
			field := "spec.postgresql.parameters." + tc.name + ": "
			if !strings.HasPrefix(got, prefix) || !strings.Contains(got, field) || !strings.Contains(got, tc.want) {
				t.Errorf("problem = %q, want %q…%q…%q", got, prefix, field, tc.want)
			}
		})
	}
}

func TestCheckParametersReportsEveryProblem(t *testing.T) {
	c := mustLoad(t, website("localhost:5000/postgresql:15.18", 3, "  postgresql:\n    parameters:\n"+
		"      archive_command: \"cp %p /x\"\n"+
		"      work_mem: \"lots\"\n"+
		"      shared_preload_libraries: \"/tmp/evil.so\"\n"+
		"      max_connections: \"100\"\n"+
		"      application_name: \"a\\nb\"\n"))[0]
	_, problems := CheckParameters(c)
	var fields []string
	for _, p := range problems {
		fields = append(fields, fmt.Sprintf("%d %s", p.Pos.Line, p.Field))
	}
	want := []string{
		"19 spec.postgresql.parameters.application_name",
		"15 spec.postgresql.parameters.archive_command",
		"17 spec.postgresql.parameters.shared_preload_libraries",
		"16 spec.postgresql.parameters.work_mem",
	}
	if strings.Join(fields, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems at\n%s\nwant\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
	}
}

// YAML decodes only UTF-8; the check guards other callers of CheckParameters.
func TestCheckTextRefusesInvalidUTF8(t *testing.T) {
	if err := checkText("\xff"); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("checkText(\\xff) = %v", err)
	}
}
