package pgconf_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pgsync/pgsync/internal/pgconf"
	"github.com/pgsync/pgsync/internal/pgconf/pgsettings"
	"github.com/pgsync/pgsync/test/prereq"
)

// pg15BinDir is where the PostgreSQL 15 binaries live; override with
// PGSYNC_PG15_BINDIR.
func pg15BinDir() string {
	if d := os.Getenv("PGSYNC_PG15_BINDIR"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}

// preloadable returns those of libs whose shared object is installed in the
// server's package library directory.
func preloadable(t *testing.T, binDir string, libs ...string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "pg_config"), "--pkglibdir").Output()
	if err != nil {
		t.Logf("pg_config --pkglibdir: %v; preloading nothing", err)
		return nil
	}
	dir := strings.TrimSpace(string(out))
	var have []string
	for _, l := range libs {
		if _, err := os.Stat(filepath.Join(dir, l+".so")); err == nil {
			have = append(have, l)
		}
	}
	return have
}

// TestPG15TableMatchesLivePgSettings starts the installed PostgreSQL 15 as
// an unprivileged user and compares its pg_settings with the embedded
// PostgreSQL 15 table: same names, contexts and types, apart from the
// documented distribution-added parameters. With pg_stat_statements,
// auto_explain and pgaudit preloaded (when installed) it also checks the
// LookupCustom table for their parameters.
func TestPG15TableMatchesLivePgSettings(t *testing.T) {
	binDir := pg15BinDir()
	libs := preloadable(t, binDir, "pg_stat_statements", "auto_explain", "pgaudit")
	res, err := pgsettings.Dump(context.Background(), pgsettings.Options{BinDir: binDir, Preload: libs})
	switch {
	case errors.Is(err, pgsettings.ErrNoBinaries):
		prereq.Missing(t, "PostgreSQL 15 binaries not available (set PGSYNC_PG15_BINDIR): %v", err)
	case errors.Is(err, pgsettings.ErrNoUser):
		prereq.Missing(t, "cannot run postgres as an unprivileged user: %v", err)
	case err != nil:
		t.Fatalf("dump pg_settings: %v", err)
	}
	if res.Major() != 15 {
		t.Fatalf("server at %s is PostgreSQL %d (server_version_num %d), want 15", binDir, res.Major(), res.ServerVersionNum)
	}

	type row struct{ Name, Context, Vartype string }
	var live, custom []row
	for _, r := range res.Rows {
		switch {
		case pgconf.IsCustom(r.Name):
			custom = append(custom, row(r))
		case pgconf.IsDistributionParameter(r.Name):
			t.Logf("distribution parameter %s (%s) left out of the table, as documented", r.Name, r.Context)
		default:
			live = append(live, row(r))
		}
	}
	var table []row
	for _, p := range pgconf.Params(15) {
		table = append(table, row{p.Name, string(p.Context), string(p.VarType)})
	}
	less := func(a, b row) bool { return strings.ToLower(a.Name) < strings.ToLower(b.Name) }
	if diff := cmp.Diff(live, table, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("embedded PostgreSQL 15 table differs from live pg_settings of %d (-live +table):\n%s", res.ServerVersionNum, diff)
	}

	if len(libs) == 0 {
		t.Logf("no extension libraries installed; LookupCustom not checked live")
		return
	}
	checked := 0
	for _, r := range custom {
		prefix := r.Name[:strings.Index(r.Name, ".")]
		ctx, ok := pgconf.LookupCustom(r.Name)
		if !ok {
			t.Errorf("live %s parameter %s (%s) missing from the LookupCustom table", prefix, r.Name, r.Context)
			continue
		}
		if string(ctx) != r.Context {
			t.Errorf("LookupCustom(%s) = %s, live pg_settings says %s", r.Name, ctx, r.Context)
		}
		checked++
	}
	if checked == 0 {
		t.Errorf("preloaded %v but pg_settings shows none of their parameters", libs)
	}
	t.Logf("checked %d core and %d extension parameters (%v) against PostgreSQL %d", len(live), checked, libs, res.ServerVersionNum)
}
