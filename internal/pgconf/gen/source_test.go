package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEvalIf(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"defined(USE_LZ4)", true},
		{"defined(WIN32)", false},
		{"!defined(WIN32)", true},
		{"defined(HAVE_COPYFILE) && defined(COPYFILE_CLONE_FORCE) || defined(HAVE_COPY_FILE_RANGE)", true},
		{"defined(HAVE_COPYFILE) && (defined(COPYFILE_CLONE_FORCE) || defined(HAVE_COPY_FILE_RANGE))", false},
		{"!(defined(MAP_HUGE_MASK) && defined(MAP_HUGE_SHIFT))", false},
		{"XLOG_BLCKSZ < 1024 || XLOG_BLCKSZ > (1024*1024)", false},
	} {
		got, err := evalIf(tc.expr)
		if err != nil || got != tc.want {
			t.Errorf("evalIf(%q) = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	if _, err := evalIf("PG_VERSION_NUM >= 180000"); err == nil {
		t.Error("an expression it cannot evaluate must be an error, not a guess")
	}
}

func TestEvalNum(t *testing.T) {
	macros := map[string][][]string{
		"MIN_GEQO_EFFORT":   {tokens("1")},
		"MAX_STAT":          {tokens("10000")},
		"TWICE":             {tokens("(MAX_STAT * 2)")},
		"AMBIGUOUS":         {tokens("1"), tokens("2")},
		"MaxAllocSize":      {tokens("((Size) 0x3fffffff)")},
		"HALF_DBL":          {tokens("DBL_MAX / 2")},
		"NEGATIVE_FRACTION": {tokens("-0.5")},
	}
	for _, tc := range []struct {
		expr string
		want string // formatted as an integer bound unless real
		real bool
	}{
		{"INT_MAX", "2147483647", false},
		{"INT_MAX / 1024", "2097151", false},
		{"MAX_KILOBYTES", "2147483647", false},
		{"MIN_GEQO_EFFORT", "1", false},
		{"TWICE", "20000", false},
		{"MaxAllocSize", "1073741823", false},
		{"(int) Min((size_t) INT_MAX, SIZE_MAX / (1024 * 1024))", "2147483647", false},
		{"-1", "-1", false},
		{"1.0e10", "1e+10", true},
		{"DBL_MAX", "1.79769e+308", true},
		{"NEGATIVE_FRACTION", "-0.5", true},
	} {
		v, err := evalNum(tokens(tc.expr), macros)
		if err != nil {
			t.Errorf("evalNum(%q): %v", tc.expr, err)
			continue
		}
		if got := formatBound(v, !tc.real); got != tc.want {
			t.Errorf("evalNum(%q) = %s, want %s", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{"NO_SUCH_MACRO", "AMBIGUOUS", "1 +"} {
		if _, err := evalNum(tokens(bad), macros); err == nil {
			t.Errorf("evalNum(%q) succeeded, want an error", bad)
		}
	}
}

// TestTranscribe runs the transcription over a small tree in the layout of
// a release: the GUC file, an options array defined in another .c file and
// a bound macro in a header.
func TestTranscribe(t *testing.T) {
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
	write("include/x.h", "#define MAX_THINGS 100 /* a bound */\n")
	write("backend/access/x.c", `const struct config_enum_entry wal_level_options[] = {
	{"minimal", 0, false},
	{"replica", 1, false},
	{"archive", 1, true},
#ifdef WIN32
	{"windows_only", 3, false},
#else
	{"logical", 2, false},
#endif
	{NULL, 0, false}
};
`)
	gucSrc := `
extern const struct config_enum_entry wal_level_options[];
static const struct config_enum_entry local_options[] = {
	{"a", 0, false}, {"b", 1, false}, {"c", 2, false},
#ifdef USE_LZ4
	{"lz4", 3, false},
#else
	{"no_lz4", 3, false},
#endif
	{NULL, 0, false}
};
struct config_bool ConfigureNamesBool[] = {
	{
		{"enable_x", PGC_USERSET, QUERY_TUNING,
			gettext_noop("x"), NULL, GUC_EXPLAIN
		},
		&enable_x, true, NULL, NULL, NULL
	},
	{
		{"is_superuser", PGC_INTERNAL, UNGROUPED, gettext_noop("y"), NULL,
			GUC_REPORT | GUC_NO_SHOW_ALL | GUC_NO_RESET_ALL
		},
		&su, false, NULL, NULL, NULL
	},
#ifdef LOCK_DEBUG
	{
		{"trace_locks", PGC_SUSET, DEVELOPER_OPTIONS, gettext_noop("z"), NULL, GUC_NOT_IN_SAMPLE},
		&Trace_locks, false, NULL, NULL, NULL
	},
#endif
	{
		{NULL, 0, 0, NULL, NULL}, NULL, false, NULL, NULL, NULL
	}
};
struct config_int ConfigureNamesInt[] = {
	{
		{"work_mem", PGC_USERSET, RESOURCES_MEM, gettext_noop("w"), NULL, GUC_UNIT_KB | GUC_EXPLAIN},
		&work_mem, 4096, 64, MAX_KILOBYTES, NULL, NULL, NULL
	},
	{
		{"things", PGC_POSTMASTER, RESOURCES_MEM, gettext_noop("t"), NULL, 0},
		&things, 10, 1, MAX_THINGS / 2, NULL, NULL, NULL
	},
	{
		{NULL, 0, 0, NULL, NULL}, NULL, 0, 0, 0, NULL, NULL, NULL
	}
};
struct config_real ConfigureNamesReal[] = {
	{
		{"ratio", PGC_SIGHUP, X, gettext_noop("r"), NULL},
		&ratio, 0.5, 0.0, 1.0, NULL, NULL, NULL
	},
	{
		{NULL, 0, 0, NULL, NULL}, NULL, 0.0, 0.0, 0.0, NULL, NULL, NULL
	}
};
struct config_string ConfigureNamesString[] = {
	{
		{"DateStyle", PGC_USERSET, CLIENT_CONN_LOCALE, gettext_noop("d"), NULL, GUC_LIST_INPUT | GUC_REPORT},
		&datestyle_string, "ISO, MDY", check_datestyle, assign_datestyle, NULL
	},
	{
		{NULL, 0, 0, NULL, NULL}, NULL, NULL, NULL, NULL, NULL
	}
};
struct config_enum ConfigureNamesEnum[] = {
	{
		{"wal_level", PGC_POSTMASTER, WAL_SETTINGS, gettext_noop("l"), NULL},
		&wal_level, 1, wal_level_options, NULL, NULL, NULL
	},
	{
		{"local", PGC_SU_BACKEND, X, gettext_noop("o"), NULL},
		&local, 1, local_options + 1, NULL, NULL, NULL
	},
	{
		{NULL, 0, 0, NULL, NULL}, NULL, 0, NULL, NULL, NULL, NULL
	}
};
`
	write("backend/utils/misc/guc_tables.c", gucSrc)
	got, err := transcribe(filepath.Join(tree, "backend/utils/misc/guc_tables.c"), tree)
	if err != nil {
		t.Fatal(err)
	}
	want := []guc{
		{Name: "DateStyle", Context: "user", VarType: "string"},
		{Name: "enable_x", Context: "user", VarType: "bool"},
		{Name: "local", Context: "superuser-backend", VarType: "enum", Enum: []string{"b", "c", "lz4"}},
		{Name: "ratio", Context: "sighup", VarType: "real", Min: "0", Max: "1"},
		{Name: "things", Context: "postmaster", VarType: "integer", Min: "1", Max: "50"},
		{Name: "wal_level", Context: "postmaster", VarType: "enum", Enum: []string{"minimal", "replica", "logical"}},
		{Name: "work_mem", Context: "user", VarType: "integer", Unit: "kB", Min: "64", Max: "2147483647"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transcribed (-want +got):\n%s", diff)
	}

	// An unresolvable bound is an error naming the parameter.
	write("backend/utils/misc/guc_tables.c", strings.Replace(gucSrc, "MAX_THINGS / 2", "MAX_UNKNOWN", 1))
	if _, err := transcribe(filepath.Join(tree, "backend/utils/misc/guc_tables.c"), tree); err == nil || !strings.Contains(err.Error(), "things") {
		t.Errorf("unknown macro: err = %v, want one naming things", err)
	}
}
