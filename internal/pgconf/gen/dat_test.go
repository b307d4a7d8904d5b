package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDat(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []map[string]string
		err       string
	}{
		{name: "empty", src: "# nothing\n[\n]\n", want: nil},
		{name: "records, comments, trailing commas", src: `
# header comment
[
# a comment before a record
{ name => 'a', type => 'bool', # a comment inside
  boot_val => 'true', },
{ name => 'b', type => 'int', min => '0', max => 'INT_MAX / 2' }
]
`, want: []map[string]string{
			{"name": "a", "type": "bool", "boot_val": "true"},
			{"name": "b", "type": "int", "min": "0", "max": "INT_MAX / 2"},
		}},
		{name: "single-quote escapes", src: `[{ name => 'q', short_desc => 'Sets the server\'s "x" to \\ or #, not a comment.' }]`,
			want: []map[string]string{{"name": "q", "short_desc": `Sets the server's "x" to \ or #, not a comment.`}}},
		// Forms the real file has: a C comment between records, one
		// inside a value (evalNum's tokens drop it), a # comment after
		// a value's comma.
		{name: "C comments and trailing comments", src: "[\n/* see max_wal_senders */\n{ name => 'max_replication_slots', max => 'MAX_BACKENDS /* XXX? */',\n" +
			"  options => 'ssl_protocol_versions_info + 1', # don't allow PG_TLS_ANY\n},\n]\n",
			want: []map[string]string{{"name": "max_replication_slots", "max": "MAX_BACKENDS /* XXX? */", "options": "ssl_protocol_versions_info + 1"}}},
		{name: "unterminated C comment", src: "[\n/* open", err: "want { opening a record, or ]"},
		{name: "other backslashes are literal", src: `[{ name => 'r', boot_val => '\n' }]`,
			want: []map[string]string{{"name": "r", "boot_val": `\n`}}},
		{name: "no array", src: "{ name => 'a' }", err: "line 1: want [ opening the array"},
		{name: "missing arrow", src: "[\n{ name 'a' }]", err: "line 2: name: want =>"},
		{name: "double-quoted value", src: `[{ name => "a" }]`, err: "want a single-quoted value"},
		{name: "unterminated value", src: "[{ name => 'a }]", err: "unterminated quoted value"},
		{name: "missing comma", src: "[{ name => 'a' type => 'bool' }]", err: "name: want , or }"},
		{name: "key twice", src: "[{ name => 'a', name => 'b' }]", err: "name given twice"},
		{name: "text after the array", src: "[]\n1;\n", err: "line 2: text after the closing ]"},
		{name: "records not separated", src: "[{ name => 'a' } { name => 'b' }]", err: "want , or ] after a record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := parseDat(tc.src)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []map[string]string
			for _, r := range recs {
				got = append(got, r.Fields)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// datExcerpt is written after the form of PostgreSQL 19's
// guc_parameters.dat: one entry of each type, a unit, a macro bound, an
// enum naming an options array, a GUC_NO_SHOW_ALL entry and an ifdef one.
const datExcerpt = `
[
{ name => 'allow_alter_system', type => 'bool', context => 'PGC_SIGHUP', group => 'COMPAT_OPTIONS_OTHER',
  short_desc => 'Allows running the ALTER SYSTEM command.',
  flags => 'GUC_DISALLOW_IN_AUTO_FILE',
  variable => 'AllowAlterSystem',
  boot_val => 'true',
},

/* see max_wal_senders */
{ name => 'io_max_workers', type => 'int', context => 'PGC_SIGHUP', group => 'RESOURCES_IO',
  short_desc => 'Maximum number of I/O worker processes.',
  variable => 'io_max_workers',
  boot_val => '8',
  min => '1',
  max => 'MAX_IO_WORKERS /* XXX? */',
},

{ name => 'archive_timeout', type => 'int', context => 'PGC_SIGHUP', group => 'WAL_ARCHIVING',
  short_desc => 'Sets the amount of time to wait before forcing a switch to the next WAL file.',
  flags => 'GUC_UNIT_S',
  variable => 'XLogArchiveTimeout',
  boot_val => '0',
  min => '0',
  max => 'INT_MAX / 2',
},

{ name => 'autovacuum_vacuum_score_weight', type => 'real', context => 'PGC_SIGHUP', group => 'VACUUM_AUTOVACUUM',
  short_desc => 'Scaling factor.',
  variable => 'autovacuum_vacuum_score_weight',
  boot_val => '1.0',
  min => '0.0',
  max => '10.0',
},

{ name => 'hosts_file', type => 'string', context => 'PGC_POSTMASTER', group => 'FILE_LOCATIONS',
  short_desc => 'Sets the server\'s "hosts" configuration file.',
  flags => 'GUC_SUPERUSER_ONLY',
  variable => 'HostsFileName',
  boot_val => 'NULL',
},

{ name => 'wal_level', type => 'enum', context => 'PGC_POSTMASTER', group => 'WAL_SETTINGS',
  short_desc => 'Sets the level of information written to the WAL.',
  variable => 'wal_level',
  boot_val => 'WAL_LEVEL_REPLICA',
  options => 'wal_level_options', # a trailing comment
},

{ name => 'ssl_min_protocol_version', type => 'enum', context => 'PGC_SIGHUP', group => 'CONN_AUTH_SSL',
  short_desc => 'Sets the minimum SSL/TLS protocol version to use.',
  flags => 'GUC_SUPERUSER_ONLY',
  variable => 'ssl_min_protocol_version',
  boot_val => 'PG_TLS1_2_VERSION',
  options => 'ssl_protocol_versions_info + 1', # don't allow PG_TLS_ANY
},

{ name => 'is_superuser', type => 'bool', context => 'PGC_INTERNAL', group => 'UNGROUPED',
  short_desc => 'Shows whether the current user is a superuser.',
  flags => 'GUC_REPORT | GUC_NO_SHOW_ALL | GUC_NO_RESET_ALL',
  variable => 'current_role_is_superuser',
  boot_val => 'false',
},

{ name => 'debug_deadlocks', type => 'bool', context => 'PGC_SUSET', group => 'DEVELOPER_OPTIONS',
  short_desc => 'Dumps information about all current locks when a deadlock timeout occurs.',
  flags => 'GUC_NOT_IN_SAMPLE',
  variable => 'Debug_deadlocks',
  boot_val => 'false',
  ifdef => 'LOCK_DEBUG',
},

{ name => 'ssl_library', type => 'string', context => 'PGC_INTERNAL', group => 'PRESET_OPTIONS',
  short_desc => 'Shows the name of the SSL library.',
  flags => 'GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE',
  variable => 'ssl_library',
  boot_val => 'SSL_LIBRARY',
  ifdef => 'USE_SSL',
},

]
`

func TestTranscribeDat(t *testing.T) {
	tree := t.TempDir()
	write := func(rel, body string) {
		t.Helper()
		p := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("include/storage/io_worker.h", "#define MAX_IO_WORKERS 32\n")
	write("backend/access/rmgrdesc/xlogdesc.c", `const struct config_enum_entry wal_level_options[] = {
	{"minimal", 0, false},
	{"replica", 1, false},
	{"archive", 1, true},
	{"logical", 2, false},
	{NULL, 0, false}
};
`)
	write("backend/utils/misc/guc_tables.c", `static const struct config_enum_entry ssl_protocol_versions_info[] = {
	{"", PG_TLS_ANY, false},
	{"TLSv1", PG_TLS1_VERSION, false},
	{"TLSv1.2", PG_TLS1_2_VERSION, false},
	{"TLSv1.3", PG_TLS1_3_VERSION, false},
	{NULL, 0, false}
};
`)
	write("backend/utils/misc/guc_parameters.dat", datExcerpt)
	got, err := transcribeDat(filepath.Join(tree, "backend/utils/misc/guc_parameters.dat"), tree)
	if err != nil {
		t.Fatal(err)
	}
	want := []guc{
		{Name: "allow_alter_system", Context: "sighup", VarType: "bool"},
		{Name: "archive_timeout", Context: "sighup", VarType: "integer", Unit: "s", Min: "0", Max: "1073741823"},
		{Name: "autovacuum_vacuum_score_weight", Context: "sighup", VarType: "real", Min: "0", Max: "10"},
		{Name: "hosts_file", Context: "postmaster", VarType: "string"},
		{Name: "io_max_workers", Context: "sighup", VarType: "integer", Min: "1", Max: "32"},
		{Name: "ssl_library", Context: "internal", VarType: "string"},
		{Name: "ssl_min_protocol_version", Context: "sighup", VarType: "enum", Enum: []string{"TLSv1", "TLSv1.2", "TLSv1.3"}},
		{Name: "wal_level", Context: "postmaster", VarType: "enum", Enum: []string{"minimal", "replica", "logical"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// What the tool refuses rather than guesses.
	for _, tc := range []struct{ name, rec, err string }{
		{"unknown type", `{ name => 'x', type => 'int64', context => 'PGC_SIGHUP' }`, `x: unknown type "int64"`},
		{"unknown context", `{ name => 'x', type => 'bool', context => 'PGC_SOMETIMES' }`, `x: unknown context "PGC_SOMETIMES"`},
		{"no bounds", `{ name => 'x', type => 'int', context => 'PGC_SIGHUP', min => '0' }`, "x: no bounds"},
		{"unknown macro", `{ name => 'x', type => 'int', context => 'PGC_SIGHUP', min => '0', max => 'NO_SUCH_MACRO' }`, `unknown identifier "NO_SUCH_MACRO"`},
		{"missing options", `{ name => 'x', type => 'enum', context => 'PGC_SIGHUP', options => 'no_such_options' }`, "options array no_such_options not found"},
		{"no name", `{ type => 'bool', context => 'PGC_SIGHUP' }`, "has no name"},
	} {
		write("bad.dat", "[\n"+tc.rec+"\n]\n")
		if _, err := transcribeDat(filepath.Join(tree, "bad.dat"), tree); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		}
	}
}
