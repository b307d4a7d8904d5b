package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/pgsync/pgsync/internal/instance/pgbin"
	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/reaper"
	"github.com/pgsync/pgsync/internal/instance/role"
	"github.com/pgsync/pgsync/internal/podcontract"
)

// LeaseStore is what the alignment loop needs from Kubernetes: the watched
// primary Lease, its three writes, and routing of -rw.
type LeaseStore interface {
	Current() role.Lease
	Changed() <-chan struct{}
	Renew(ctx context.Context, self string, lsn role.LSN) (time.Time, error)
	Acquire(ctx context.Context, self, systemID string) (time.Time, error)
	Publish(ctx context.Context, self, address string) error
	Release(ctx context.Context, self string, final role.LSN) error
	Route(ctx context.Context, self, podIP string, port int32, previous string) error
	LabelRole(ctx context.Context, pod, value string) error
	// Event records an Event on pod (failover and rejoin accounting).
	Event(ctx context.Context, pod, eventType, reason, message string) error
	// Failover (failover.go): the failover clock, the take-over and its
	// record.
	Seen() (holder string, renewTime, seenAt time.Time, duration time.Duration)
	TakeOver(ctx context.Context, self, from string, renewTime time.Time, rec podcontract.Failover) (time.Time, podcontract.Failover, error)
	RecordFailover(ctx context.Context, self string, rec podcontract.Failover) error
	LastFailover() (podcontract.Failover, bool)
	Abdicate(ctx context.Context, self, reason string) error
	// PublishSyncSets: the holder's synchronous standby sets (sync.go).
	PublishSyncSets(ctx context.Context, self string, sets []podcontract.SyncSet) error
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
	config         configSnapshot // the params ConfigMap as last read
	configRaw      string         // its raw content, valid or not
	configRead     bool
	takeover       bool // rendered as the switchover target (conffile.Settings.TakeoverRetry)
	nextParamsRead time.Time
	upstream       string
	routed         bool
	labelled       string // the role label last written for this pod
	lastRenew      time.Time
	nextRenewTry   time.Time
	// A switchover to heldTarget failed; no new attempt before heldUntil.
	heldTarget string
	heldUntil  time.Time
	// routeHoldUntil, when set, bounds the wait after a hand-over for
	// NAME-rw to stop routing here (routehold.go); probeRoute checks it.
	routeHoldUntil time.Time
	probeRoute     routeProbe
	// Failover (failover.go): the other managers' /status, the moment the
	// holder's Lease may be taken over, the renewal the election judged
	// expired, and the take-over awaiting its promotion's accounting.
	peers      peerSource
	failoverAt time.Time
	electedOn  time.Time
	failover   *podcontract.Failover
	// lastElection is the reason of the last election logged.
	lastElection string
	// Abdication (failover.go): when postgres last accepted connections
	// and its crash count then; how long an abdicated holder stays down.
	lastAccepting  time.Time
	crashBase      int
	abdicatedUntil time.Time
	// received and current are the last observation's WAL positions.
	received, current role.LSN
	// sync is the primary's synchronous_standby_names (sync.go).
	sync syncState
	// roles is the primary's spec.managed.roles, secrets where their
	// passwords come from (roles.go).
	roles   rolesState
	secrets secretSource
	// su: the superuser's password as the primary last set it
	// (superuser.go).
	su superuserState
	// slots: the replication slots (slots.go).
	slots slotState
	// counters are the manager's own metrics (metrics.go); nil in tests
	// that build a Manager by hand.
	counters *managerCounters
	// TLS (tls.go): the certificates as last issued, the next check, the
	// randomness keys come from and the tools' libpq major.
	tls          tlsState
	userTLS      userTLSState
	nextTLSCheck time.Time
	random       io.Reader
	libpqMajor   int
	// upstreamTLSUsed: primary_conninfo as last written uses TLS.
	upstreamTLSUsed bool
}

// observe builds the decision's input.
func (m *Manager) observe(ctx context.Context) (role.Input, error) {
	in := role.Input{Self: m.cfg.Instance, Lease: m.lease.Current()}
	st := m.owner.State()
	has, err := m.hasData()
	if err != nil {
		return in, err
	}
	in.Local = role.Local{HasData: has, Up: st.Wanted, Upstream: m.upstream, Routed: m.routed, Prepared: m.takeover}
	if st.Wanted && st.Running {
		q, err := m.db.observe(ctx)
		if err == nil {
			in.Local.Accepting, in.Local.InRecovery, in.Local.ReplayLSN = true, q.InRecovery, q.Replay
			m.received, m.current = q.Received, q.Current
		}
	}
	// Not reset by a stop (a fence between two failed starts, say): the
	// failed starts since postgres last accepted connections count.
	if in.Local.Accepting || m.lastAccepting.IsZero() {
		m.lastAccepting, m.crashBase = m.now(), st.Crashes
	}
	if has && !st.Wanted && !st.Running {
		if cd, err := m.controlData(); err == nil {
			in.Local.CheckpointLSN = cd.Checkpoint
		}
	}
	now := m.now()
	if in.Lease.Holder == m.cfg.Instance {
		in.RenewOverdue = m.lastRenew.IsZero() || now.After(m.fenceAt())
		in.RenewDue = !now.Before(m.nextRenewTry) && (in.RenewOverdue || now.Sub(m.lastRenew) >= m.cfg.LeaseDuration/3)
		in.DemoteHeld = m.demoteHeld(in.Lease.Target)
		in.PostgresGone = postgresGone(st.Crashes-m.crashBase, now.Sub(m.lastAccepting), m.cfg.LeaseDuration)
	}
	in.AbdicateHeld = now.Before(m.abdicatedUntil)
	if !st.Wanted && in.Lease.Holder != "" && in.Lease.Holder != m.cfg.Instance {
		in.RouteHeld = m.routeHeld(ctx)
	}
	m.failoverAt = time.Time{}
	otherHolds := in.Lease.Holder != "" && in.Lease.Holder != m.cfg.Instance
	// Released for a switchover to another instance that has not taken
	// it (role.Elect: a Lease duration after the release was seen), or
	// given up by a holder whose postgres keeps failing (at once).
	releasedElsewhere := in.Lease.Holder == "" && in.Lease.Initialized && (in.Lease.HasFinalLSN || in.Lease.Abdicated) &&
		in.Lease.Target != m.cfg.Instance && in.Lease.ReleasedBy != "" && in.Lease.ReleasedBy != m.cfg.Instance
	if (otherHolds || releasedElsewhere) && in.Local.Accepting && in.Local.InRecovery {
		in.Failover = m.election(ctx, in, m.received)
	}
	return in, nil
}

// fenceAt is when a holder that has not renewed since lastRenew must stop
// writing: a quarter of the duration before others may consider the Lease
// expired, room for the fast shutdown.
func (m *Manager) fenceAt() time.Time {
	d := m.cfg.LeaseDuration
	return m.lastRenew.Add(d - d/4)
}

// whileHolding bounds ctx by fenceAt for the steps a holder takes with
// postgres writable (renewal, routing, promotion, the pre-switchover
// checkpoint). An API call on a partitioned network can hang far longer
// than the Lease (client-go sets no request timeout), and the loop decides
// to fence only between steps; cut off at fenceAt, the step fails and the
// next iteration fences in time. An already overdue holder (postgres
// stopped) still gets a tenth of the duration per renewal attempt.
func (m *Manager) whileHolding(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.lastRenew.IsZero() {
		return context.WithCancel(ctx)
	}
	at := m.fenceAt()
	if floor := m.now().Add(m.cfg.LeaseDuration / 10); at.Before(floor) {
		at = floor
	}
	return context.WithDeadline(ctx, at)
}

// align is the loop: observe, decide, act, wait for a change.
func (m *Manager) align(ctx context.Context) {
	for ctx.Err() == nil {
		if m.holdFailedBootstrap(ctx) {
			continue
		}
		m.reloadParameters(ctx)
		m.reloadTLS(ctx)
		in, err := m.observe(ctx)
		var act role.Action
		if err == nil {
			act = role.Decide(in)
			m.status.update(func(s *Status) {
				s.Action, s.ActionReason = act.Kind.String(), act.Reason
				s.LeaseHolder, s.Target, s.Upstream = in.Lease.Holder, in.Lease.Target, m.upstream
				s.RouteHeld = in.RouteHeld || !m.routeHoldUntil.IsZero()
				if f, ok := m.lease.LastFailover(); ok && (s.LastFailover == nil || !f.At.Equal(s.LastFailover.At) || f.PromotedLSN != "") {
					s.LastFailover = &f
				}
			})
			if act.Kind != role.Wait && act.Kind != role.Renew {
				m.log.Info("action", "action", act.Kind.String(), "reason", act.Reason, "upstream", act.Upstream)
			}
			err = m.execute(ctx, in, act)
			if err == nil && (act.Kind == role.Wait || act.Kind == role.Renew) {
				err = m.alignSync(ctx, in)
			}
			if err == nil && (act.Kind == role.Wait || act.Kind == role.Renew) {
				m.alignSuperuser(ctx, in)
				m.alignRoles(ctx, in)
			}
			if err == nil && (act.Kind == role.Wait || act.Kind == role.Renew) {
				m.alignSlots(ctx, in)
			}
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
		case in.RouteHeld || !m.routeHoldUntil.IsZero():
			next = 50 * time.Millisecond // probing NAME-rw
		case in.Lease.Holder == m.cfg.Instance:
			next = min(next, m.cfg.LeaseDuration/10)
		case !m.failoverAt.IsZero():
			// Elect at the expiry, not up to a tick later; while
			// expired and not elected, ask the peers again soon.
			next = max(min(next, time.Until(m.failoverAt)), 5*time.Millisecond)
			if in.Failover.Expired {
				next = 200 * time.Millisecond
			}
		}
		if in.Lease.Holder == m.cfg.Instance && in.Local.Up && !m.lastRenew.IsZero() {
			// Wake up at the fencing moment, not up to a tick (or the
			// back-off after a failed renewal) later.
			next = max(min(next, time.Until(m.fenceAt())), time.Millisecond)
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
	case role.Renew, role.Route, role.StartPrimary, role.Promote:
		if in.Lease.Holder == m.cfg.Instance {
			var cancel context.CancelFunc
			ctx, cancel = m.whileHolding(ctx)
			defer cancel()
		}
	}
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
		m.takeover = false
		if err := m.writeConfig(true, act.Upstream); err != nil {
			return err
		}
		m.labelOnce(ctx, podcontract.RoleReplica)
		return m.owner.Signal(ctx, syscall.SIGHUP)
	case role.Prepare:
		m.takeover = true
		if err := m.writeConfig(true, act.Upstream); err != nil {
			return err
		}
		return m.owner.Signal(ctx, syscall.SIGHUP)
	case role.TakeOver:
		return m.takeOver(ctx, in, act, m.received)
	case role.Abdicate:
		return m.abdicate(ctx, act)
	case role.Renew:
		var lsn role.LSN
		if in.Local.Accepting && !in.Local.InRecovery {
			lsn = m.current
		}
		sent, err := m.lease.Renew(ctx, m.cfg.Instance, lsn)
		if err != nil {
			m.nextRenewTry = m.now().Add(500 * time.Millisecond)
			m.counters.renewed(false)
			return fmt.Errorf("renew primary Lease: %w", err)
		}
		m.lastRenew, m.nextRenewTry = sent, time.Time{}
		m.counters.renewed(true)
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

// acquireLease takes the primary Lease for this instance, naming the
// database system it holds, and starts the renewal clock.
func (m *Manager) acquireLease(ctx context.Context) error {
	cd, err := m.controlData()
	if err != nil {
		return err
	}
	sent, err := m.lease.Acquire(ctx, m.cfg.Instance, cd.SystemID)
	if err != nil {
		return err
	}
	m.lastRenew = sent
	return nil
}

func (m *Manager) startPrimary(ctx context.Context, take bool) error {
	if take {
		if err := m.acquireLease(ctx); err != nil {
			return err
		}
	}
	// Data left as a standby (a manager that stopped between taking the
	// Lease and promoting) starts in recovery; the next decision promotes
	// it, onto a new timeline like any promotion. Removing standby.signal
	// instead would silently continue the old timeline.
	standby := m.isStandbyConfigured()
	if !standby {
		if err := m.publishStartSync(ctx); err != nil {
			return err
		}
	}
	if err := m.writeConfig(standby, ""); err != nil {
		return err
	}
	m.routed = false
	m.status.update(func(s *Status) { s.Fenced = false })
	return m.owner.Start(ctx)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
