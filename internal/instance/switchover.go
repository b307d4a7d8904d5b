package instance

import (
	"context"
	"fmt"
	"time"

	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/role"
	"github.com/pgsync/pgsync/internal/podcontract"
)

// demote: CHECKPOINT (so the shutdown checkpoint is short), fast stop,
// publish the shutdown checkpoint's LSN on the Lease, release it.
func (m *Manager) demote(ctx context.Context, in role.Input) error {
	t0 := m.now()
	if in.Local.Up && in.Local.Accepting && !in.Local.InRecovery {
		// The checks and the checkpoint run while postgres takes writes:
		// bounded by the fencing moment. The stop below is not (it is
		// what fencing would do).
		hctx, cancel := m.whileHolding(ctx)
		defer cancel()
		// Invariant 2, checked where it matters: never stop the primary
		// for a target that is not streaming from it.
		var streaming bool
		if err := m.db.queryRow(hctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming')`,
			quoteLiteral(in.Lease.Target)), &streaming); err != nil {
			return fmt.Errorf("check the switchover target: %w", err)
		}
		if !streaming {
			return fmt.Errorf("switchover to %s refused: it is not streaming from this primary", in.Lease.Target)
		}
		cctx, cancelCheckpoint := context.WithTimeout(hctx, 30*time.Second)
		err := m.db.exec(cctx, "CHECKPOINT")
		cancelCheckpoint()
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
	m.log.Info("promoted", "acquire", t1.Sub(t0).String(), "promote", t2.Sub(t1).String(), "route", t3.Sub(t2).String())
	return nil
}

// route points -rw here (one EndpointSlice write), relabels the pods, then
// publishes this primary's address so standbys follow it.
func (m *Manager) route(ctx context.Context, previous string) error {
	if err := m.lease.Route(ctx, m.cfg.Instance, m.cfg.PodIP, int32(m.cfg.Port), previous); err != nil {
		return err
	}
	m.labelled = podcontract.RolePrimary
	if err := m.lease.Publish(ctx, m.cfg.Instance, m.cfg.AdvertiseAddress); err != nil {
		return err
	}
	m.routed = true
	return nil
}
