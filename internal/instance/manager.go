package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/pgsync/pgsync/internal/instance/pgbin"
	"github.com/pgsync/pgsync/internal/instance/pglog"
	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/reaper"
	"github.com/pgsync/pgsync/internal/instance/role"
)

// LeaseStore is what the alignment loop needs from Kubernetes: the watched
// primary Lease, its three writes, and routing of -rw.
type LeaseStore interface {
	Current() role.Lease
	Changed() <-chan struct{}
	Renew(ctx context.Context, self string) (time.Time, error)
	Acquire(ctx context.Context, self, systemID string) (time.Time, error)
	Publish(ctx context.Context, self, address string) error
	Release(ctx context.Context, self string, final role.LSN) error
	Route(ctx context.Context, self, podIP string, port int32, previous string) error
	LabelRole(ctx context.Context, pod, value string) error
}

// postgresOwner is what the loop needs from the postmaster owner.
type postgresOwner interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context, m postmaster.Mode) error
	Signal(ctx context.Context, sig syscall.Signal) error
	State() postmaster.State
	Changed() <-chan struct{}
}

// Manager aligns one instance with the cluster.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	bin     pgbin.Dir
	tracker *reaper.Tracker
	owner   postgresOwner
	lease   LeaseStore
	db      *localDB
	now     func() time.Time
	status  *statusBox

	// State of the loop (only the loop goroutine touches these).
	params         map[string]string
	paramsRaw      string
	nextParamsRead time.Time
	upstream       string
	routed         bool
	labelled       string // the role label last written for this pod
	lastRenew      time.Time
	nextRenewTry   time.Time
}

// observe builds the decision's input.
func (m *Manager) observe(ctx context.Context) (role.Input, error) {
	in := role.Input{Self: m.cfg.Instance, Lease: m.lease.Current()}
	st := m.owner.State()
	has, err := m.hasData()
	if err != nil {
		return in, err
	}
	in.Local = role.Local{HasData: has, Up: st.Wanted, Upstream: m.upstream, Routed: m.routed}
	if st.Wanted && st.Running {
		q, err := m.db.observe(ctx)
		if err == nil {
			in.Local.Accepting, in.Local.InRecovery, in.Local.ReplayLSN = true, q.InRecovery, q.Replay
		}
	}
	if has && !st.Wanted && !st.Running {
		if cd, err := m.controlData(); err == nil {
			in.Local.CheckpointLSN = cd.Checkpoint
		}
	}
	now := m.now()
	if in.Lease.Holder == m.cfg.Instance {
		d := m.cfg.LeaseDuration
		// Stop writing a quarter of the duration before others may
		// consider the Lease expired: room for the fast shutdown.
		in.RenewOverdue = m.lastRenew.IsZero() || now.After(m.lastRenew.Add(d-d/4))
		in.RenewDue = !now.Before(m.nextRenewTry) && (in.RenewOverdue || now.Sub(m.lastRenew) >= d/3)
	}
	return in, nil
}

// align is the loop: observe, decide, act, wait for a change.
func (m *Manager) align(ctx context.Context) {
	for ctx.Err() == nil {
		m.reloadParameters(ctx)
		in, err := m.observe(ctx)
		var act role.Action
		if err == nil {
			act = role.Decide(in)
			m.status.update(func(s *Status) {
				s.Action, s.ActionReason = act.Kind.String(), act.Reason
				s.LeaseHolder, s.Target, s.Upstream = in.Lease.Holder, in.Lease.Target, m.upstream
			})
			if act.Kind != role.Wait && act.Kind != role.Renew {
				m.log.Info("action", "action", act.Kind.String(), "reason", act.Reason, "upstream", act.Upstream)
			}
			err = m.execute(ctx, in, act)
		}
		if errors.Is(err, errNotYetPromoted) {
			m.log.Debug("waiting for the new primary to finish promotion")
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		if err != nil && ctx.Err() == nil {
			m.log.Error("alignment step failed", "action", act.Kind.String(), "error", err.Error())
			m.status.update(func(s *Status) { s.LastError, s.LastErrorTime = err.Error(), m.now() })
		}
		next := time.Second
		switch {
		case err != nil:
			next = 500 * time.Millisecond
		case act.Kind != role.Wait && act.Kind != role.Renew:
			continue // observe the result at once
		case in.Local.Up && !in.Local.Accepting:
			next = 20 * time.Millisecond
		case in.Lease.Holder == "" && in.Lease.Target == m.cfg.Instance && in.Local.Accepting:
			next = 2 * time.Millisecond // replaying towards the final LSN
		case in.Lease.Holder == m.cfg.Instance:
			next = min(next, m.cfg.LeaseDuration/10)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
		case <-m.lease.Changed():
		case <-m.owner.Changed():
		case <-t.C:
		}
		t.Stop()
	}
}

func (m *Manager) execute(ctx context.Context, in role.Input, act role.Action) error {
	switch act.Kind {
	case role.Wait:
		return nil
	case role.InitPrimary:
		return m.initPrimary(ctx)
	case role.Clone:
		return m.clone(ctx, act.Upstream)
	case role.StartPrimary:
		return m.startPrimary(ctx, act.TakeLease)
	case role.StartStandby:
		if err := m.writeConfig(true, ""); err != nil {
			return err
		}
		return m.owner.Start(ctx)
	case role.Rejoin:
		return m.rejoin(ctx, act.Upstream)
	case role.Follow:
		if err := m.writeConfig(true, act.Upstream); err != nil {
			return err
		}
		m.labelOnce(ctx, "replica")
		return m.owner.Signal(ctx, syscall.SIGHUP)
	case role.Renew:
		sent, err := m.lease.Renew(ctx, m.cfg.Instance)
		if err != nil {
			m.nextRenewTry = m.now().Add(500 * time.Millisecond)
			return fmt.Errorf("renew primary Lease: %w", err)
		}
		m.lastRenew, m.nextRenewTry = sent, time.Time{}
		return nil
	case role.Demote:
		return m.demote(ctx, in)
	case role.Promote:
		return m.promote(ctx, in)
	case role.Route:
		if err := m.db.ensureRoles(ctx, m.cfg.Credentials); err != nil {
			return err
		}
		return m.route(ctx, "")
	case role.Fence:
		m.log.Warn("fencing: stopping postgres", "reason", act.Reason)
		m.status.update(func(s *Status) { s.Fenced = true })
		m.routed = false
		return m.owner.Stop(ctx, postmaster.Fast)
	}
	return fmt.Errorf("unknown action %v", act.Kind)
}

// labelOnce labels this pod with its role, once per change (best effort:
// -ro routing, not safety, depends on it).
func (m *Manager) labelOnce(ctx context.Context, value string) {
	if m.labelled == value {
		return
	}
	if err := m.lease.LabelRole(ctx, m.cfg.Instance, value); err != nil {
		m.log.Warn("label pod", "role", value, "error", err.Error())
		return
	}
	m.labelled = value
}

func (m *Manager) startPrimary(ctx context.Context, take bool) error {
	if take {
		cd, err := m.controlData()
		if err != nil {
			return err
		}
		sent, err := m.lease.Acquire(ctx, m.cfg.Instance, cd.SystemID)
		if err != nil {
			return err
		}
		m.lastRenew = sent
	}
	// Data left as a standby (a manager that stopped between taking the
	// Lease and promoting) starts in recovery; the next decision promotes
	// it, onto a new timeline like any promotion. Removing standby.signal
	// instead would silently continue the old timeline.
	if err := m.writeConfig(m.isStandbyConfigured(), ""); err != nil {
		return err
	}
	m.routed = false
	m.status.update(func(s *Status) { s.Fenced = false })
	return m.owner.Start(ctx)
}

// demote: CHECKPOINT (so the shutdown checkpoint is short), fast stop,
// publish the shutdown checkpoint's LSN on the Lease, release it.
func (m *Manager) demote(ctx context.Context, in role.Input) error {
	t0 := m.now()
	if in.Local.Up && in.Local.Accepting && !in.Local.InRecovery {
		// Invariant 2, checked where it matters: never stop the primary
		// for a target that is not streaming from it.
		var streaming bool
		if err := m.db.queryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming')`,
			quoteLiteral(in.Lease.Target)), &streaming); err != nil {
			return fmt.Errorf("check the switchover target: %w", err)
		}
		if !streaming {
			return fmt.Errorf("switchover to %s refused: it is not streaming from this primary", in.Lease.Target)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := m.db.exec(cctx, "CHECKPOINT")
		cancel()
		if err != nil {
			m.log.Warn("checkpoint before switchover", "error", err.Error())
		}
	}
	t1 := m.now()
	m.db.close()
	if err := m.owner.Stop(ctx, postmaster.Fast); err != nil {
		return err
	}
	t2 := m.now()
	cd, err := m.controlData()
	if err != nil {
		return err
	}
	if cd.State != "shut down" {
		return fmt.Errorf("cannot publish a final LSN: cluster state is %q after a fast stop", cd.State)
	}
	if err := m.lease.Release(ctx, m.cfg.Instance, cd.Checkpoint); err != nil {
		return err
	}
	m.routed, m.upstream = false, ""
	m.log.Info("released the primary Lease", "finalLSN", cd.Checkpoint.String(), "target", in.Lease.Target,
		"checkpoint", t1.Sub(t0).String(), "stop", t2.Sub(t1).String(), "total", m.now().Sub(t0).String())
	return nil
}

// promote: take the Lease, promote, route -rw here in one EndpointSlice
// write, relabel. The Lease comes first so that two writable primaries
// never exist even for a moment.
func (m *Manager) promote(ctx context.Context, in role.Input) error {
	t0 := m.now()
	previous := in.Lease.ReleasedBy
	if in.Lease.Holder != m.cfg.Instance {
		sent, err := m.lease.Acquire(ctx, m.cfg.Instance, "")
		if err != nil {
			return err
		}
		m.lastRenew = sent
	}
	t1 := m.now()
	if err := m.db.promote(ctx); err != nil {
		return err
	}
	t2 := m.now()
	if err := m.route(ctx, previous); err != nil {
		// Retried by the Route action of the next iterations.
		m.log.Error("route -rw after promotion", "error", err.Error())
	}
	t3 := m.now()
	// Drop primary_conninfo from the generated file; no reload needed.
	if err := m.writeConfig(false, ""); err != nil {
		return err
	}
	m.log.Info("promoted", "acquire", t1.Sub(t0).String(), "promote", t2.Sub(t1).String(), "route", t3.Sub(t2).String())
	return nil
}

// initPrimary: initdb (data checksums, SCRAM), take the Lease, start,
// create the roles, route -rw.
func (m *Manager) initPrimary(ctx context.Context) error {
	pw := m.cfg.RunDir + "/initdb.pw"
	if err := os.WriteFile(pw, []byte(m.cfg.Credentials.SuperuserPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initdb password file: %w", err)
	}
	defer os.Remove(pw)
	m.status.update(func(s *Status) { s.Role = "bootstrapping" })
	if err := m.runLogged(ctx, "initdb", m.bin.Path("initdb"), "-D", m.cfg.PGData, "-U", "postgres",
		"--pwfile="+pw, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
		"--data-checksums", "-E", "UTF8", "--locale=C"); err != nil {
		return err
	}
	cd, err := m.controlData()
	if err != nil {
		return err
	}
	sent, err := m.lease.Acquire(ctx, m.cfg.Instance, cd.SystemID)
	if err != nil {
		return err
	}
	m.lastRenew = sent
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

// route points -rw here (one EndpointSlice write), relabels the pods, then
// publishes this primary's address so standbys follow it.
func (m *Manager) route(ctx context.Context, previous string) error {
	if err := m.lease.Route(ctx, m.cfg.Instance, m.cfg.PodIP, int32(m.cfg.Port), previous); err != nil {
		return err
	}
	m.labelled = "primary"
	if err := m.lease.Publish(ctx, m.cfg.Instance, m.cfg.AdvertiseAddress); err != nil {
		return err
	}
	m.routed = true
	return nil
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
	if err := m.runLogged(ctx, "pg_basebackup", m.bin.Path("pg_basebackup"), "-D", m.cfg.PGData,
		"-d", conninfo, "-X", "stream", "-c", "fast", "--no-password"); err != nil {
		return err
	}
	if err := m.writeConfig(true, upstream); err != nil {
		return err
	}
	m.labelOnce(ctx, "replica")
	return m.owner.Start(ctx)
}

// rejoin starts a stopped instance as a standby of upstream, rewinding it
// first only if its timeline diverged from the primary's.
func (m *Manager) rejoin(ctx context.Context, upstream string) error {
	h, p, err := splitAddress(upstream)
	if err != nil {
		return err
	}
	if err := m.writePassFile(); err != nil {
		return err
	}
	cd, err := m.controlData()
	if err != nil {
		return err
	}
	ptli, hist, err := remoteTimeline(ctx, h, p, m.cfg.Credentials.SuperuserPassword)
	if err != nil {
		return err
	}
	entries, err := role.ParseHistory(hist)
	if err != nil {
		return err
	}
	if role.NeedsRewind(cd.TimeLineID, cd.Checkpoint, ptli, entries) {
		m.log.Warn("timelines diverged: running pg_rewind", "localTimeline", cd.TimeLineID,
			"localCheckpoint", cd.Checkpoint.String(), "primaryTimeline", ptli)
		src := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres passfile=%s", h, p, m.passFile())
		if err := m.runLogged(ctx, "pg_rewind", m.bin.Path("pg_rewind"), "-D", m.cfg.PGData, "--source-server="+src); err != nil {
			return err
		}
	}
	if err := m.writeConfig(true, upstream); err != nil {
		return err
	}
	m.labelOnce(ctx, "replica")
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

// runLogged runs a PostgreSQL tool with its output relayed as JSON lines.
func (m *Manager) runLogged(ctx context.Context, name string, path string, args ...string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = postgresEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = w, w
	err = m.tracker.Start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { pglog.Relay(m.log, name, r); r.Close(); close(done) }()
	err = m.tracker.Wait(cmd)
	<-done
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// output runs a tool and returns its stdout.
func (m *Manager) output(path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = postgresEnv(os.Environ())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := m.tracker.Output(cmd)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// reloadParameters re-reads the parameters file; on a change it rewrites
// pgsync.conf and reloads a running server (restart-only parameters then
// show in /status as pending restart).
func (m *Manager) reloadParameters(ctx context.Context) {
	if m.cfg.ParametersFile == "" || m.now().Before(m.nextParamsRead) {
		return
	}
	m.nextParamsRead = m.now().Add(time.Second)
	b, err := os.ReadFile(m.cfg.ParametersFile)
	if errors.Is(err, os.ErrNotExist) {
		b, err = []byte("{}"), nil
	}
	if err != nil {
		m.log.Warn("read parameters", "error", err.Error())
		return
	}
	if string(b) == m.paramsRaw {
		return
	}
	var p map[string]string
	if err := json.Unmarshal(b, &p); err != nil {
		m.log.Error("parameters file is not a JSON object of strings", "file", m.cfg.ParametersFile, "error", err.Error())
		m.paramsRaw = string(b)
		return
	}
	first := m.paramsRaw == ""
	m.params, m.paramsRaw = p, string(b)
	if first {
		return // applied by the next writeConfig before any start
	}
	st := m.owner.State()
	if ok, _ := m.hasData(); !ok || !st.Wanted {
		return
	}
	rec := m.upstream != "" || m.isStandbyConfigured()
	if err := m.writeConfig(rec, m.upstream); err != nil {
		m.log.Error("write configuration", "error", err.Error())
		return
	}
	if err := m.owner.Signal(ctx, syscall.SIGHUP); err != nil {
		m.log.Warn("reload", "error", err.Error())
	}
	m.log.Info("parameters changed: configuration reloaded")
}

func (m *Manager) isStandbyConfigured() bool {
	_, err := os.Stat(m.cfg.PGData + "/standby.signal")
	return err == nil
}

// refreshStatus keeps /status current; it has its own connection.
func (m *Manager) refreshStatus(ctx context.Context, db *localDB) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer db.close()
	for {
		st := m.owner.State()
		var fs fullStatus
		var err error
		if st.Running {
			fs, err = db.fullStatus(ctx)
		} else {
			db.close()
			err = errors.New("not running")
		}
		m.status.update(func(s *Status) {
			s.PostgresWanted, s.PostgresRunning, s.PostmasterPID = st.Wanted, st.Running, st.PID
			s.PostgresStarts, s.PostgresCrashes = st.Starts, st.Crashes
			s.Accepting = err == nil
			s.UpdatedAt = m.now()
			if err != nil {
				s.Streaming = false
				switch {
				case s.Role == "bootstrapping":
				case s.Fenced:
					s.Role = "fenced"
				default:
					s.Role = "stopped"
				}
				return
			}
			s.Role = "primary"
			if fs.InRecovery {
				s.Role = "standby"
			}
			s.Timeline, s.CurrentLSN, s.ReceivedLSN, s.ReplayedLSN, s.FlushedLSN = fs.Timeline, fs.CurrentLSN, fs.ReceivedLSN, fs.ReplayedLSN, fs.FlushedLSN
			s.Streaming, s.ReplayLagSeconds, s.LagBytes = fs.Streaming, fs.ReplayLagSecs, fs.LagBytes
			s.ServerVersion, s.PendingRestart = fs.ServerVersion, fs.PendingRestart
		})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Ready implements httpapi.Snapshot: accepting connections, and a standby
// must also be streaming.
func (m *Manager) Ready() (bool, string) {
	s := m.status.Get()
	switch {
	case !s.Accepting:
		return false, "postgres is not accepting connections"
	case s.Role == "standby" && !s.Streaming:
		return false, "standby is not streaming"
	}
	return true, ""
}

// Status implements httpapi.Snapshot.
func (m *Manager) Status() any { return m.status.Get() }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
