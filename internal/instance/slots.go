package instance

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// slotRecheck is how often a standby streaming through its slot checks
// the primary still has it.
const slotRecheck = 5 * time.Second

// slotState is the replication slots' part of the loop (only the loop
// goroutine touches it).
type slotState struct {
	// confirmed is the upstream on which this standby saw its own HA
	// slot: writeConfig renders primary_slot_name for that upstream
	// only, so a standby never waits on a slot its primary does not have
	// (a primary of an older pgsync, or one that has not created it yet).
	confirmed string
	// nextCheck, nextCopy, nextPrimary: when the loop next looks for its
	// slot upstream, copies the primary's slots, keeps the primary's.
	nextCheck, nextCopy, nextPrimary time.Time
	// remote is a session on the upstream (remoteAddr), kept between
	// iterations.
	remote     *pgx.Conn
	remoteAddr string
	lastErr    string
}

// slotRow is one physical, non-temporary slot of pg_replication_slots.
type slotRow struct {
	name       string
	active     bool
	restart    role.LSN // 0: no WAL reserved
	holdsXmin  bool
	hasRestart bool
}

const listSlotsSQL = `SELECT slot_name, active, coalesce(restart_lsn::text, ''),
  xmin IS NOT NULL OR catalog_xmin IS NOT NULL
  FROM pg_catalog.pg_replication_slots WHERE NOT temporary AND slot_type = 'physical' ORDER BY slot_name`

func listSlots(ctx context.Context, q func(ctx context.Context, sql string, args ...any) (pgx.Rows, error)) ([]slotRow, error) {
	rows, err := q(ctx, listSlotsSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []slotRow
	for rows.Next() {
		var r slotRow
		var lsn string
		if err := rows.Scan(&r.name, &r.active, &lsn, &r.holdsXmin); err != nil {
			return nil, err
		}
		if lsn != "" {
			if r.restart, err = role.ParseLSN(lsn); err != nil {
				return nil, err
			}
			r.hasRestart = true
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// slotOp is one change to an instance's slots.
type slotOp struct {
	kind string // create, reserve (create holding WAL), advance, drop
	name string
	lsn  role.LSN
}

// primarySlotOps is what the primary self does to its slots: an HA slot
// for every other instance, created without reserving WAL (it holds WAL
// once its standby has streamed through it, so a standby that never
// streams, or runs an older pgsync, pins nothing); HA slots of no other
// instance (departed, or the primary's own from its time as a standby)
// dropped once inactive. With HA off, every inactive HA slot goes.
// Slots without the prefix are the user's and left alone.
func primarySlotOps(s pc.Slots, self string, instances []string, have []slotRow) []slotOp {
	want := map[string]bool{}
	if s.HA {
		for _, n := range instances {
			if n != self {
				want[pc.SlotName(s.Prefix, n)] = true
			}
		}
	}
	present := map[string]bool{}
	var ops []slotOp
	for _, r := range have {
		present[r.name] = true
		if strings.HasPrefix(r.name, s.Prefix) && !want[r.name] && !r.active {
			ops = append(ops, slotOp{kind: "drop", name: r.name})
		}
	}
	for _, n := range instances {
		if name := pc.SlotName(s.Prefix, n); want[name] && !present[name] {
			ops = append(ops, slotOp{kind: "create", name: name})
		}
	}
	return ops
}

// standbySlotOps is what standby self does to its own slots from the
// primary's (CloudNativePG's rules): a copy of every HA slot of another
// instance that holds WAL, and (synchronizeReplicas) of every user slot
// no pattern excludes, advanced to the primary's restart_lsn — so once
// promoted, this instance has a slot for everybody, at most an update
// interval behind. Dropped: copies of slots the primary no longer has,
// this instance's own, slots holding an xmin (a former primary's), and the
// user's when synchronizeReplicas is off; HA copies too when HA is off.
func standbySlotOps(s pc.Slots, exclude []*regexp.Regexp, self string, primary, local []slotRow) []slotOp {
	mine := pc.SlotName(s.Prefix, self)
	isHA := func(n string) bool { return strings.HasPrefix(n, s.Prefix) }
	excluded := func(n string) bool {
		for _, re := range exclude {
			if re.MatchString(n) {
				return true
			}
		}
		return false
	}
	copied := func(r slotRow) bool {
		switch {
		case r.name == mine:
			return false
		case isHA(r.name):
			return s.HA && r.hasRestart
		default:
			return s.SynchronizeUser && !excluded(r.name)
		}
	}
	onPrimary := map[string]slotRow{}
	for _, r := range primary {
		onPrimary[r.name] = r
	}
	have := map[string]slotRow{}
	var ops []slotOp
	for _, r := range local {
		have[r.name] = r
		p, ok := onPrimary[r.name]
		if isHA(r.name) || !excluded(r.name) {
			if (!ok || !copied(p) || r.holdsXmin) && !r.active {
				ops = append(ops, slotOp{kind: "drop", name: r.name})
				delete(have, r.name)
			}
		}
	}
	for _, p := range primary {
		if !copied(p) {
			continue
		}
		l, ok := have[p.name]
		switch {
		case !ok && p.hasRestart:
			ops = append(ops, slotOp{kind: "reserve", name: p.name})
			ops = append(ops, slotOp{kind: "advance", name: p.name, lsn: p.restart})
		case !ok:
			ops = append(ops, slotOp{kind: "create", name: p.name})
		case p.hasRestart && (!l.hasRestart || p.restart > l.restart):
			// pg_replication_slot_advance refuses to go back, and
			// stops at this standby's replay position by itself.
			ops = append(ops, slotOp{kind: "advance", name: p.name, lsn: p.restart})
		}
	}
	return ops
}

// applySlotOps carries ops out on the local server, each on its own:
// one that fails (a slot that became active meanwhile) does not stop the
// others; the first error is returned.
func (m *Manager) applySlotOps(ctx context.Context, ops []slotOp) error {
	var first error
	for _, op := range ops {
		var err error
		switch op.kind {
		case "create", "reserve":
			err = m.db.exec(ctx, `SELECT pg_catalog.pg_create_physical_replication_slot($1, $2)`, op.name, op.kind == "reserve")
		case "advance":
			err = m.db.exec(ctx, `SELECT pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)`, op.name, op.lsn.String())
		case "drop":
			err = m.db.exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot($1)`, op.name)
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("%s replication slot %s: %w", op.kind, op.name, err)
			}
			continue
		}
		if op.kind != "advance" {
			m.log.Info("replication slot "+op.kind, "slot", op.name)
		}
	}
	return first
}

// alignSlots keeps the replication slots (spec.replicationSlots): on the
// primary its HA slots; on a streaming standby its primary_slot_name and
// the copies of the primary's slots. Once per loop iteration at most
// (each part has its own pace); a failure is logged, never fatal, as
// streaming goes on without slots.
func (m *Manager) alignSlots(ctx context.Context, in role.Input) {
	if !in.Local.Accepting {
		return
	}
	var err error
	if in.Local.InRecovery {
		err = m.alignStandbySlots(ctx)
	} else if in.Lease.Holder == m.cfg.Instance {
		err = m.alignPrimarySlots(ctx)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != m.slots.lastErr && msg != "" {
		m.log.Warn("replication slots", "error", msg)
	}
	m.slots.lastErr = msg
}

func (m *Manager) alignPrimarySlots(ctx context.Context) error {
	m.closeRemote()
	m.slots.confirmed = ""
	now := m.now()
	if now.Before(m.slots.nextPrimary) {
		return nil
	}
	m.slots.nextPrimary = now.Add(time.Second)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	have, err := m.db.listSlots(ctx)
	if err != nil {
		return fmt.Errorf("list replication slots: %w", err)
	}
	return m.applySlotOps(ctx, primarySlotOps(m.config.rep.SlotsOrDefault(), m.cfg.Instance, m.config.rep.Instances, have))
}

func (m *Manager) alignStandbySlots(ctx context.Context) error {
	s := m.config.rep.SlotsOrDefault()
	now := m.now()
	if m.upstream == "" {
		return nil
	}
	wantSlot := s.HA
	switch {
	case m.slots.confirmed != "" && m.slots.confirmed != m.upstream:
		// Another upstream: writeConfig rendered no slot for it.
		m.slots.confirmed = ""
	case !wantSlot && m.slots.confirmed != "":
		// HA turned off: stream without the slot.
		m.slots.confirmed = ""
		if err := m.rewriteStandbyConfig(ctx); err != nil {
			return err
		}
	}
	// Unconfirmed, the check looks for the slot every second; confirmed,
	// every slotRecheck, for a slot the primary dropped under the standby
	// (an instance a scale down removes next: its primary no longer keeps
	// its slot, and streaming through it would fail until the standby
	// stops asking for it).
	checkDue := wantSlot && !now.Before(m.slots.nextCheck)
	copyDue := !now.Before(m.slots.nextCopy)
	if !checkDue && !copyDue {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	remote, err := m.remoteSession(ctx)
	if err != nil {
		m.slots.nextCheck, m.slots.nextCopy = now.Add(2*time.Second), now.Add(2*time.Second)
		return err
	}
	primary, err := listSlots(ctx, remote.Query)
	if err != nil {
		m.closeRemote()
		m.slots.nextCheck, m.slots.nextCopy = now.Add(2*time.Second), now.Add(2*time.Second)
		return fmt.Errorf("list the primary's replication slots: %w", err)
	}
	if checkDue {
		m.slots.nextCheck = now.Add(time.Second)
		mine := pc.SlotName(s.Prefix, m.cfg.Instance)
		found := slices.ContainsFunc(primary, func(r slotRow) bool { return r.name == mine })
		switch confirmed := m.slots.confirmed == m.upstream; {
		case found && !confirmed:
			m.slots.confirmed = m.upstream
			if err := m.rewriteStandbyConfig(ctx); err != nil {
				return err
			}
			m.log.Info("streaming through replication slot", "slot", mine, "upstream", m.upstream)
		case !found && confirmed:
			m.slots.confirmed = ""
			if err := m.rewriteStandbyConfig(ctx); err != nil {
				return err
			}
			m.log.Warn("replication slot gone from the primary: streaming without it", "slot", mine, "upstream", m.upstream)
		}
		if m.slots.confirmed == m.upstream {
			m.slots.nextCheck = now.Add(slotRecheck)
		}
	}
	if !copyDue {
		return nil
	}
	m.slots.nextCopy = now.Add(time.Duration(max(s.UpdateIntervalSeconds, 1)) * time.Second)
	exclude := make([]*regexp.Regexp, 0, len(s.Exclude))
	for _, p := range s.Exclude {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("excludePatterns %q: %w", p, err)
		}
		exclude = append(exclude, re)
	}
	local, err := m.db.listSlots(ctx)
	if err != nil {
		return fmt.Errorf("list replication slots: %w", err)
	}
	return m.applySlotOps(ctx, standbySlotOps(s, exclude, m.cfg.Instance, primary, local))
}

// rewriteStandbyConfig renders the standby's configuration again (its
// primary_slot_name changed) and reloads: primary_slot_name is reloadable
// from PostgreSQL 13 on, the WAL receiver restarts with it, postgres does
// not.
func (m *Manager) rewriteStandbyConfig(ctx context.Context) error {
	if err := m.writeConfig(true, m.upstream); err != nil {
		return err
	}
	if err := m.owner.Signal(ctx, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// primarySlotName is what writeConfig renders for a standby following
// upstream: its HA slot once seen there, else none.
func (m *Manager) primarySlotName(upstream string) string {
	s := m.config.rep.SlotsOrDefault()
	if !s.HA || upstream == "" || upstream != m.slots.confirmed {
		return ""
	}
	return pc.SlotName(s.Prefix, m.cfg.Instance)
}

// remoteSession is a session on the upstream as streaming_replica (which
// may read pg_replication_slots like any role), reused while the upstream
// stays the same.
func (m *Manager) remoteSession(ctx context.Context) (*pgx.Conn, error) {
	if m.slots.remote != nil && !m.slots.remote.IsClosed() && m.slots.remoteAddr == m.upstream {
		return m.slots.remote, nil
	}
	m.closeRemote()
	h, p, err := splitAddress(m.upstream)
	if err != nil {
		return nil, err
	}
	c, err := m.connectPrimary(ctx, h, p)
	if err != nil {
		return nil, err
	}
	m.slots.remote, m.slots.remoteAddr = c, m.upstream
	return c, nil
}

func (m *Manager) closeRemote() {
	if m.slots.remote != nil {
		_ = m.slots.remote.Close(context.Background())
		m.slots.remote, m.slots.remoteAddr = nil, ""
	}
}

// listSlots lists the local server's physical slots.
func (d *localDB) listSlots(ctx context.Context) ([]slotRow, error) {
	c, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	out, err := listSlots(ctx, c.Query)
	if err != nil {
		d.close()
	}
	return out, err
}

// connectPrimary opens a session on the primary at host:port as
// streaming_replica, as the rejoin's timeline check does: by its
// certificate when the primary runs TLS (pgsync's own pg_hba rule for the
// postgres database), else with its password. Never the superuser, which
// may have no password and no remote login.
func (m *Manager) connectPrimary(ctx context.Context, host string, port int) (*pgx.Conn, error) {
	tls := m.upstreamClientTLS(true)
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=5 %s",
		host, port, conffile.ReplicationUser, conffile.PgxTLS(tls)))
	if err != nil {
		return nil, err
	}
	if tls == nil {
		cc.Password = m.cfg.Credentials.ReplicationPassword
	}
	cc.RuntimeParams["application_name"] = "pgsync-instance"
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect to primary %s:%d: %w", host, port, err)
	}
	return c, nil
}
