package instance

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pgsync/pgsync/internal/podcontract"
)

// initPrimary: initdb (data checksums, SCRAM), take the Lease, start,
// create the roles, route -rw.
func (m *Manager) initPrimary(ctx context.Context) error {
	pw := m.cfg.RunDir + "/initdb.pw"
	if err := os.WriteFile(pw, []byte(m.cfg.Credentials.SuperuserPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initdb password file: %w", err)
	}
	defer os.Remove(pw)
	m.status.update(func(s *Status) { s.Role = "bootstrapping" })
	args := []string{"-D", m.cfg.PGData, "-U", "postgres",
		"--pwfile=" + pw, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
		"--data-checksums", "-E", "UTF8", "--locale=C"}
	if m.cfg.WALDir != "" {
		// initdb refuses a non-empty WAL directory: what an earlier,
		// interrupted initdb left there (PGDATA is new) goes.
		if err := os.RemoveAll(m.cfg.WALDir); err != nil {
			return fmt.Errorf("clear the WAL directory: %w", err)
		}
		args = append(args, "--waldir="+m.cfg.WALDir)
	}
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
	if err := m.db.ensureRoles(ctx, m.cfg.Credentials); err != nil {
		return err
	}
	return m.route(ctx, "")
}

// clone takes a base backup from the primary and starts as its standby.
func (m *Manager) clone(ctx context.Context, upstream string) error {
	h, p, err := splitAddress(upstream)
	if err != nil {
		return err
	}
	m.status.update(func(s *Status) { s.Role = "bootstrapping" })
	if err := m.writePassFile(); err != nil {
		return err
	}
	if err := os.RemoveAll(m.cfg.PGData); err != nil {
		return fmt.Errorf("clear PGDATA: %w", err)
	}
	conninfo := fmt.Sprintf("host=%s port=%d user=streaming_replica passfile=%s application_name=%s", h, p, m.passFile(), m.cfg.Instance)
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
