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
		// Other majors: 15's units and enum values, no bounds.
		{16, "work_mem", "32", ""},
		{16, "work_mem", "64mb", "valid units"},
		{17, "log_statement", "some", "is not one of"},
		{14, "wal_compression", "on", ""}, // bool in 14, enum in 15
		{14, "wal_compression", "lz4", "want on, off"},
		// A parameter 15 lacks: its type's syntax, any unit.
		{17, "transaction_timeout", "5min", ""},
		{17, "transaction_timeout", "5 parsecs", "valid units are TB, GB, MB, kB, B, d, h, min, s, ms, us"},
		{16, "vacuum_buffer_usage_limit", "2MB", ""},
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

// TestValuesTableCoversTable15: every parameter of the 15 table has a
// domain of the same type.
func TestValuesTableCoversTable15(t *testing.T) {
	for _, p := range pgconf.Params(15) {
		if !pgconf.Settable(p.Context) {
			continue
		}
		d, exact, err := pgconf.DomainOf(15, p.Name)
		if err != nil || !exact || d.VarType != p.VarType {
			t.Errorf("%s: domain %+v exact %v err %v", p.Name, d, exact, err)
		}
		if p.VarType == pgconf.VarEnum && len(d.Enum) == 0 {
			t.Errorf("%s: enum without values", p.Name)
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
