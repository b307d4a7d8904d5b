// Package pgsettings reads pg_settings from a throwaway PostgreSQL server.
//
// It is the imperative shell behind package pgconf's data: it runs initdb
// into a fresh temporary directory, starts the postmaster on a Unix socket
// inside that directory (no TCP listener), queries pg_settings with psql and
// stops the server again. When the caller is root the server runs as an
// unprivileged account (PostgreSQL refuses to run as root).
//
// It is used by the pgconf generator (gen/) and by pgconf's integration test.
// It imports no other pgsync package.
package pgsettings

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinaries reports that the PostgreSQL binaries are not where the
// caller said they are. Tests use it to decide whether to skip.
var ErrNoBinaries = errors.New("postgresql binaries not found")

// ErrNoUser reports that the process runs as root and the unprivileged
// account to run postgres as does not exist.
var ErrNoUser = errors.New("no unprivileged user to run postgres as")

// Row is one line of pg_settings.
type Row struct {
	Name    string
	Context string
	Vartype string
}

// Result is what Dump read from the server.
type Result struct {
	// ServerVersionNum is server_version_num, e.g. 150018.
	ServerVersionNum int
	// Rows holds every row of pg_settings, sorted by name, custom
	// (dotted) names included.
	Rows []Row
	// Domains holds the value domain of every row, in the same order.
	Domains []Domain
}

// Major returns the major version (15 for 150018).
func (r Result) Major() int { return r.ServerVersionNum / 10000 }

// Options configures Dump.
type Options struct {
	// BinDir holds initdb, pg_ctl and psql (e.g. /usr/lib/postgresql/15/bin).
	BinDir string
	// User is the account postgres runs as when the caller is root;
	// empty means "postgres".
	User string
	// Preload is put into shared_preload_libraries, so that the
	// parameters those libraries define show up in pg_settings.
	Preload []string
	// Timeout bounds the whole run; zero means two minutes.
	Timeout time.Duration
}

// Domain is what pg_settings says a parameter's values may be: the unit
// of an integer or real (empty: none), its bounds, and the visible values
// of an enum.
type Domain struct {
	Name     string
	Vartype  string
	Unit     string
	MinVal   string
	MaxVal   string
	EnumVals []string
}

// Server is a running throwaway server (Start); Stop removes it.
type Server struct {
	ctx    context.Context
	cancel context.CancelFunc
	runAs  identity
	binDir string
	dir    string
	data   string
}

// Start runs initdb into a fresh temporary directory and starts a server
// on a Unix socket inside it (no TCP listener).
func Start(ctx context.Context, opt Options) (_ *Server, err error) {
	for _, b := range []string{"initdb", "pg_ctl", "psql", "postgres"} {
		if _, serr := os.Stat(filepath.Join(opt.BinDir, b)); serr != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoBinaries, opt.BinDir, serr)
		}
	}
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	runAs, err := account(opt.User)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgsettings-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	s := &Server{ctx: ctx, cancel: cancel, runAs: runAs, binDir: opt.BinDir, dir: dir, data: filepath.Join(dir, "data")}
	defer func() {
		if err != nil {
			cancel()
			_ = os.RemoveAll(dir)
		}
	}()
	if err := runAs.own(dir); err != nil {
		return nil, err
	}
	if _, err := runAs.run(ctx, opt.BinDir, "initdb", "-D", s.data, "-A", "trust", "-U", "postgres",
		"--no-sync", "--no-locale", "-E", "UTF8"); err != nil {
		return nil, err
	}
	// fsync off: nothing here needs durability (ALTER SYSTEM in the tests
	// rewrites postgresql.auto.conf once per value).
	pgOpts := "-c listen_addresses= -c fsync=off -k " + dir
	if len(opt.Preload) > 0 {
		pgOpts += " -c shared_preload_libraries=" + strings.Join(opt.Preload, ",")
	}
	if _, err := runAs.run(ctx, opt.BinDir, "pg_ctl", "-D", s.data, "-l", filepath.Join(dir, "server.log"),
		"-o", pgOpts, "-w", "-t", "60", "start"); err != nil {
		if log, rerr := os.ReadFile(filepath.Join(dir, "server.log")); rerr == nil {
			err = fmt.Errorf("%w\nserver log:\n%s", err, log)
		}
		return nil, err
	}
	return s, nil
}

// Query runs one SQL statement with psql (unaligned, tab-separated, no
// headers) and returns its output; an SQL error is an error carrying
// psql's message.
func (s *Server) Query(query string) ([]byte, error) {
	return s.runAs.run(s.ctx, s.binDir, "psql", "-X", "-q", "-A", "-t", "-F", "\t",
		"-h", s.dir, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", query)
}

// Script runs a psql script (psql -f -) and returns its standard output;
// statements that fail do not stop it unless the script says so.
func (s *Server) Script(script string) ([]byte, error) {
	return s.runAs.runInput(s.ctx, s.binDir, script, "psql", "-X", "-q", "-A", "-t",
		"-h", s.dir, "-U", "postgres", "-d", "postgres", "-f", "-")
}

// WriteFile writes a file into the data directory, owned by the account
// the server runs as (pg_hba.conf, for one).
func (s *Server) WriteFile(name string, data []byte) error {
	path := filepath.Join(s.data, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	if s.runAs.root {
		return os.Chown(path, s.runAs.uid, s.runAs.gid)
	}
	return nil
}

// Stop stops the server (immediate) and removes its directory.
func (s *Server) Stop() error {
	defer s.cancel()
	// A fresh context: the server must go even if the start context expired.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), time.Minute)
	defer stopCancel()
	_, err := s.runAs.run(stopCtx, s.binDir, "pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop")
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", s.dir, rerr)
	}
	return err
}

// Dump starts a throwaway server from opt.BinDir, reads pg_settings and
// removes everything it created.
func Dump(ctx context.Context, opt Options) (res Result, err error) {
	s, err := Start(ctx, opt)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if serr := s.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	return read(s.Query)
}

// DumpRunning reads pg_settings from a server that is already running,
// through psql from binDir on the Unix socket directory host, as the
// calling account, user postgres. It is for a server pgsync's tools cannot
// start themselves, e.g. a distribution package's binaries started in a
// chroot because they need a newer C library than the build machine's.
func DumpRunning(ctx context.Context, binDir, host string) (Result, error) {
	if _, err := os.Stat(filepath.Join(binDir, "psql")); err != nil {
		return Result{}, fmt.Errorf("%w: %s: %v", ErrNoBinaries, binDir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return read(func(query string) ([]byte, error) {
		return identity{}.run(ctx, binDir, "psql", "-X", "-q", "-A", "-t", "-F", "\t",
			"-h", host, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", query)
	})
}

// read runs the pg_settings queries through query.
func read(query func(string) ([]byte, error)) (res Result, err error) {
	out, err := query("SELECT current_setting('server_version_num')")
	if err != nil {
		return Result{}, err
	}
	res.ServerVersionNum, err = strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return Result{}, fmt.Errorf("parse server_version_num %q: %w", out, err)
	}
	out, err = query("SELECT name, context, vartype FROM pg_settings")
	if err != nil {
		return Result{}, err
	}
	res.Rows, err = parseRows(out)
	if err != nil {
		return Result{}, err
	}
	out, err = query(domainQuery)
	if err != nil {
		return Result{}, err
	}
	res.Domains, err = parseDomains(out)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// domainQuery reads the value domains; enum values are joined with '|',
// which no enum value contains.
const domainQuery = `SELECT name, vartype, coalesce(unit, ''), coalesce(min_val, ''), coalesce(max_val, ''),
	coalesce(array_to_string(enumvals, '|'), '') FROM pg_settings`

func parseDomains(out []byte) ([]Domain, error) {
	var ds []Domain
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("unexpected pg_settings line %q", line)
		}
		d := Domain{Name: f[0], Vartype: f[1], Unit: f[2], MinVal: f[3], MaxVal: f[4]}
		if f[5] != "" {
			d.EnumVals = strings.Split(f[5], "|")
		}
		ds = append(ds, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read psql output: %w", err)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
	return ds, nil
}

func parseRows(out []byte) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("unexpected pg_settings line %q", line)
		}
		rows = append(rows, Row{Name: f[0], Context: f[1], Vartype: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read psql output: %w", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows, nil
}

// identity is who the PostgreSQL programs run as.
type identity struct {
	root     bool
	uid, gid int
	name     string
}

func account(name string) (identity, error) {
	if os.Geteuid() != 0 {
		return identity{}, nil
	}
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return identity{}, fmt.Errorf("%w: running as root and user %q: %v", ErrNoUser, name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return identity{}, fmt.Errorf("uid of %q: %w", name, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return identity{}, fmt.Errorf("gid of %q: %w", name, err)
	}
	return identity{root: true, uid: uid, gid: gid, name: name}, nil
}

func (id identity) own(dir string) error {
	if !id.root {
		return nil
	}
	if err := os.Chown(dir, id.uid, id.gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", dir, id.name, err)
	}
	return nil
}

func (id identity) run(ctx context.Context, binDir, prog string, args ...string) ([]byte, error) {
	return id.runInput(ctx, binDir, "", prog, args...)
}

func (id identity) runInput(ctx context.Context, binDir, input, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, prog), args...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	cmd.Dir = os.TempDir()
	if id.root {
		setCredential(cmd, id.uid, id.gid)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// pg_ctl leaves a daemon behind; should it ever hold our pipes, do
	// not wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, lastLines(stderr.String(), 20))
	}
	return stdout.Bytes(), nil
}

// lastLines keeps the end of a long error output.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
