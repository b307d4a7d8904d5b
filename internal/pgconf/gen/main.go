// Command gen writes one of pgconf's data files (data/pgNN.tsv) from the
// pg_settings of a live PostgreSQL server started from the given binaries.
//
// Usage (from internal/pgconf, which is what //go:generate does):
//
//	go run ./gen -bindir /usr/lib/postgresql/15/bin -o data/pg15.tsv
//	go run ./gen -bindir /usr/lib/postgresql/15/bin -values -o data/pg15.values.tsv
//
// It runs initdb into a temporary directory, starts the server on a Unix
// socket only (as user "postgres" when run as root), reads
// "SELECT name, context, vartype FROM pg_settings" and writes the core
// parameters, sorted, as name<TAB>context<TAB>vartype under a header that
// records the exact server version. Custom (dotted) names and the
// distribution-added parameters listed in pgconf.DistributionParameters are
// left out, so the file describes upstream PostgreSQL.
//
// With -values it writes the value domains instead (data/pgNN.values.tsv):
// name<TAB>vartype<TAB>unit<TAB>min_val<TAB>max_val<TAB>enumvals, the enum
// values joined with '|', for the same parameters.
//
// Any major whose binaries are installed can be regenerated this way; the
// files for majors without local binaries were transcribed from upstream
// sources (see docs/parameters.md).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgsync/pgsync/internal/pgconf"
	"github.com/pgsync/pgsync/internal/pgconf/pgsettings"
)

func main() {
	binDir := flag.String("bindir", "/usr/lib/postgresql/15/bin", "directory holding initdb, pg_ctl, psql and postgres")
	out := flag.String("o", "", "output file (default: stdout)")
	runAs := flag.String("user", "postgres", "account to run postgres as when invoked as root")
	values := flag.Bool("values", false, "write the value domains (unit, bounds, enum values) instead of the contexts")
	gucFile := flag.String("guc", "", "transcribe from this guc_tables.c (guc.c before 16; guc_parameters.dat from 19) instead of a live server")
	tree := flag.String("tree", "", "with -guc: the source tree's src directory, searched for enum option arrays defined outside the GUC file")
	major := flag.Int("major", 0, "with -guc: the PostgreSQL major of the source")
	versionNum := flag.Int("version-num", 0, "with -guc: the source's server_version_num (e.g. 180003), the bounds of server_version_num")
	cite := flag.String("cite", "", "with -guc: the source's exact citation (release, repository, commit, path) for the header")
	extra := flag.String("extra", "", "with -guc: parameters added by later minor releases, NAME:CONTEXT:bool, NAME:CONTEXT:string or NAME:CONTEXT:enum:V1|V2, comma-separated, with -note saying so")
	omit := flag.String("omit", "", "with -guc: NAME,... entries of the source that are not upstream PostgreSQL (a fork's additions), with -note saying so")
	note := flag.String("note", "", "with -guc: a header line saying what -extra adds and why")
	host := flag.String("host", "", "read pg_settings from a server already running on this Unix socket directory (psql from -bindir), instead of starting one; needs -cite")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *gucFile != "" {
		if err := runSource(sourceOptions{GUC: *gucFile, Tree: *tree, Major: *major, VersionNum: *versionNum, Cite: *cite, Extra: *extra, Omit: *omit, Note: *note, Values: *values, Out: *out}); err != nil {
			logger.Error("transcribe pgconf data", "err", err)
			os.Exit(1)
		}
		return
	}
	if *host != "" {
		if err := runRunning(context.Background(), *binDir, *host, *cite, *out, *values); err != nil {
			logger.Error("generate pgconf data", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), *binDir, *runAs, *out, *values); err != nil {
		logger.Error("generate pgconf data", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, binDir, runAs, out string, values bool) error {
	res, err := pgsettings.Dump(ctx, pgsettings.Options{BinDir: binDir, User: runAs})
	if err != nil {
		return fmt.Errorf("read pg_settings from %s: %w", binDir, err)
	}
	src := live{
		from: fmt.Sprintf("live pg_settings of a throwaway PostgreSQL server (server_version_num %d,\n#   binaries %s)", res.ServerVersionNum, filepath.Clean(binDir)),
		cmd:  "go run ./gen -bindir " + filepath.Clean(binDir),
	}
	return write(res, src, out, values)
}

// runRunning is run for a server started by someone else (-host).
func runRunning(ctx context.Context, binDir, host, cite, out string, values bool) error {
	if cite == "" {
		return fmt.Errorf("-host needs -cite: the header must say exactly which binaries the server runs")
	}
	res, err := pgsettings.DumpRunning(ctx, binDir, host)
	if err != nil {
		return fmt.Errorf("read pg_settings at %s: %w", host, err)
	}
	src := live{
		from: fmt.Sprintf("live pg_settings of a throwaway PostgreSQL server (server_version_num %d),\n#   %s", res.ServerVersionNum, cite),
		cmd:  fmt.Sprintf("go run ./gen -bindir PSQLBINDIR -host SOCKETDIR -cite %q", cite),
	}
	return write(res, src, out, values)
}

// live says where a live dump came from, for the header.
type live struct{ from, cmd string }

func write(res pgsettings.Result, src live, out string, values bool) error {
	body, err := render(res, src)
	if values {
		body, err = renderValues(res, src)
	}
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(body)
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func render(res pgsettings.Result, src live) ([]byte, error) {
	major := res.Major()
	if !pgconf.Supported(major) {
		return nil, fmt.Errorf("server is PostgreSQL %d, not one of %v", major, pgconf.Majors())
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# PostgreSQL %d core configuration parameters: name<TAB>context<TAB>vartype, as pg_settings lists them.\n", major)
	fmt.Fprintf(&b, "# Source: %s, read by internal/pgconf/gen. Generated file; regenerate, do not edit:\n", src.from)
	fmt.Fprintf(&b, "#   cd internal/pgconf && %s -o data/pg%d.tsv\n", src.cmd, major)
	fmt.Fprintf(&b, "# Left out: custom (dotted) names and distribution-added parameters (%s).\n",
		strings.Join(pgconf.DistributionParameters(), ", "))
	n := 0
	for _, r := range res.Rows {
		if pgconf.IsCustom(r.Name) || pgconf.IsDistributionParameter(r.Name) {
			continue
		}
		if !pgconf.Context(r.Context).Valid() {
			return nil, fmt.Errorf("parameter %s: unknown context %q", r.Name, r.Context)
		}
		if !pgconf.VarType(r.Vartype).Valid() {
			return nil, fmt.Errorf("parameter %s: unknown vartype %q", r.Name, r.Vartype)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n", r.Name, r.Context, r.Vartype)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("pg_settings returned no core parameters")
	}
	return b.Bytes(), nil
}

func renderValues(res pgsettings.Result, src live) ([]byte, error) {
	major := res.Major()
	if !pgconf.Supported(major) {
		return nil, fmt.Errorf("server is PostgreSQL %d, not one of %v", major, pgconf.Majors())
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# PostgreSQL %d value domains: name<TAB>vartype<TAB>unit<TAB>min_val<TAB>max_val<TAB>enumvals ('|'-separated), as pg_settings lists them.\n", major)
	fmt.Fprintf(&b, "# Source: %s, read by internal/pgconf/gen. Generated file; regenerate, do not edit:\n", src.from)
	fmt.Fprintf(&b, "#   cd internal/pgconf && %s -values -o data/pg%d.values.tsv\n", src.cmd, major)
	fmt.Fprintf(&b, "# Left out: custom (dotted) names and distribution-added parameters (%s).\n",
		strings.Join(pgconf.DistributionParameters(), ", "))
	n := 0
	for _, d := range res.Domains {
		if pgconf.IsCustom(d.Name) || pgconf.IsDistributionParameter(d.Name) {
			continue
		}
		for _, v := range d.EnumVals {
			if strings.ContainsAny(v, "|\t\n") {
				return nil, fmt.Errorf("parameter %s: enum value %q cannot be written", d.Name, v)
			}
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Vartype, d.Unit, d.MinVal, d.MaxVal, strings.Join(d.EnumVals, "|"))
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("pg_settings returned no core parameters")
	}
	return b.Bytes(), nil
}
