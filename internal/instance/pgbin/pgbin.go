// Package pgbin finds the PostgreSQL server binaries of the image the
// instance manager runs in: an explicit directory, PATH, pg_config, or the
// usual distribution locations (newest major first).
//
// It must not import `k8s.io/client-go/...`, `github.com/jackc/pgx/...` or
// `pgsync/...`.
package pgbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Dir is a directory holding postgres, initdb, pg_ctl, pg_basebackup,
// pg_controldata and pg_rewind.
type Dir string

// Path returns the full path of a tool in the directory.
func (d Dir) Path(tool string) string { return filepath.Join(string(d), tool) }

var required = []string{"postgres", "initdb", "pg_basebackup", "pg_controldata", "pg_rewind"}

// Find returns the first directory that holds every required tool, trying
// explicit (if set), the directory of `postgres` on PATH, `pg_config
// --bindir`, then globs such as /usr/lib/postgresql/*/bin (newest first).
func Find(explicit string, globs []string) (Dir, error) {
	if explicit != "" {
		if err := check(explicit); err != nil {
			return "", err
		}
		return Dir(explicit), nil
	}
	var tried []string
	if p, err := exec.LookPath("postgres"); err == nil {
		d := filepath.Dir(p)
		if check(d) == nil {
			return Dir(d), nil
		}
		tried = append(tried, d)
	}
	if p, err := exec.LookPath("pg_config"); err == nil {
		// pg_config is a plain binary that prints its bindir; no process
		// tracking is needed for this short-lived call before the reaper
		// starts.
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			d := strings.TrimSpace(string(out))
			if check(d) == nil {
				return Dir(d), nil
			}
			tried = append(tried, d)
		}
	}
	var cands []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		cands = append(cands, m...)
	}
	slices.SortStableFunc(cands, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range cands {
		if check(d) == nil {
			return Dir(d), nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("no PostgreSQL binaries found (tried PATH, pg_config, %s; looked in %v)", strings.Join(globs, ", "), tried)
}

// DefaultGlobs are the distribution layouts searched after PATH.
var DefaultGlobs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/opt/bitnami/postgresql/bin"}

func check(d string) error {
	var missing []string
	for _, t := range required {
		fi, err := os.Stat(filepath.Join(d, t))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: missing %s", d, strings.Join(missing, ", "))
	}
	return nil
}

// versionOf extracts the major version from a path such as
// /usr/lib/postgresql/15/bin or /usr/pgsql-16/bin (0 when absent).
func versionOf(p string) int {
	best := 0
	for _, part := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '-' || r == '.' }) {
		if n, err := strconv.Atoi(part); err == nil && n > best {
			best = n
		}
	}
	return best
}

// ErrNoData is returned by ReadVersion for a PGDATA without PG_VERSION.
var ErrNoData = errors.New("PGDATA holds no database cluster")

// ReadVersion returns the major version recorded in PGDATA/PG_VERSION.
func ReadVersion(pgdata string) (int, error) {
	b, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNoData
	}
	if err != nil {
		return 0, fmt.Errorf("read PG_VERSION: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse PG_VERSION %q: %w", b, err)
	}
	return v, nil
}
