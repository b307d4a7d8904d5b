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

// Dump starts a throwaway server from opt.BinDir, reads pg_settings and
// removes everything it created.
func Dump(ctx context.Context, opt Options) (res Result, err error) {
	for _, b := range []string{"initdb", "pg_ctl", "psql", "postgres"} {
		if _, serr := os.Stat(filepath.Join(opt.BinDir, b)); serr != nil {
			return Result{}, fmt.Errorf("%w: %s: %v", ErrNoBinaries, opt.BinDir, serr)
		}
	}
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	runAs, err := account(opt.User)
	if err != nil {
		return Result{}, err
	}

	dir, err := os.MkdirTemp("", "pgsettings-")
	if err != nil {
		return Result{}, fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove %s: %w", dir, rerr)
		}
	}()
	if err := runAs.own(dir); err != nil {
		return Result{}, err
	}

	data := filepath.Join(dir, "data")
	if _, err := runAs.run(ctx, opt.BinDir, "initdb", "-D", data, "-A", "trust", "-U", "postgres",
		"--no-sync", "--no-locale", "-E", "UTF8"); err != nil {
		return Result{}, err
	}

	pgOpts := "-c listen_addresses= -k " + dir
	if len(opt.Preload) > 0 {
		pgOpts += " -c shared_preload_libraries=" + strings.Join(opt.Preload, ",")
	}
	if _, err := runAs.run(ctx, opt.BinDir, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"),
		"-o", pgOpts, "-w", "-t", "60", "start"); err != nil {
		if log, rerr := os.ReadFile(filepath.Join(dir, "server.log")); rerr == nil {
			err = fmt.Errorf("%w\nserver log:\n%s", err, log)
		}
		return Result{}, err
	}
	defer func() {
		// A fresh context: the server must go even if ctx expired.
		stopCtx, stopCancel := context.WithTimeout(context.Background(), time.Minute)
		defer stopCancel()
		if _, serr := runAs.run(stopCtx, opt.BinDir, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); serr != nil && err == nil {
			err = serr
		}
	}()

	psql := func(query string) ([]byte, error) {
		return runAs.run(ctx, opt.BinDir, "psql", "-X", "-q", "-A", "-t", "-F", "\t",
			"-h", dir, "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", query)
	}
	out, err := psql("SELECT current_setting('server_version_num')")
	if err != nil {
		return Result{}, err
	}
	res.ServerVersionNum, err = strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return Result{}, fmt.Errorf("parse server_version_num %q: %w", out, err)
	}
	out, err = psql("SELECT name, context, vartype FROM pg_settings")
	if err != nil {
		return Result{}, err
	}
	res.Rows, err = parseRows(out)
	if err != nil {
		return Result{}, err
	}
	return res, nil
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
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, prog), args...)
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
		return nil, fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
