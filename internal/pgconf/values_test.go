package pgconf_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/pgconf"
)

func TestCheckValue(t *testing.T) {
	for _, tc := range []struct {
		major       int
		name, value string
		want        string // "" = accepted; else a substring of the error
	}{
		{15, "work_mem", "64MB", ""},
		{15, "work_mem", "64 MB ", ""},
		{15, "work_mem", "0.5GB", ""},
		{15, "work_mem", "lots", "is not a number"},
		{15, "work_mem", "64mb", "valid units are TB, GB, MB, kB, B (case-sensitive)"},
		{15, "work_mem", "10ms", "valid units are TB, GB, MB, kB, B"},
		{15, "work_mem", "32", "outside the allowed range 64 (kB) .. 2147483647 (kB)"},
		{15, "work_mem", "3TB", "exceeds the integer range"},
		{15, "shared_buffers", "128MB", ""},
		{15, "statement_timeout", "1min", ""},
		{15, "statement_timeout", "1 minute", "valid units are d, h, min, s, ms, us"},
		{15, "max_connections", "200", ""},
		{15, "max_connections", "200kB", "takes no unit"},
		{15, "max_connections", "0x10", ""},
		{15, "max_connections", "08", "takes no unit"},
		{15, "checkpoint_completion_target", "0.9", ""},
		{15, "checkpoint_completion_target", "1.5", "outside the allowed range 0 .. 1"},
		{15, "checkpoint_completion_target", "nan", "is not a number"},
		{15, "random_page_cost", "1e308", ""},
		{15, "random_page_cost", "inf", "out of range"},
		{15, "autovacuum", "on", ""},
		{15, "autovacuum", "Of", ""},
		{15, "autovacuum", "o", "want on, off"},
		{15, "autovacuum", "enabled", "want on, off"},
		{15, "log_statement", "DDL", ""},
		{15, "log_statement", "some", `is not one of "none", "ddl", "mod", "all"`},
		{15, "synchronous_commit", "yes", ""},
		{15, "wal_level", "hot_standby", ""},
		{15, "default_transaction_isolation", "read committed", ""},
		{15, "application_name", "anything at all", ""},
		// Every major has its own domains (data/pgNN.values.tsv).
		{16, "work_mem", "32", "outside the allowed range 64 (kB) .. 2147483647 (kB)"},
		{13, "work_mem", "32", "outside the allowed range 64 (kB)"},
		{16, "work_mem", "64mb", "valid units"},
		{17, "log_statement", "some", "is not one of"},
		{14, "wal_compression", "on", ""}, // bool in 14, enum in 15
		{14, "wal_compression", "lz4", "want on, off"},
		{13, "wal_compression", "zstd", "want on, off"},
		{16, "wal_compression", "zstd", ""},
		{17, "transaction_timeout", "5min", ""},
		{17, "transaction_timeout", "5 parsecs", "valid units are d, h, min, s, ms, us"},
		{17, "transaction_timeout", "-1", "outside the allowed range 0 (ms) .. 2147483647 (ms)"},
		{16, "vacuum_buffer_usage_limit", "2MB", ""},
		{16, "vacuum_buffer_usage_limit", "32GB", "outside the allowed range 0 (kB) .. 16777216 (kB)"},
		// maintenance_work_mem's minimum fell from 1MB to 64kB in 17.
		{16, "maintenance_work_mem", "512kB", "outside the allowed range 1024 (kB)"},
		{17, "maintenance_work_mem", "512kB", ""},
		// PostgreSQL 18.
		{18, "io_method", "worker", ""},
		{18, "io_method", "io_uring", ""},
		{18, "io_method", "posix_aio", `is not one of "sync", "worker", "io_uring"`},
		{18, "io_workers", "64", "outside the allowed range 1 .. 32"},
		{18, "io_workers", "8", ""},
		// io_combine_limit: at most PG_IOV_MAX blocks, 32 in 17, 128 in 18.
		{17, "io_combine_limit", "256kB", ""},
		{17, "io_combine_limit", "512kB", "outside the allowed range 1 (8kB) .. 32 (8kB)"},
		{18, "io_combine_limit", "1MB", ""},
		{18, "io_combine_limit", "2MB", "outside the allowed range 1 (8kB) .. 128 (8kB)"},
		{18, "autovacuum_worker_slots", "16", ""},
		{18, "log_connections", "receipt,authentication", ""}, // a list in 18 (string)
		{17, "log_connections", "receipt", "want on, off"},    // a bool before
		{18, "log_connections", "on", ""},
		{18, "vacuum_max_eager_freeze_failure_rate", "1.5", "outside the allowed range 0 .. 1"},
		{18, "idle_replication_slot_timeout", "1d", ""},
		{18, "idle_replication_slot_timeout", "1ms", ""}, // rounded to 0 s
		{18, "idle_replication_slot_timeout", "10 MB", "valid units are d, h, min, s, ms, us"},
		// Extension parameters of known type.
		{15, "pg_stat_statements.max", "10000", ""},
		{15, "pg_stat_statements.save", "maybe", "want on, off"},
		{15, "auto_explain.log_min_duration", "250ms", ""},
		{15, "auto_explain.sample_rate", "half", "is not a number"},
		{15, "auto_explain.sample_rate", "2", "outside the allowed range 0 .. 1"},
		{15, "pg_stat_statements.max", "10", "outside the allowed range 100 .. 1073741823"},
		{16, "pg_stat_statements.max", "10", ""}, // bounds: 15 only
		{15, "pg_stat_statements.track", "TOP", ""},
		{15, "pg_stat_statements.track", "some", `is not one of "none", "top", "all"`},
		{15, "auto_explain.log_format", "csv", `is not one of "text", "xml", "json", "yaml"`},
		{15, "auto_explain.log_min_duration", "250 MB", "valid units are d, h, min, s, ms, us"},
		{16, "auto_explain.log_parameter_max_length", "1kB", ""},
		{15, "pgaudit.log", "read, write", ""},
	} {
		err := pgconf.CheckValue(tc.major, tc.name, tc.value)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckValue(%d, %s, %q) = %v, want nil", tc.major, tc.name, tc.value, err)
		case tc.want != "" && err == nil:
			t.Errorf("CheckValue(%d, %s, %q) = nil, want an error containing %q", tc.major, tc.name, tc.value, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("CheckValue(%d, %s, %q) = %v, want it to contain %q", tc.major, tc.name, tc.value, err, tc.want)
		case tc.want != "" && !errors.Is(err, pgconf.ErrInvalidValue):
			t.Errorf("CheckValue(%d, %s, %q) = %v, not ErrInvalidValue", tc.major, tc.name, tc.value, err)
		}
	}
	if err := pgconf.CheckValue(15, "no_such_parameter", "1"); !errors.Is(err, pgconf.ErrUnknownParameter) {
		t.Errorf("unknown parameter: %v", err)
	}
}

// TestValuesTablesCoverTables: every settable parameter of every major's
// table has an exact domain of the same type in that major's values file,
// every enum has values and every number has bounds.
func TestValuesTablesCoverTables(t *testing.T) {
	for _, m := range pgconf.Majors() {
		for _, p := range pgconf.Params(m) {
			if !pgconf.Settable(p.Context) {
				continue
			}
			d, exact, err := pgconf.DomainOf(m, p.Name)
			if err != nil || !exact || d.VarType != p.VarType {
				t.Errorf("PostgreSQL %d: %s: domain %+v exact %v err %v", m, p.Name, d, exact, err)
			}
			if p.VarType == pgconf.VarEnum && len(d.Enum) == 0 {
				t.Errorf("PostgreSQL %d: %s: enum without values", m, p.Name)
			}
			if (p.VarType == pgconf.VarInteger || p.VarType == pgconf.VarReal) && !(d.Min <= d.Max) {
				t.Errorf("PostgreSQL %d: %s: bounds %v .. %v", m, p.Name, d.Min, d.Max)
			}
		}
	}
}

// FuzzCheckValue: no value makes CheckValue panic, for parameters of every
// type, and NumericValue agrees with it.
func FuzzCheckValue(f *testing.F) {
	for _, s := range []string{"64MB", "0x1.8p1", "1e400", " 1 kB ", "-0", ".5", "on", "0x", "1e", "inf", "08", "99999999999999999999"} {
		f.Add(s)
	}
	names := []string{"work_mem", "shared_buffers", "statement_timeout", "max_connections", "checkpoint_completion_target",
		"vacuum_cost_delay", "autovacuum", "log_statement", "application_name", "pg_stat_statements.max"}
	f.Fuzz(func(t *testing.T, v string) {
		for _, n := range names {
			for _, major := range []int{13, 15, 17} {
				err := pgconf.CheckValue(major, n, v)
				if _, nerr := pgconf.NumericValue(major, n, v); nerr == nil && err != nil {
					t.Fatalf("%s=%q in %d: NumericValue accepts what CheckValue refuses: %v", n, v, major, err)
				}
			}
		}
	})
}
