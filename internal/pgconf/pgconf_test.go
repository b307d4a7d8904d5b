package pgconf

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookupKnownFacts(t *testing.T) {
	type fact struct {
		name   string
		majors []int // majors where it must exist; all others must not have it
		ctx    Context
	}
	all := []int{13, 14, 15, 16, 17}
	facts := []fact{
		{"shared_buffers", all, ContextPostmaster},
		{"max_connections", all, ContextPostmaster},
		{"work_mem", all, ContextUser},
		{"maintenance_work_mem", all, ContextUser},
		{"archive_mode", all, ContextPostmaster},
		{"archive_command", all, ContextSighup},
		{"log_min_duration_statement", all, ContextSuperuser},
		{"wal_level", all, ContextPostmaster},
		{"max_wal_size", all, ContextSighup},
		{"shared_preload_libraries", all, ContextPostmaster},
		{"log_connections", all, ContextSuperuserBackend},
		{"ignore_system_indexes", all, ContextBackend},
		{"block_size", all, ContextInternal},
		{"server_version", all, ContextInternal},
		{"primary_conninfo", all, ContextSighup},
		{"wal_keep_size", all, ContextSighup},
		{"restrict_nonsystem_relation_kind", all, ContextUser},
		{"allow_in_place_tablespaces", all, ContextSuperuser},
		{"promote_trigger_file", []int{13, 14, 15}, ContextSighup},
		{"vacuum_defer_cleanup_age", []int{13, 14, 15}, ContextSighup},
		{"force_parallel_mode", []int{13, 14, 15}, ContextUser},
		{"lc_collate", []int{13, 14, 15}, ContextInternal},
		{"stats_temp_directory", []int{13, 14}, ContextSighup},
		{"operator_precedence_warning", []int{13}, ContextUser},
		{"vacuum_cleanup_index_scale_factor", []int{13}, ContextUser},
		{"old_snapshot_threshold", []int{13, 14, 15, 16}, ContextPostmaster},
		{"db_user_namespace", []int{13, 14, 15, 16}, ContextSighup},
		{"trace_recovery_messages", []int{13, 14, 15, 16}, ContextSighup},
		{"idle_session_timeout", []int{14, 15, 16, 17}, ContextUser},
		{"client_connection_check_interval", []int{14, 15, 16, 17}, ContextUser},
		{"archive_library", []int{15, 16, 17}, ContextSighup},
		{"debug_parallel_query", []int{16, 17}, ContextUser},
		{"reserved_connections", []int{16, 17}, ContextPostmaster},
		{"transaction_timeout", []int{17}, ContextUser},
		{"summarize_wal", []int{17}, ContextSighup},
		{"sync_replication_slots", []int{17}, ContextSighup},
		{"allow_alter_system", []int{17}, ContextSighup},
	}
	for _, f := range facts {
		in := map[int]bool{}
		for _, m := range f.majors {
			in[m] = true
		}
		for _, m := range all {
			t.Run(fmt.Sprintf("%s/%d", f.name, m), func(t *testing.T) {
				ctx, ok := Lookup(m, f.name)
				if ok != in[m] {
					t.Fatalf("Lookup(%d, %q) ok = %v, want %v", m, f.name, ok, in[m])
				}
				if ok && ctx != f.ctx {
					t.Fatalf("Lookup(%d, %q) = %q, want %q", m, f.name, ctx, f.ctx)
				}
			})
		}
	}
}

// restore_command became reloadable in 14.
func TestContextChangesAcrossMajors(t *testing.T) {
	for m, want := range map[int]Context{13: ContextPostmaster, 14: ContextSighup, 15: ContextSighup, 16: ContextSighup, 17: ContextSighup} {
		if got, _ := Lookup(m, "restore_command"); got != want {
			t.Errorf("restore_command in %d = %q, want %q", m, got, want)
		}
	}
	for m, want := range map[int]VarType{13: VarBool, 14: VarBool, 15: VarEnum, 16: VarEnum, 17: VarEnum} {
		if p, _ := Info(m, "wal_compression"); p.VarType != want {
			t.Errorf("wal_compression type in %d = %q, want %q", m, p.VarType, want)
		}
	}
}

func TestLookupUnknownAndCase(t *testing.T) {
	for _, m := range Majors() {
		for _, name := range []string{"", "no_such_parameter", "shared_buffer", "pg_stat_statements.max", " shared_buffers"} {
			if ctx, ok := Lookup(m, name); ok {
				t.Errorf("Lookup(%d, %q) = %q, want not found", m, name, ctx)
			}
		}
		for _, name := range []string{"SHARED_BUFFERS", "Shared_Buffers", "shared_buffers"} {
			if ctx, ok := Lookup(m, name); !ok || ctx != ContextPostmaster {
				t.Errorf("Lookup(%d, %q) = %q, %v; want postmaster", m, name, ctx, ok)
			}
		}
		// Mixed-case canonical names are found in any case and keep
		// their canonical spelling.
		for _, name := range []string{"datestyle", "DATESTYLE", "DateStyle"} {
			p, ok := Info(m, name)
			if !ok || p.Name != "DateStyle" || p.Context != ContextUser {
				t.Errorf("Info(%d, %q) = %+v, %v", m, name, p, ok)
			}
		}
	}
	for _, m := range []int{0, 9, 12, 20, 150} {
		if _, ok := Lookup(m, "shared_buffers"); ok {
			t.Errorf("Lookup(%d, shared_buffers) found in unsupported major", m)
		}
		if Params(m) != nil {
			t.Errorf("Params(%d) not nil", m)
		}
	}
}

func TestSupported(t *testing.T) {
	for m := 0; m < 30; m++ {
		want := m >= 13 && m <= 19
		if got := Supported(m); got != want {
			t.Errorf("Supported(%d) = %v, want %v", m, got, want)
		}
	}
	if diff := cmp.Diff([]int{13, 14, 15, 16, 17, 18, 19}, Majors()); diff != "" {
		t.Errorf("Majors() (-want +got):\n%s", diff)
	}
}

func TestNeedsRestartAndSettable(t *testing.T) {
	cases := []struct {
		ctx      Context
		restart  bool
		settable bool
	}{
		{ContextPostmaster, true, true},
		{ContextSighup, false, true},
		{ContextSuperuserBackend, false, true},
		{ContextBackend, false, true},
		{ContextSuperuser, false, true},
		{ContextUser, false, true},
		{ContextInternal, false, false},
		{Context("bogus"), false, false},
		{Context(""), false, false},
	}
	for _, c := range cases {
		if got := NeedsRestart(c.ctx); got != c.restart {
			t.Errorf("NeedsRestart(%q) = %v, want %v", c.ctx, got, c.restart)
		}
		if got := Settable(c.ctx); got != c.settable {
			t.Errorf("Settable(%q) = %v, want %v", c.ctx, got, c.settable)
		}
	}
}

func TestCustom(t *testing.T) {
	for name, want := range map[string]bool{
		"pg_stat_statements.max": true, "foo.bar": true, "a.b.c": true,
		"shared_buffers": false, "": false,
	} {
		if got := IsCustom(name); got != want {
			t.Errorf("IsCustom(%q) = %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]Context{
		"pg_stat_statements.max":        ContextPostmaster,
		"PG_STAT_STATEMENTS.MAX":        ContextPostmaster,
		"pg_stat_statements.track":      ContextSuperuser,
		"pg_stat_statements.save":       ContextSighup,
		"auto_explain.log_min_duration": ContextSuperuser,
		"auto_explain.log_analyze":      ContextSuperuser,
		"pgaudit.log":                   ContextSuperuser,
		"pgaudit.role":                  ContextSuperuser,
	} {
		if got, ok := LookupCustom(name); !ok || got != want {
			t.Errorf("LookupCustom(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"pg_stat_statements.nope", "myapp.setting", "shared_buffers"} {
		if got, ok := LookupCustom(name); ok {
			t.Errorf("LookupCustom(%q) = %q, want not found", name, got)
		}
	}
	for _, p := range CustomParams() {
		if !IsCustom(p.Name) || !p.Context.Valid() || !p.VarType.Valid() || p.Name != strings.ToLower(p.Name) {
			t.Errorf("bad custom entry %+v", p)
		}
		if got, _ := LookupCustom(p.Name); got != p.Context {
			t.Errorf("CustomParams/LookupCustom disagree on %s", p.Name)
		}
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		major   int
		name    string
		wantErr error
		wantCtx Context
		errHas  string
	}{
		{15, "shared_buffers", nil, ContextPostmaster, ""},
		{17, "TRANSACTION_TIMEOUT", nil, ContextUser, ""},
		{16, "pg_stat_statements.max", nil, ContextPostmaster, ""},
		{16, "auto_explain.log_parameter_max_length", nil, ContextSuperuser, ""},
		{15, "auto_explain.log_parameter_max_length", ErrUnknownCustom, "", ""},
		{15, "myext.knob", ErrUnknownCustom, "", `"myext.knob"`},
		{15, "block_size", ErrNotSettable, ContextInternal, "internal"},
		{16, "promote_trigger_file", ErrUnknownParameter, "", "it exists in 13, 14, 15"},
		{13, "transaction_timeout", ErrUnknownParameter, "", "it exists in 17"},
		{15, "shared_bufers", ErrUnknownParameter, "", `did you mean "shared_buffers"`},
		{15, "completely_unknown_name", ErrUnknownParameter, "", "PostgreSQL 15"},
		{12, "shared_buffers", ErrUnsupportedMajor, "", "12"},
		{20, "shared_buffers", ErrUnsupportedMajor, "", "20 (supported: 13 to 19)"},
		// PostgreSQL 19 (tables from 19rc1): new parameters are known,
		// removed ones are refused naming the majors that have them.
		{19, "io_min_workers", nil, ContextSighup, ""},
		{18, "io_min_workers", ErrUnknownParameter, "", `"io_min_workers" does not exist in PostgreSQL 18 (it exists in 19)`},
		{19, "io_workers", ErrUnknownParameter, "", `"io_workers" does not exist in PostgreSQL 19 (it exists in 18)`},
		{19, "escape_string_warning", ErrUnknownParameter, "", `does not exist in PostgreSQL 19 (it exists in 13, 14, 15, 16, 17, 18)`},
		{19, "wal_receiver_timeout", nil, ContextUser, ""},
		{18, "wal_receiver_timeout", nil, ContextSighup, ""},
		// Renamed in 18 (ssl_ecdh_curve -> ssl_groups) and added in 18.
		{18, "ssl_ecdh_curve", ErrUnknownParameter, "", `"ssl_ecdh_curve" does not exist in PostgreSQL 18 (it exists in 13, 14, 15, 16, 17)`},
		{17, "ssl_groups", ErrUnknownParameter, "", `"ssl_groups" does not exist in PostgreSQL 17 (it exists in 18, 19)`},
		{16, "io_method", ErrUnknownParameter, "", "it exists in 18"},
		{18, "io_method", nil, ContextPostmaster, ""},
		{18, "autovacuum_max_workers", nil, ContextSighup, ""},
		{17, "autovacuum_max_workers", nil, ContextPostmaster, ""},
	}
	for _, c := range cases {
		p, err := Check(c.major, c.name)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("Check(%d, %q) error = %v, want %v", c.major, c.name, err, c.wantErr)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("Check(%d, %q) error %q does not mention %q", c.major, c.name, err, c.errHas)
		}
		if p.Context != c.wantCtx {
			t.Errorf("Check(%d, %q) context = %q, want %q", c.major, c.name, p.Context, c.wantCtx)
		}
	}
}

func TestTablesWellFormed(t *testing.T) {
	for _, m := range Majors() {
		ps := Params(m)
		if len(ps) < 300 {
			t.Errorf("PostgreSQL %d: only %d parameters", m, len(ps))
		}
		counts := map[Context]int{}
		for i, p := range ps {
			counts[p.Context]++
			if i > 0 && strings.ToLower(ps[i-1].Name) >= strings.ToLower(p.Name) {
				t.Errorf("PostgreSQL %d: Params not sorted at %s", m, p.Name)
			}
			if IsCustom(p.Name) || IsDistributionParameter(p.Name) {
				t.Errorf("PostgreSQL %d: %s does not belong in the core table", m, p.Name)
			}
		}
		for _, c := range []Context{ContextInternal, ContextPostmaster, ContextSighup, ContextSuperuserBackend,
			ContextBackend, ContextSuperuser, ContextUser} {
			if counts[c] == 0 {
				t.Errorf("PostgreSQL %d: no %s parameters", m, c)
			}
		}
	}
}

func TestParseTableRejectsBadData(t *testing.T) {
	for name, in := range map[string]string{
		"two fields":   "work_mem\tuser\n",
		"bad context":  "work_mem\tsometimes\tinteger\n",
		"bad vartype":  "work_mem\tuser\tnumber\n",
		"dotted name":  "a.b\tuser\tstring\n",
		"duplicate":    "work_mem\tuser\tinteger\nWORK_MEM\tuser\tinteger\n",
		"only comment": "# nothing\n",
	} {
		if _, err := parseTable([]byte(in)); err == nil {
			t.Errorf("%s: parseTable accepted %q", name, in)
		}
	}
	got, err := parseTable([]byte("# c\n\nwork_mem\tuser\tinteger\n"))
	if err != nil || len(got) != 1 || got["work_mem"].Context != ContextUser {
		t.Errorf("parseTable(good) = %v, %v", got, err)
	}
}

type versionDiff struct {
	Added, Removed []string
	Changed        map[string]string // name: "old ctx/type -> new ctx/type"
}

func diffMajors(from, to int) versionDiff {
	d := versionDiff{Changed: map[string]string{}}
	for _, p := range Params(to) {
		old, ok := Info(from, p.Name)
		switch {
		case !ok:
			d.Added = append(d.Added, p.Name)
		case old.Context != p.Context || old.VarType != p.VarType:
			d.Changed[p.Name] = fmt.Sprintf("%s/%s -> %s/%s", old.Context, old.VarType, p.Context, p.VarType)
		}
	}
	for _, p := range Params(from) {
		if _, ok := Info(to, p.Name); !ok {
			d.Removed = append(d.Removed, p.Name)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	return d
}

// TestVersionDiffsMatchReleaseNotes pins every difference between
// consecutive majors to the changes the PostgreSQL 14, 15, 16, 17 and 18 release
// notes (E.x "Server Configuration" and renamed/removed settings) document.
// A transcription error in any data file shows up here as an unexplained
// difference.
func TestVersionDiffsMatchReleaseNotes(t *testing.T) {
	want := map[int]versionDiff{
		14: {
			Added: []string{"client_connection_check_interval", "compute_query_id", "debug_discard_caches",
				"default_toast_compression", "enable_async_append", "enable_memoize", "huge_page_size",
				"idle_session_timeout", "in_hot_standby", "log_recovery_conflict_waits", "min_dynamic_shared_memory",
				"recovery_init_sync_method", "remove_temp_files_after_crash", "ssl_crl_dir", "track_wal_io_timing",
				"vacuum_failsafe_age", "vacuum_multixact_failsafe_age"},
			Removed: []string{"operator_precedence_warning", "vacuum_cleanup_index_scale_factor"},
			Changed: map[string]string{"restore_command": "postmaster/string -> sighup/string"},
		},
		15: {
			Added: []string{"archive_library", "log_startup_progress_interval", "recovery_prefetch",
				"recursive_worktable_factor", "shared_memory_size", "shared_memory_size_in_huge_pages",
				"stats_fetch_consistency", "wal_decode_buffer_size"},
			Removed: []string{"stats_temp_directory"},
			Changed: map[string]string{"wal_compression": "superuser/bool -> superuser/enum"},
		},
		16: {
			Added: []string{"createrole_self_grant", "debug_io_direct", "debug_logical_replication_streaming",
				"debug_parallel_query", "enable_presorted_aggregate", "file_extend_method", "gss_accept_delegation", "icu_validation_level",
				"max_parallel_apply_workers_per_subscription", "reserved_connections", "scram_iterations",
				"send_abort_for_crash", "send_abort_for_kill", "vacuum_buffer_usage_limit"},
			Removed: []string{"force_parallel_mode", "lc_collate", "lc_ctype", "promote_trigger_file",
				"vacuum_defer_cleanup_age"},
			Changed: map[string]string{},
		},
		17: {
			Added: []string{"allow_alter_system", "commit_timestamp_buffers", "enable_group_by_reordering",
				"event_triggers", "huge_pages_status", "io_combine_limit", "max_notify_queue_pages",
				"multixact_member_buffers", "multixact_offset_buffers", "notify_buffers", "serializable_buffers",
				"subtransaction_buffers", "summarize_wal", "sync_replication_slots", "synchronized_standby_slots",
				"trace_connection_negotiation", "transaction_buffers", "transaction_timeout", "wal_summary_keep_time"},
			Removed: []string{"db_user_namespace", "old_snapshot_threshold", "trace_recovery_messages"},
			Changed: map[string]string{},
		},
		// PostgreSQL 18 release notes (E.x, 2025-09-25): new settings;
		// ssl_ecdh_curve renamed ssl_groups (the old name kept as an alias,
		// not listed by pg_settings); autovacuum_max_workers now changeable
		// by reload within autovacuum_worker_slots; log_connections takes a
		// list of aspects. file_extend_method came with 18.2, 17.8 and
		// 16.12 (a minor-release addition back-patched to 16, so it is a
		// 15 -> 16 difference). output_plugin_libraries came with 18.6
		// (2026-08-13, its release notes), back-patched to 14: the 14, 16
		// and 17 tables predate it (docs/parameters.md), so here it is a
		// 17 -> 18 difference.
		18: {
			Added: []string{"autovacuum_vacuum_max_threshold", "autovacuum_worker_slots",
				"enable_distinct_reordering", "enable_self_join_elimination", "extension_control_path",
				"file_copy_method", "idle_replication_slot_timeout", "io_max_combine_limit",
				"io_max_concurrency", "io_method", "io_workers", "log_lock_failures",
				"max_active_replication_origins", "md5_password_warnings", "num_os_semaphores",
				"oauth_validator_libraries", "output_plugin_libraries", "ssl_groups", "ssl_tls13_ciphers", "track_cost_delay_timing",
				"vacuum_max_eager_freeze_failure_rate", "vacuum_truncate"},
			Removed: []string{"ssl_ecdh_curve"},
			Changed: map[string]string{
				"autovacuum_max_workers": "postmaster/integer -> sighup/integer",
				"log_connections":        "superuser-backend/bool -> superuser-backend/string",
			},
		},
		// PostgreSQL 19 release notes of 19rc1 ("AS OF 2026-10-09", in
		// Debian's postgresql-doc-19 19~rc1-1): the autovacuum score
		// weights and autovacuum_max_parallel_workers, the io_min_workers/
		// io_max_workers/io_worker_idle_timeout/io_worker_launch_interval
		// that replace io_workers, escape_string_warning removed,
		// log_min_messages per process type (a list), wal_receiver_timeout
		// settable per user and subscription, debug_exec_backend,
		// debug_print_raw_parse, effective_wal_level,
		// log_autoanalyze_min_duration, max_repack_replication_slots,
		// password_expiration_warning_threshold, timing_clock_source,
		// wal_sender_shutdown_timeout, hosts_file and ssl_sni (server-side
		// SNI, pg_hosts.conf). Not named in those notes, taken from the
		// 19rc1 server only: enable_eager_aggregate,
		// min_eager_agg_group_size.
		19: {
			Added: []string{"autovacuum_analyze_score_weight", "autovacuum_freeze_score_weight",
				"autovacuum_max_parallel_workers", "autovacuum_multixact_freeze_score_weight",
				"autovacuum_vacuum_insert_score_weight", "autovacuum_vacuum_score_weight",
				"debug_exec_backend", "debug_print_raw_parse", "effective_wal_level",
				"enable_eager_aggregate", "hosts_file", "io_max_workers", "io_min_workers",
				"io_worker_idle_timeout", "io_worker_launch_interval",
				"log_autoanalyze_min_duration", "max_repack_replication_slots",
				"min_eager_agg_group_size",
				"password_expiration_warning_threshold", "ssl_sni", "timing_clock_source",
				"wal_sender_shutdown_timeout"},
			Removed: []string{"escape_string_warning", "io_workers"},
			Changed: map[string]string{
				"log_min_messages":     "superuser/enum -> superuser/string",
				"wal_receiver_timeout": "sighup/integer -> user/integer",
			},
		},
	}
	for to := MinMajor + 1; to <= MaxMajor; to++ {
		got := diffMajors(to-1, to)
		if diff := cmp.Diff(want[to], got); diff != "" {
			t.Errorf("PostgreSQL %d -> %d differences not as documented (-want +got):\n%s", to-1, to, diff)
		}
	}
}

// TestDataFilesParseAndCiteSources: every embedded data file parses, every
// supported major has both files, they list the same parameters, and each
// header says where it comes from (a live server's version, or a release
// source with its repository and commit).
func TestDataFilesParseAndCiteSources(t *testing.T) {
	ents, err := dataFS.ReadDir("data")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	commit := regexp.MustCompile(`commit [0-9a-f]{40}`)
	tarball := regexp.MustCompile(`\.orig\.tar\.(bz2|gz|xz)\b.{0,200}\bsha256 [0-9a-f]{64}`)
	for _, e := range ents {
		name := "data/" + e.Name()
		seen[e.Name()] = true
		raw, err := dataFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".values.tsv") {
			_, err = parseDomains(raw)
		} else {
			_, err = parseTable(raw)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		var header strings.Builder
		for _, l := range strings.Split(string(raw), "\n") {
			if !strings.HasPrefix(l, "#") {
				break
			}
			header.WriteString(l + "\n")
		}
		h := header.String()
		switch {
		case !strings.Contains(h, "# Source: "):
			t.Errorf("%s: header has no Source line", name)
		case strings.Contains(h, "live pg_settings") && !strings.Contains(h, "server_version_num"):
			t.Errorf("%s: a live source must name its server_version_num", name)
		case !strings.Contains(h, "live pg_settings") && (!strings.Contains(h, "github.com/") || !commit.MatchString(h)) &&
			!tarball.MatchString(h):
			t.Errorf("%s: a transcribed source must name its repository and commit, or its release tarball and sha256", name)
		}
	}
	for _, m := range Majors() {
		for _, f := range []string{fmt.Sprintf("pg%d.tsv", m), fmt.Sprintf("pg%d.values.tsv", m)} {
			if !seen[f] {
				t.Errorf("PostgreSQL %d: data/%s missing", m, f)
			}
		}
		for _, p := range Params(m) {
			if _, ok := domains()[m][strings.ToLower(p.Name)]; !ok {
				t.Errorf("PostgreSQL %d: %s has no line in pg%d.values.tsv", m, p.Name, m)
			}
		}
		if len(domains()[m]) != len(Params(m)) {
			t.Errorf("PostgreSQL %d: %d value domains for %d parameters", m, len(domains()[m]), len(Params(m)))
		}
	}
}
