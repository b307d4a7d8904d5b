package instance

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/pgsync/pgsync/internal/instance/role"
)

// syncState is the primary's synchronous replication, as last rendered
// (only the alignment loop touches it).
type syncState struct {
	// streaming: the application_names streaming from this primary at the
	// last look; names: the synchronous_standby_names written from it.
	streaming map[string]bool
	names     string
}

// streamingStandbys are the application_names of the standbys streaming
// from this primary (pg_stat_replication).
func (d *localDB) streamingStandbys(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'`)
	if err != nil {
		d.close()
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			d.close()
			return nil, err
		}
		out[n] = true
	}
	if err := rows.Err(); err != nil {
		d.close()
		return nil, err
	}
	return out, nil
}

// alignSync keeps a running primary's synchronous_standby_names in line
// with the standbys that stream from it: when the list it would render
// changes (a standby came or went, the settings changed), it rewrites
// pgsync.conf and reloads. Once per loop iteration, only on the Lease
// holder that accepts writes.
func (m *Manager) alignSync(ctx context.Context, in role.Input) error {
	if in.Lease.Holder != m.cfg.Instance || !in.Local.Accepting || in.Local.InRecovery {
		return nil
	}
	if m.config.rep.Synchronous == nil && m.sync.names == "" {
		return nil
	}
	streaming, err := m.db.streamingStandbys(ctx)
	if err != nil {
		return fmt.Errorf("read pg_stat_replication: %w", err)
	}
	m.sync.streaming = streaming
	if syncStandbyNames(m.config.rep, m.cfg.Instance, streaming) == m.sync.names {
		return nil
	}
	was := m.sync.names
	if err := m.writeConfig(false, ""); err != nil {
		return err
	}
	if err := m.owner.Signal(ctx, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if m.sync.names != was {
		m.log.Info("synchronous_standby_names changed", "from", was, "to", m.sync.names)
	}
	return nil
}
