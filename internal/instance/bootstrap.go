package instance

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/podcontract"
)

// initPrimary: initdb (data checksums, SCRAM), take the Lease, start,
// create the roles, route -rw.
func (m *Manager) initPrimary(ctx context.Context) error {
	// The superuser's password only while it has access (and its Secret
	// is there); else none, as the loop keeps it (superuser.go).
	password, err := m.superuserPassword()
	if err != nil {
		return err
	}
	pw := ""
	if password != "" {
		pw = m.cfg.RunDir + "/initdb.pw"
		if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
			return fmt.Errorf("write initdb password file: %w", err)
		}
		defer os.Remove(pw)
	}
	m.status.update(func(s *Status) { s.Role = "bootstrapping" })
	// A post-init SQL file missing holds the bootstrap before initdb,
	// so that nothing is half done (postinit.go).
	if err := m.postInitFilesPresent(ctx); err != nil {
		return err
	}
	if m.cfg.WALDir != "" {
		// initdb refuses a non-empty WAL directory: what an earlier,
		// interrupted initdb left there (PGDATA is new) goes.
		if err := os.RemoveAll(m.cfg.WALDir); err != nil {
			return fmt.Errorf("clear the WAL directory: %w", err)
		}
	}
	args := initdbArgs(m.cfg.PGData, m.cfg.WALDir, pw, m.cfg.InitDB)
	if err := m.runLogged(ctx, "initdb", m.bin.Path("initdb"), args...); err != nil {
		return err
	}
	if err := m.acquireLease(ctx); err != nil {
		return err
	}
	// Holding the Lease from here: no step may outlast the fencing moment.
	ctx, cancel := m.whileHolding(ctx)
	defer cancel()
	if err := m.writeConfig(false, ""); err != nil {
		return err
	}
	if err := m.owner.Start(ctx); err != nil {
		return err
	}
	if err := m.waitAccepting(ctx, 60*time.Second); err != nil {
		return err
	}
	// The post-init SQL (spec.bootstrap.initdb) and the roles, once
	// (postinit.go).
	if err := m.postInit(ctx); err != nil {
		return err
	}
	return m.route(ctx, "")
}

// initdbArgs are initdb's arguments: the superuser's password from pwFile
// ("": none), and spec.bootstrap.initdb's options over pgsync's defaults
// (UTF8, locale C, data checksums). The pg_hba.conf initdb writes is
// replaced by the manager's before the first start; its methods only have
// to be ones initdb accepts without a password when there is none.
func initdbArgs(pgdata, walDir, pwFile string, o podcontract.InitDB) []string {
	args := []string{"-D", pgdata, "-U", podcontract.SuperUser}
	if pwFile != "" {
		args = append(args, "--pwfile="+pwFile, "--auth-local=peer", "--auth-host=scram-sha-256")
	} else {
		args = append(args, "--auth-local=peer", "--auth-host=reject")
	}
	switch {
	case !o.NoDataChecksums:
		args = append(args, "--data-checksums")
	case o.Major >= 18:
		// 18's initdb turns checksums on by default; older ones have
		// them off and no --no-data-checksums.
		args = append(args, "--no-data-checksums")
	}
	enc := o.Encoding
	if enc == "" {
		enc = "UTF8"
	}
	args = append(args, "-E", enc)
	locale := o.Locale
	if locale == "" && o.LocaleCollate == "" && o.LocaleCType == "" {
		locale = "C"
	}
	for _, f := range []struct{ flag, v string }{
		{"--locale", locale}, {"--lc-collate", o.LocaleCollate}, {"--lc-ctype", o.LocaleCType},
		{"--locale-provider", o.LocaleProvider}, {"--icu-locale", o.ICULocale},
		{"--icu-rules", o.ICURules}, {"--builtin-locale", o.BuiltinLocale},
	} {
		if f.v != "" {
			args = append(args, f.flag+"="+f.v)
		}
	}
	if o.WALSegmentSize > 0 {
		args = append(args, "--wal-segsize="+strconv.Itoa(o.WALSegmentSize))
	}
	if walDir != "" {
		args = append(args, "--waldir="+walDir)
	}
	return args
}

// clone takes a base backup from the primary and starts as its standby.
func (m *Manager) clone(ctx context.Context, upstream string) error {
	h, p, err := splitAddress(upstream)
	if err != nil {
		return err
	}
	m.status.update(func(s *Status) { s.Role = "bootstrapping" })
	if err := m.writePassFile(h, p); err != nil {
		return err
	}
	if err := os.RemoveAll(m.cfg.PGData); err != nil {
		return fmt.Errorf("clear PGDATA: %w", err)
	}
	conninfo := conffile.ConnInfoTLS(h, p, conffile.ReplicationUser, m.cfg.Instance, m.passFile(), m.upstreamClientTLS(true))
	args := []string{"-D", m.cfg.PGData, "-d", conninfo, "-X", "stream", "-c", "fast", "--no-password"}
	if m.cfg.WALDir != "" {
		// The old WAL belongs to the data directory just removed.
		if err := os.RemoveAll(m.cfg.WALDir); err != nil {
			return fmt.Errorf("clear the WAL directory: %w", err)
		}
		args = append(args, "--waldir="+m.cfg.WALDir)
	}
	if err := m.runLogged(ctx, "pg_basebackup", m.bin.Path("pg_basebackup"), args...); err != nil {
		return err
	}
	m.takeover = false
	if err := m.writeConfig(true, upstream); err != nil {
		return err
	}
	m.labelOnce(ctx, podcontract.RoleReplica)
	return m.owner.Start(ctx)
}

func (m *Manager) waitAccepting(ctx context.Context, limit time.Duration) error {
	deadline := m.now().Add(limit)
	for {
		if _, err := m.db.observe(ctx); err == nil {
			return nil
		} else if m.now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
