package instance

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// syncState is the primary's synchronous replication, as last rendered
// (only the alignment loop touches it).
type syncState struct {
	// streaming: the application_names streaming from this primary at the
	// last look; names: the synchronous_standby_names written from it.
	streaming map[string]bool
	names     string
	// published: as the holder, this manager put the set of names on the
	// Lease (pgsync.io/synchronous-sets) before it took effect; from then
	// on only alignSync changes names, publishing first (writeConfig
	// keeps them).
	published bool
	// settleAfter, settleFrom: settling the newest set (settle).
	settleAfter time.Time
	settleFrom  role.LSN
}

// replicationState is pg_stat_replication as synchronous replication
// needs it: the streaming standbys' application_names, and how far each
// listed standby flushed (whatever its state).
func (d *localDB) replicationState(ctx context.Context) (streaming map[string]bool, flushed map[string]role.LSN, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, err := c.Query(ctx, `SELECT application_name, state = 'streaming', coalesce(flush_lsn::text, '') FROM pg_stat_replication`)
	if err != nil {
		d.close()
		return nil, nil, err
	}
	defer rows.Close()
	streaming, flushed = map[string]bool{}, map[string]role.LSN{}
	for rows.Next() {
		var n, f string
		var s bool
		if err := rows.Scan(&n, &s, &f); err != nil {
			d.close()
			return nil, nil, err
		}
		if s {
			streaming[n] = true
		}
		if lsn, err := role.ParseLSN(f); err == nil && lsn > flushed[n] {
			flushed[n] = lsn
		}
	}
	if err := rows.Err(); err != nil {
		d.close()
		return nil, nil, err
	}
	return streaming, flushed, nil
}

// settleDelay: a set is settled from a WAL position read this long after
// the reload that put it in force: the walsenders, which decide which
// standbys acknowledge, reread the configuration when they next wake,
// within milliseconds of the SIGHUP.
const settleDelay = time.Second

// alignSync keeps a running primary's synchronous_standby_names in line
// with the standbys that stream from it: when the list it would render
// changes (a standby came or went, the settings changed), it rewrites
// pgsync.conf and reloads. Once per loop iteration, only on the Lease
// holder that accepts writes.
//
// An election must know every set of standbys that may have acknowledged
// a commit (role.Elect), so the set to be put in force is added to the
// Lease's pgsync.io/synchronous-sets *before* the reload, and the older
// sets are dropped only once the newest is settled: Number of its
// standbys flushed a position written after it took effect, so they hold
// every commit acknowledged under the older ones too.
func (m *Manager) alignSync(ctx context.Context, in role.Input) error {
	if in.Lease.Holder != m.cfg.Instance || !in.Local.Accepting || in.Local.InRecovery {
		return nil
	}
	if m.config.rep.Synchronous == nil && m.sync.names == "" {
		// Turned off (and off in postgres): commits wait for no standby
		// from now on, and the election is no longer restricted.
		if in.Lease.HasSyncSets {
			if err := m.lease.PublishSyncSets(ctx, m.cfg.Instance, nil); err != nil {
				return fmt.Errorf("remove the synchronous standby sets: %w", err)
			}
			m.log.Info("synchronous replication off: synchronous standby sets removed from the primary Lease")
		}
		m.sync.published = false
		return nil
	}
	streaming, flushed, err := m.db.replicationState(ctx)
	if err != nil {
		return fmt.Errorf("read pg_stat_replication: %w", err)
	}
	m.sync.streaming = streaming
	want := syncStandbyNames(m.config.rep, m.cfg.Instance, streaming)
	sets := in.Lease.SyncSets
	if in.Lease.SyncSetsInvalid {
		sets = nil
	}
	grown := false
	add := func(set pc.SyncSet) {
		if len(sets) == 0 || !sameSet(sets[len(sets)-1], set) {
			sets, grown = append(slices.Clone(sets), set), true
		}
	}
	if !m.sync.published || !in.Lease.HasSyncSets {
		// What postgres runs with now (written before this manager
		// published: a promotion, a start) may have acknowledged commits.
		add(setOfNames(m.sync.names, m.cfg.Instance))
	}
	if want != m.sync.names {
		add(syncSet(m.config.rep, m.cfg.Instance, streaming))
	}
	if grown {
		if err := m.lease.PublishSyncSets(ctx, m.cfg.Instance, sets); err != nil {
			return fmt.Errorf("publish the synchronous standby sets before putting them in force: %w", err)
		}
		m.sync.settleAfter, m.sync.settleFrom = m.now().Add(settleDelay), 0
	}
	m.sync.published = true
	if want != m.sync.names {
		was := m.sync.names
		m.sync.names = want
		if err := m.writeConfig(false, ""); err != nil {
			return err
		}
		if err := m.owner.Signal(ctx, syscall.SIGHUP); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		m.sync.settleAfter, m.sync.settleFrom = m.now().Add(settleDelay), 0
		m.log.Info("synchronous_standby_names changed", "from", was, "to", m.sync.names, "sets", pc.FormatSyncSets(sets))
		return nil
	}
	return m.settle(ctx, sets, flushed)
}

// settle marks the newest set settled (dropping the older ones) once
// Number of its standbys flushed past the primary's WAL position read
// settleDelay after the set took effect.
func (m *Manager) settle(ctx context.Context, sets []pc.SyncSet, flushed map[string]role.LSN) error {
	if len(sets) == 0 {
		return nil
	}
	newest := sets[len(sets)-1]
	if (newest.Settled && len(sets) == 1) || newest.Number <= 0 || m.now().Before(m.sync.settleAfter) {
		return nil
	}
	if m.sync.settleFrom == 0 {
		var cur string
		if err := m.db.queryRow(ctx, `SELECT pg_current_wal_lsn()::text`, &cur); err != nil {
			return fmt.Errorf("read the WAL position to settle the synchronous standby set: %w", err)
		}
		lsn, err := role.ParseLSN(cur)
		if err != nil {
			return err
		}
		m.sync.settleFrom = lsn
	}
	n := 0
	for _, name := range newest.Standbys {
		if flushed[name] >= m.sync.settleFrom {
			n++
		}
	}
	if n < newest.Number {
		return nil
	}
	newest.Settled = true
	if err := m.lease.PublishSyncSets(ctx, m.cfg.Instance, []pc.SyncSet{newest}); err != nil {
		return fmt.Errorf("publish the settled synchronous standby set: %w", err)
	}
	m.log.Info("synchronous standby set settled", "set", pc.FormatSyncSets([]pc.SyncSet{newest}), "flushedPast", m.sync.settleFrom.String())
	return nil
}

// setOfNames is the set of a synchronous_standby_names this manager
// rendered (formatSyncNames; "" = asynchronous), self left out.
func setOfNames(names, self string) pc.SyncSet {
	method, num, list, ok := parseSyncNames(names)
	if !ok || num <= 0 {
		return pc.SyncSet{}
	}
	set := pc.SyncSet{Method: method, Number: num}
	for _, n := range list {
		if n != self {
			set.Standbys = append(set.Standbys, n)
		}
	}
	return set
}

// publishStartSync runs before a holder starts postgres as primary: the
// synchronous_standby_names it will start with is added to the Lease's
// sets first (a holder's manager that restarted finds its predecessor's
// sets there; a Lease just acquired has none, and its first set stays
// unsettled until its standbys confirm it).
func (m *Manager) publishStartSync(ctx context.Context) error {
	l := m.lease.Current()
	if l.Holder != m.cfg.Instance {
		return nil
	}
	names := syncStandbyNames(m.config.rep, m.cfg.Instance, m.sync.streaming)
	if m.config.rep.Synchronous == nil && !l.HasSyncSets {
		m.sync.published = false
		return nil
	}
	sets := l.SyncSets
	if l.SyncSetsInvalid {
		sets = nil
	}
	set := setOfNames(names, m.cfg.Instance)
	if len(sets) == 0 || !sameSet(sets[len(sets)-1], set) {
		sets = append(slices.Clone(sets), set)
		if err := m.lease.PublishSyncSets(ctx, m.cfg.Instance, sets); err != nil {
			return fmt.Errorf("publish the synchronous standby sets before starting as primary: %w", err)
		}
	}
	m.sync.names, m.sync.published = names, true
	m.sync.settleAfter, m.sync.settleFrom = m.now().Add(settleDelay), 0
	return nil
}
