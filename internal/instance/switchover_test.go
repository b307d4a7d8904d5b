package instance

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/role"
)

// slowOwner is a postmaster owner whose fast shutdown never finishes (a
// backend that does not react to it) unless fastDone; an immediate stop
// ends it at once, leaving the data as a crash does.
type slowOwner struct {
	pgdata   string
	fastDone bool // a fast stop finishes (a clean shutdown)
	mu       sync.Mutex
	stops    []postmaster.Mode
}

func (o *slowOwner) Start(context.Context) error                  { return nil }
func (o *slowOwner) Signal(context.Context, syscall.Signal) error { return nil }
func (o *slowOwner) State() postmaster.State                      { return postmaster.State{} }
func (o *slowOwner) Changed() <-chan struct{}                     { return nil }

func (o *slowOwner) Stop(ctx context.Context, m postmaster.Mode) error {
	o.mu.Lock()
	o.stops = append(o.stops, m)
	o.mu.Unlock()
	switch {
	case m == postmaster.Immediate:
		return writeControl(o.pgdata, 5 /* in crash recovery */, 0x3000028)
	case o.fastDone:
		return writeControl(o.pgdata, 1 /* shut down */, 0x3000100)
	}
	<-ctx.Done()
	return ctx.Err()
}

// writeControl writes the head of a PostgreSQL 15 pg_control.
func writeControl(pgdata string, state uint32, ckpt uint64) error {
	b := make([]byte, 64)
	le := binary.NativeEndian
	le.PutUint64(b[0:], 7441234567890123456)
	le.PutUint32(b[8:], 1300)
	le.PutUint32(b[16:], state)
	le.PutUint64(b[32:], ckpt)
	le.PutUint32(b[48:], 1)
	if err := os.MkdirAll(filepath.Join(pgdata, "global"), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(pgdata, "global", "pg_control"), b, 0o600)
}

// releaseRecorder is a LeaseStore that records releases.
type releaseRecorder struct {
	LeaseStore
	released []role.LSN
}

func (r *releaseRecorder) Release(_ context.Context, _ string, final role.LSN) error {
	r.released = append(r.released, final)
	return nil
}

func testManager(t *testing.T, owner postgresOwner, lease LeaseStore, delay time.Duration) *Manager {
	t.Helper()
	db, err := newLocalDB(t.TempDir(), 5432)
	if err != nil {
		t.Fatal(err)
	}
	return &Manager{
		cfg: Config{Instance: "db-0", PGData: t.TempDir(), SwitchoverDelay: delay, LeaseDuration: 15 * time.Second},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), owner: owner, lease: lease, db: db,
		now: time.Now, status: &statusBox{},
	}
}

// TestDemotePastSwitchoverDelay: a fast shutdown that outlasts
// SwitchoverDelay is made immediate; with no shutdown checkpoint there is
// no final LSN, so the Lease is not released, the failure says why, and
// the next decision restarts postgres as primary instead of demoting again.
func TestDemotePastSwitchoverDelay(t *testing.T) {
	lease := &releaseRecorder{}
	owner := &slowOwner{}
	m := testManager(t, owner, lease, 20*time.Millisecond)
	owner.pgdata = m.cfg.PGData
	in := role.Input{Self: "db-0", Lease: role.Lease{Exists: true, Holder: "db-0", Target: "db-1", Initialized: true},
		Local: role.Local{HasData: true}}
	err := m.demote(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "switchover to db-1 failed") || !strings.Contains(err.Error(), "stopped immediately") {
		t.Fatalf("demote = %v, want the failed switchover", err)
	}
	if len(owner.stops) != 2 || owner.stops[0] != postmaster.Fast || owner.stops[1] != postmaster.Immediate {
		t.Errorf("stops %v, want fast then immediate", owner.stops)
	}
	if len(lease.released) != 0 {
		t.Errorf("released the Lease with final LSN %v after an immediate stop", lease.released)
	}
	if !m.demoteHeld("db-1") || m.demoteHeld("db-2") {
		t.Error("the failed switchover to db-1 is not held off (or another target is)")
	}
	in.DemoteHeld = m.demoteHeld(in.Lease.Target)
	in.Local.CheckpointLSN = 0x3000028
	m.lastRenew = m.now()
	if a := role.Decide(in); a.Kind != role.StartPrimary {
		t.Errorf("next decision %v (%s), want start-primary", a.Kind, a.Reason)
	}
	// Once the hold-off has passed, the switchover is tried again.
	m.heldUntil = m.now().Add(-time.Millisecond)
	if m.demoteHeld("db-1") {
		t.Error("still held off after heldUntil")
	}
}

// TestDemoteWithinSwitchoverDelay: a clean fast shutdown publishes its
// checkpoint as the final LSN.
func TestDemoteWithinSwitchoverDelay(t *testing.T) {
	lease := &releaseRecorder{}
	owner := &slowOwner{fastDone: true}
	m := testManager(t, owner, lease, time.Hour)
	owner.pgdata = m.cfg.PGData
	in := role.Input{Self: "db-0", Lease: role.Lease{Exists: true, Holder: "db-0", Target: "db-1", Initialized: true},
		Local: role.Local{HasData: true}}
	if err := m.demote(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(owner.stops) != 1 || owner.stops[0] != postmaster.Fast {
		t.Errorf("stops %v, want one fast", owner.stops)
	}
	if len(lease.released) != 1 || lease.released[0] != 0x3000100 {
		t.Errorf("released %v, want the shutdown checkpoint 0/3000100", lease.released)
	}
	if m.demoteHeld("db-1") {
		t.Error("held off after a successful switchover")
	}
}

// TestDemoteFindsCrashedData: a holder whose data was not shut down
// cleanly (a crash during the switchover, then the manager restarted)
// holds the switchover off rather than failing the same way forever.
func TestDemoteFindsCrashedData(t *testing.T) {
	lease := &releaseRecorder{}
	owner := &slowOwner{fastDone: true}
	m := testManager(t, owner, lease, time.Hour)
	if err := writeControl(m.cfg.PGData, 6 /* in production */, 0x2000000); err != nil {
		t.Fatal(err)
	}
	owner.pgdata = t.TempDir() // the stop finds nothing running: pg_control stays
	in := role.Input{Self: "db-0", Lease: role.Lease{Exists: true, Holder: "db-0", Target: "db-1", Initialized: true},
		Local: role.Local{HasData: true}}
	err := m.demote(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), `cluster state is "in production"`) {
		t.Fatalf("demote = %v", err)
	}
	if len(lease.released) != 0 || !m.demoteHeld("db-1") {
		t.Errorf("released %v, held %v", lease.released, m.demoteHeld("db-1"))
	}
}
