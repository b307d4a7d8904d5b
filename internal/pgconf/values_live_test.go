package pgconf_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/pgconf"
	"github.com/pgsync/pgsync/internal/pgconf/pgsettings"
	"github.com/pgsync/pgsync/test/prereq"
)

// hookChecked are the parameters whose check hooks refuse, beyond their
// type's syntax, values CheckValue accepts: the tables know only pg_settings'
// bounds, not what a hook computes (the stack limit, MAX_BACKENDS over
// several parameters, a build's compression methods).
var hookChecked = map[string]string{
	"max_stack_depth":        "bounded by the stack rlimit",
	"max_connections":        "MAX_BACKENDS together with the other backend counts",
	"max_worker_processes":   "MAX_BACKENDS together with the other backend counts",
	"autovacuum_max_workers": "MAX_BACKENDS together with the other backend counts",
	"max_wal_senders":        "MAX_BACKENDS together with the other backend counts",
	"bonjour":                "refuses on in a build without Bonjour support",
}

// notInFile are refused by postgres in a configuration file whatever the
// value (GUC_DISALLOW_IN_FILE); pgsync refuses them by name
// (internal/plan).
var notInFile = map[string]bool{"transaction_isolation": true, "transaction_read_only": true, "transaction_deferrable": true}

// TestCheckValueAgreesWithPostgres15 runs a corpus of values for every
// settable non-string parameter of PostgreSQL 15 through CheckValue and
// through the live server's own parser (ALTER SYSTEM SET, which parses and
// validates a value for every context without applying it): a value
// CheckValue refuses must be refused by postgres too (no false refusals),
// and a value it accepts must be accepted, except by the check hooks
// listed in hookChecked.
func TestCheckValueAgreesWithPostgres15(t *testing.T) {
	libs := preloadable(t, pg15BinDir(), "pg_stat_statements", "auto_explain")
	srv, err := pgsettings.Start(context.Background(), pgsettings.Options{BinDir: pg15BinDir(), Preload: libs})
	switch {
	case errors.Is(err, pgsettings.ErrNoBinaries):
		prereq.Missing(t, "PostgreSQL 15 binaries not available (set PGSYNC_PG15_BINDIR): %v", err)
	case errors.Is(err, pgsettings.ErrNoUser):
		prereq.Missing(t, "cannot run postgres as an unprivileged user: %v", err)
	case err != nil:
		t.Fatalf("start postgres: %v", err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}()

	type probe struct{ name, value string }
	var probes []probe
	for _, p := range pgconf.Params(15) {
		if !pgconf.Settable(p.Context) || p.VarType == pgconf.VarString || notInFile[p.Name] {
			continue
		}
		d, exact, err := pgconf.DomainOf(15, p.Name)
		if err != nil || !exact {
			t.Fatalf("DomainOf(15, %s) = exact %v, %v", p.Name, exact, err)
		}
		for _, v := range corpus(d) {
			probes = append(probes, probe{p.Name, v})
		}
	}
	// The extension parameters of the preloaded libraries too.
	for _, p := range pgconf.CustomParams() {
		lib := p.Name[:strings.Index(p.Name, ".")]
		if !slices.Contains(libs, lib) || p.VarType == pgconf.VarString {
			continue
		}
		if _, err := pgconf.Check(15, p.Name); err != nil {
			continue // not in 15 (log_parameter_max_length is 16+)
		}
		d, _, err := pgconf.DomainOf(15, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range corpus(d) {
			probes = append(probes, probe{p.Name, v})
		}
	}
	// One psql session: each statement followed by its outcome.
	var script strings.Builder
	script.WriteString("\\set ON_ERROR_STOP 0\n")
	if slices.Contains(libs, "pg_stat_statements") {
		script.WriteString("SET pg_stat_statements.track_utility = off;\n") // it would record every statement
	}
	for i, pr := range probes {
		fmt.Fprintf(&script, "ALTER SYSTEM SET %q = '%s';\n\\echo @%d :ERROR\n", pr.name, strings.ReplaceAll(pr.value, "'", "''"), i)
	}
	out, err := srv.Script(script.String())
	if err != nil {
		t.Fatalf("psql: %v", err)
	}
	verdict := map[int]bool{} // index → postgres accepted
	for _, line := range strings.Split(string(out), "\n") {
		var i int
		var e string
		if _, err := fmt.Sscanf(line, "@%d %s", &i, &e); err == nil {
			verdict[i] = e == "false"
		}
	}
	if len(verdict) != len(probes) {
		t.Fatalf("psql reported %d outcomes for %d statements", len(verdict), len(probes))
	}
	var accepted, refused int
	for i, pr := range probes {
		pgOK := verdict[i]
		err := pgconf.CheckValue(15, pr.name, pr.value)
		switch {
		case err != nil && pgOK:
			t.Errorf("%s = %q: postgres accepts it, CheckValue refuses: %v", pr.name, pr.value, err)
		case err == nil && !pgOK && hookChecked[pr.name] == "":
			t.Errorf("%s = %q: postgres refuses it, CheckValue accepts it", pr.name, pr.value)
		}
		if pgOK {
			accepted++
		} else {
			refused++
		}
	}
	t.Logf("%d values of %d core parameters and the extension parameters of %v: postgres accepted %d, refused %d", len(probes), len(pgconf.Params(15)), libs, accepted, refused)
}

// corpus returns values around the edges of a domain.
func corpus(d pgconf.Domain) []string {
	junk := []string{"", "x", " ", "bogus", "on off"}
	switch d.VarType {
	case pgconf.VarBool:
		return append(junk, "on", "off", "ON", "Off", "of", "o", "t", "tr", "TRUE", "truee", "f", "fal", "y", "ye", "yes", "n", "no", "1", "0", "2", "01", " on", "on ", "onn")
	case pgconf.VarEnum:
		out := append(junk, "true", "false", "yes", "no", "1", "0", "t", "archive", "hot_standby", "info", "regress")
		for _, e := range d.Enum {
			out = append(out, e, strings.ToUpper(e), " "+e, e+" ")
		}
		return out
	}
	integer := d.VarType == pgconf.VarInteger
	out := append(junk, "0", "1", "-1", "+5", " 5", "5 ", "10", "0x10", "0X1f", "010", "08", "0x", "1.5", "1.4999", "2.5", ".5", "5.", "1e3", "1E2", "1e", "1e400", "-1e400", "1e-400",
		"inf", "-inf", "nan", "9999999999", "-9999999999", "2147483647", "2147483648", "-2147483648", "-2147483649", "99999999999999999999")
	for _, u := range []string{"B", "kB", "MB", "GB", "TB", "mb", "KB", "us", "ms", "s", "min", "h", "d", "m", "sec", "xyz"} {
		out = append(out, "1"+u, "1 "+u, "1"+u+" ", "1"+u+"x", "1 "+u+" x", "1.5"+u, "0.3"+u, "100"+u, "-1"+u)
	}
	for _, b := range []float64{d.Min, d.Max} {
		if math.IsInf(b, 0) {
			continue
		}
		for _, delta := range []float64{-1, 0, 1, -0.5, 0.5, -0.001, 0.001} {
			v := b + delta
			if integer {
				out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
			} else {
				out = append(out, strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
	}
	return out
}
