package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/instance/role"
	"github.com/pgsync/pgsync/internal/podcontract"
)

// rejoin starts a stopped instance as a standby of upstream. A former
// primary that lost the Lease in a failover comes back here: its data
// may hold WAL the new primary never received. In order:
//
//  1. data left by a crash (no shutdown checkpoint) first finishes crash
//     recovery in single-user mode (no connection is accepted, so no
//     write), so that its checkpoint marks the end of its WAL;
//  2. where the primary's timeline history forked from ours, and how far
//     our WAL goes past that point, is the discarded range: logged with
//     its size and the commits in it (pg_waldump), and kept in /status
//     (lastRejoin);
//  3. pg_rewind only if the timelines diverged; if pg_rewind fails, a
//     fresh base backup replaces the data directory;
//  4. start as a standby of upstream.
func (m *Manager) rejoin(ctx context.Context, upstream string) error {
	h, p, err := splitAddress(upstream)
	if err != nil {
		return err
	}
	if err := m.writePassFile(h, p); err != nil {
		return err
	}
	ssl := conffile.PgxTLS(m.upstreamClientTLS(false))
	cd, err := m.controlData()
	if err != nil {
		return err
	}
	// As streaming_replica (by certificate with TLS, else its password):
	// the primary granted it what the timeline check and pg_rewind use
	// (ensureRejoinGrants). A primary whose manager predates that, or
	// that has not granted yet, refuses it; then the superuser, as
	// before, while it has access (it may in turn be refused by the
	// user's pg_hba: then the rewind fails over to a base backup, which
	// streams as streaming_replica).
	user, password, tls := conffile.ReplicationUser, m.cfg.Credentials.ReplicationPassword, m.upstreamClientTLS(true)
	if tls != nil {
		password = ""
	}
	suPassword, err := m.superuserPassword()
	if err != nil {
		return err
	}
	ptli, hist, err := remoteTimeline(ctx, h, p, user, password, conffile.PgxTLS(tls))
	if err != nil && !errors.Is(err, errNotYetPromoted) && suPassword != "" {
		m.log.Warn("rejoin: the timeline check as streaming_replica failed; trying the superuser", "error", err.Error())
		user, password, tls = "postgres", suPassword, m.upstreamClientTLS(false)
		ptli, hist, err = remoteTimeline(ctx, h, p, user, password, ssl)
	}
	if err != nil {
		return err
	}
	entries, err := role.ParseHistory(hist)
	if err != nil {
		return err
	}
	rec := podcontract.Rejoin{At: m.now().UTC(), Primary: upstream, Method: "none"}
	if role.NeedsCrashRecovery(cd.State, cd.TimeLineID, ptli) {
		m.log.Warn("rejoin: the data was not shut down cleanly; crash recovery in single-user mode first",
			"state", cd.State, "timeline", cd.TimeLineID, "checkpoint", cd.Checkpoint.String())
		if err := m.runLogged(ctx, "postgres", m.bin.Path("postgres"), "--single", "-D", m.cfg.PGData, "postgres"); err != nil {
			return fmt.Errorf("crash recovery before the rejoin: %w", err)
		}
		if cd, err = m.controlData(); err != nil {
			return err
		}
	}
	if fork, ok := role.ForkPoint(cd.TimeLineID, entries); ok && cd.Checkpoint >= fork {
		rec.DiscardedFrom, rec.DiscardedTo = fork.String(), cd.Checkpoint.String()
		rec.DiscardedBytes = int64(cd.Checkpoint - fork)
		rec.DiscardedCommits, rec.CommitsCounted = m.countCommits(cd.TimeLineID, fork, cd.Checkpoint)
		m.log.Warn("rejoin: discarding WAL the new primary never received", "from", rec.DiscardedFrom, "to", rec.DiscardedTo,
			"bytes", rec.DiscardedBytes, "commits", rec.DiscardedCommits, "commitsCounted", rec.CommitsCounted,
			"timeline", cd.TimeLineID, "primaryTimeline", ptli)
		m.event(corev1.EventTypeWarning, podcontract.EventRejoinDiscardedWAL, fmt.Sprintf(
			"rejoining as a standby of %s: discarding WAL %s to %s (%d bytes, %s) that the new primary never received",
			upstream, rec.DiscardedFrom, rec.DiscardedTo, rec.DiscardedBytes, commitsText(rec.DiscardedCommits, rec.CommitsCounted)))
	}
	if role.NeedsRewind(cd.TimeLineID, cd.Checkpoint, ptli, entries) {
		m.log.Warn("timelines diverged: running pg_rewind", "localTimeline", cd.TimeLineID,
			"localCheckpoint", cd.Checkpoint.String(), "primaryTimeline", ptli)
		rec.Method = "pg_rewind"
		if err := remoteCheckpoint(ctx, h, p, user, password, conffile.PgxTLS(tls)); err != nil && user != "postgres" && isInsufficientPrivilege(err) {
			// PostgreSQL 13 and 14 have no pg_checkpoint role. pg_rewind
			// reads the primary's timeline from its control file, which a
			// promotion updates only at its next checkpoint: the promoted
			// primary's manager runs one at once (promote), so wait for
			// it. No superuser needed.
			m.log.Info("rejoin: CHECKPOINT as streaming_replica refused (PostgreSQL before 15); waiting for the primary's own checkpoint on its timeline", "timeline", ptli)
			if err := waitRemoteCheckpoint(ctx, h, p, user, password, conffile.PgxTLS(tls), ptli, time.Minute); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		m.log.Info("rejoin: pg_rewind", "as", user)
		src := conffile.ConnInfoTLS(h, p, user, "", m.passFile(), tls)
		if err := m.runLogged(ctx, "pg_rewind", m.bin.Path("pg_rewind"), "-D", m.cfg.PGData, "--source-server="+src); err != nil {
			if ctx.Err() != nil {
				return err
			}
			m.log.Error("pg_rewind failed: replacing the data directory with a new base backup", "error", err.Error())
			rec.Method, rec.FallbackReason = "base backup", err.Error()
			m.status.update(func(s *Status) { s.LastRejoin = &rec })
			return m.clone(ctx, upstream)
		}
	}
	m.status.update(func(s *Status) { s.LastRejoin = &rec })
	m.takeover = false
	if err := m.writeConfig(true, upstream); err != nil {
		return err
	}
	m.labelOnce(ctx, podcontract.RoleReplica)
	return m.owner.Start(ctx)
}

// countCommits counts the commit records of timeline tli in [from, to)
// of the local WAL (pg_waldump); ok is false when it could not.
func (m *Manager) countCommits(tli uint32, from, to role.LSN) (int, bool) {
	if from >= to {
		return 0, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin.Path("pg_waldump"), "-p", m.cfg.PGData+"/pg_wal", "-t", fmt.Sprint(tli),
		"-s", from.String(), "-e", to.String(), "-r", "Transaction")
	cmd.Env = postgresEnv(os.Environ())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := m.tracker.Output(cmd)
	if err != nil {
		// It stops with an error at a record it cannot read: what it
		// printed before that still counts.
		m.log.Warn("rejoin: pg_waldump", "error", err.Error(), "stderr", strings.TrimSpace(stderr.String()))
		if len(out) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "desc: COMMIT") {
			n++
		}
	}
	return n, true
}

// commitsText says how many commits a discarded range held, or that they
// could not be counted (pg_waldump missing or failing).
func commitsText(n int, counted bool) string {
	if !counted {
		return "commits not counted"
	}
	return fmt.Sprintf("%d commits", n)
}
