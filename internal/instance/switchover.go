package instance

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/role"
	"github.com/pgsync/pgsync/internal/podcontract"
)

// demote: CHECKPOINT (so the shutdown checkpoint is short), fast stop,
// publish the shutdown checkpoint's LSN on the Lease, release it. The
// checkpoint and the fast stop together get SwitchoverDelay; past it
// postgres is stopped immediately, and an immediate stop writes no
// shutdown checkpoint: there is no final LSN the target could safely
// promote at. The switchover then fails rather than risk a commit: the
// Lease stays here, the next decisions restart postgres as primary (crash
// recovery loses nothing), and another attempt comes after holdOff.
func (m *Manager) demote(ctx context.Context, in role.Input) error {
	t0 := m.now()
	target := in.Lease.Target
	// The loop does not renew while it demotes, and a shutdown may take
	// up to the switchover delay (an hour by default): without renewals
	// the standbys would see the Lease expire and fail over in the middle
	// of the switchover, promoting before the final WAL arrived.
	// Holding the Lease while postgres shuts down is safe (it takes no
	// new write); the fencing deadline of the checkpoint below still
	// counts from the renewal before the demotion.
	stopRenew := m.renewWhileDemoting(ctx)
	defer func() {
		if sent := stopRenew(); sent.After(m.lastRenew) {
			m.lastRenew = sent
		}
	}()
	sctx, cancel := context.WithDeadline(ctx, t0.Add(m.cfg.SwitchoverDelay))
	defer cancel()
	if in.Local.Up && in.Local.Accepting && !in.Local.InRecovery {
		// The checks and the checkpoint run while postgres takes writes:
		// bounded by the fencing moment too. The stop below is not (it is
		// what fencing would do).
		hctx, cancel := m.whileHolding(sctx)
		defer cancel()
		// Invariant 2, checked where it matters: never stop the primary
		// for a target that is not streaming from it.
		var streaming bool
		if err := m.db.queryRow(hctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming')`,
			quoteLiteral(target)), &streaming); err != nil {
			return fmt.Errorf("check the switchover target: %w", err)
		}
		if !streaming {
			return fmt.Errorf("switchover to %s refused: it is not streaming from this primary", target)
		}
		if err := m.db.exec(hctx, "CHECKPOINT"); err != nil {
			m.log.Warn("checkpoint before switchover", "error", err.Error())
		}
	}
	t1 := m.now()
	m.db.close()
	immediate := false
	if err := m.owner.Stop(sctx, postmaster.Fast); err != nil {
		if ctx.Err() != nil || sctx.Err() == nil {
			return err
		}
		// The owner keeps its fast shutdown going; an immediate one
		// overtakes it (postgres escalates a shutdown in progress).
		m.log.Warn("switchover: postgres did not shut down within the switchover delay: immediate shutdown",
			"switchoverDelay", m.cfg.SwitchoverDelay.String(), "target", target)
		ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := m.owner.Stop(ictx, postmaster.Immediate); err != nil {
			return fmt.Errorf("immediate shutdown: %w", err)
		}
		immediate = true
	}
	t2 := m.now()
	cd, err := m.controlData()
	if err != nil {
		return err
	}
	if cd.State != "shut down" {
		// No shutdown checkpoint (an immediate stop, or data left by a
		// crash): hold the switchover off and serve as primary meanwhile.
		m.heldTarget, m.heldUntil = target, m.now().Add(m.holdOff())
		m.routed = false
		why := fmt.Sprintf("cluster state is %q", cd.State)
		if immediate {
			why = fmt.Sprintf("postgres did not shut down within the switchover delay (%s) and was stopped immediately", m.cfg.SwitchoverDelay)
		}
		return fmt.Errorf("switchover to %s failed: %s, so there is no final LSN to hand over; "+
			"the Lease stays here, postgres restarts as primary and the switchover is retried in %s", target, why, m.holdOff())
	}
	if sent := stopRenew(); sent.After(m.lastRenew) {
		m.lastRenew = sent
	}
	if err := m.lease.Release(ctx, m.cfg.Instance, cd.Checkpoint); err != nil {
		return err
	}
	m.routed, m.upstream = false, ""
	m.heldTarget = ""
	m.routeHoldUntil = m.now().Add(routeHoldMax)
	m.log.Info("released the primary Lease", "finalLSN", cd.Checkpoint.String(), "target", target,
		"checkpoint", t1.Sub(t0).String(), "stop", t2.Sub(t1).String(), "total", m.now().Sub(t0).String())
	return nil
}

// renewWhileDemoting renews the Lease every third of its duration until
// the returned function is called; that returns the last renewal's send
// time (zero if none succeeded). Calling it again returns the same.
func (m *Manager) renewWhileDemoting(ctx context.Context) func() time.Time {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var last time.Time
	go func() {
		defer close(done)
		t := time.NewTicker(max(m.cfg.LeaseDuration/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, max(m.cfg.LeaseDuration/4, 10*time.Millisecond))
			sent, err := m.lease.Renew(rctx, m.cfg.Instance, 0)
			rcancel()
			if err == nil {
				last = sent
			} else if ctx.Err() == nil {
				m.log.Warn("renew the primary Lease during the switchover", "error", err.Error())
			}
		}
	}()
	var once sync.Once
	return func() time.Time {
		once.Do(func() { cancel(); <-done })
		return last
	}
}

// holdOff is how long a primary whose switchover failed serves before it
// tries again: as long as it was given to shut down (at least one Lease
// duration), so a switchover that keeps failing takes at most half of the
// primary's time, and every failure is in /status for that long.
func (m *Manager) holdOff() time.Duration {
	return max(m.cfg.SwitchoverDelay, m.cfg.LeaseDuration)
}

// demoteHeld: a failed switchover to target is being held off.
func (m *Manager) demoteHeld(target string) bool {
	return m.heldTarget != "" && m.heldTarget == target && m.now().Before(m.heldUntil)
}

// promote: take the Lease, promote, route -rw here in one EndpointSlice
// write, relabel. The Lease comes first so that two writable primaries
// never exist even for a moment.
func (m *Manager) promote(ctx context.Context, in role.Input) error {
	t0 := m.now()
	previous := in.Lease.ReleasedBy
	if m.failover == nil {
		// A take-over whose manager restarted before the promotion still
		// gets its accounting.
		if f, ok := m.lease.LastFailover(); ok && f.To == m.cfg.Instance && f.PromotedLSN == "" && in.Lease.Holder == m.cfg.Instance {
			m.failover = &f
		}
	}
	if m.failover != nil {
		previous = m.failover.From
	}
	if in.Lease.Holder != m.cfg.Instance {
		sent, err := m.lease.Acquire(ctx, m.cfg.Instance, "")
		if err != nil {
			return err
		}
		m.lastRenew = sent
	}
	// From here this instance holds the Lease and becomes writable.
	ctx, cancel := m.whileHolding(ctx)
	defer cancel()
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
	// After routing, so the write pause does not wait for it, and on a
	// session of its own: a checkpoint may take longer than the loop may
	// go without renewing the Lease.
	go m.checkpointAfterPromotion()
	m.log.Info("promoted", "acquire", t1.Sub(t0).String(), "promote", t2.Sub(t1).String(), "route", t3.Sub(t2).String())
	if m.failover != nil {
		m.finishFailover(ctx)
	}
	return nil
}

// route points -rw here (one EndpointSlice write), relabels the pods, then
// publishes this primary's address so standbys follow it.
func (m *Manager) route(ctx context.Context, previous string) error {
	if err := m.lease.Route(ctx, m.cfg.Instance, m.cfg.PodIP, int32(m.cfg.Port), previous); err != nil {
		return err
	}
	m.labelled = podcontract.RolePrimary
	if err := m.db.ensureRejoinGrants(ctx); err != nil {
		// Instances that rejoin here fall back to the superuser (while
		// it has access), else to a base backup.
		m.log.Warn("grant streaming_replica what a rejoin needs", "error", err.Error())
	}
	if err := m.lease.Publish(ctx, m.cfg.Instance, m.cfg.AdvertiseAddress); err != nil {
		return err
	}
	m.routed = true
	return nil
}
