package instance_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// slotsVolume writes one version of the params ConfigMap volume with rep
// and wal_keep_size 0, so only a slot keeps WAL for a standby.
func slotsVolume(t *testing.T, c *insttest.Cluster, rep pc.Replication, revision string) {
	t.Helper()
	replicationParamsVolume(t, c, `{"wal_keep_size": "0", "max_connections": "50"}`, rep, revision)
}

// slotInfo is one row of an instance's pg_replication_slots.
type slotInfo struct {
	Active  bool
	Restart string // "" : no WAL reserved
}

func superuser(t *testing.T, c *insttest.Cluster, i int) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.InstanceDSN(i, "postgres", insttest.SuperuserPassword, "postgres"))
	if err != nil {
		t.Fatalf("%s: %v", c.Instances[i].Name, err)
	}
	return conn
}

func slotsOf(t *testing.T, c *insttest.Cluster, i int) map[string]slotInfo {
	t.Helper()
	ctx := context.Background()
	conn := superuser(t, c, i)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT slot_name, active, coalesce(restart_lsn::text, '') FROM pg_replication_slots WHERE slot_type = 'physical'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]slotInfo{}
	for rows.Next() {
		var n string
		var s slotInfo
		if err := rows.Scan(&n, &s.Active, &s.Restart); err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func names(m map[string]slotInfo) string {
	var n []string
	for k, v := range m {
		n = append(n, fmt.Sprintf("%s(active=%v restart=%q)", k, v.Active, v.Restart))
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

// waitSlots waits until instance i's slots satisfy ok.
func waitSlots(t *testing.T, c *insttest.Cluster, i int, what string, ok func(map[string]slotInfo) bool) map[string]slotInfo {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var got map[string]slotInfo
	for time.Now().Before(deadline) {
		if got = slotsOf(t, c, i); ok(got) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %s; slots: %s\nlog:\n%s", c.Instances[i].Name, what, names(got), c.LogTail(i, 30))
	return nil
}

func sqlOn(t *testing.T, c *insttest.Cluster, i int, sql ...string) {
	t.Helper()
	ctx := context.Background()
	conn := superuser(t, c, i)
	defer conn.Close(ctx)
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %s: %v", c.Instances[i].Name, q, err)
		}
	}
}

// TestReplicationSlots: with HA slots (spec.replicationSlots), the
// primary's manager keeps a slot per standby and each standby streams
// through its own; the standbys keep copies of the others' slots (and of
// the user's not excluded); a stopped standby's WAL stays on the primary;
// after a switchover the new primary has the slots of everybody, the
// stopped standby catches up through its copied slot; a removed
// instance's slot is dropped everywhere.
func TestReplicationSlots(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "slots", 3)
	all := []string{"slots-0", "slots-1", "slots-2"}
	slots := &pc.Slots{HA: true, Prefix: "_cnpg_", UpdateIntervalSeconds: 1, SynchronizeUser: true, Exclude: []string{"^tmp_"}}
	slotsVolume(t, c, pc.Replication{Instances: all, Slots: slots}, "r1")
	addr0 := c.Instances[0].Address()
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	for i := 1; i < 3; i++ {
		c.Start(i)
		c.WaitStatus(i, bootTimeout, "streaming standby", isStreamingStandbyOf(addr0))
	}

	// Each standby streams through its slot on the primary.
	waitSlots(t, c, 0, "a slot per standby, both in use", func(m map[string]slotInfo) bool {
		return len(m) == 2 && m["_cnpg_slots_1"].Active && m["_cnpg_slots_2"].Active
	})
	waitSetting(t, c, 1, "primary_slot_name", "_cnpg_slots_1")
	waitSetting(t, c, 2, "primary_slot_name", "_cnpg_slots_2")
	waitSetting(t, c, 0, "primary_slot_name", "")

	// The standbys' copies: the other standby's slot, the user's slot,
	// not the excluded one nor their own.
	sqlOn(t, c, 0, `SELECT pg_create_physical_replication_slot('keep_me', true)`, `SELECT pg_create_physical_replication_slot('tmp_skip', true)`)
	for i, other := range map[int]string{1: "_cnpg_slots_2", 2: "_cnpg_slots_1"} {
		waitSlots(t, c, i, "copies of "+other+" and keep_me", func(m map[string]slotInfo) bool {
			_, excluded := m["tmp_skip"]
			_, own := m[fmt.Sprintf("_cnpg_slots_%d", i)]
			return len(m) == 2 && m[other].Restart != "" && m["keep_me"].Restart != "" && !excluded && !own
		})
	}

	// The user's slots dropped on the primary: so are their copies (and
	// they no longer hold WAL, for the check below).
	sqlOn(t, c, 0, `SELECT pg_drop_replication_slot('keep_me')`, `SELECT pg_drop_replication_slot('tmp_skip')`)
	for i := 1; i < 3; i++ {
		waitSlots(t, c, i, "the copy of keep_me dropped", func(m map[string]slotInfo) bool {
			_, ok := m["keep_me"]
			return !ok
		})
	}

	// A stopped standby's WAL stays on the primary, though wal_keep_size
	// is 0 and checkpoints recycle what nothing holds.
	c.Stop(2, syscall.SIGINT)
	held := waitSlots(t, c, 0, "slots-2's slot inactive", func(m map[string]slotInfo) bool {
		return !m["_cnpg_slots_2"].Active && m["_cnpg_slots_2"].Restart != ""
	})["_cnpg_slots_2"].Restart
	sqlOn(t, c, 0, `DROP TABLE IF EXISTS walgen`, `CREATE TABLE walgen (x int)`)
	for range 4 {
		sqlOn(t, c, 0, `INSERT INTO walgen SELECT generate_series(1, 20000)`, `SELECT pg_switch_wal()`)
	}
	sqlOn(t, c, 0, `CHECKPOINT`)
	ctx := context.Background()
	conn := superuser(t, c, 0)
	var kept bool
	var segment string
	if err := conn.QueryRow(ctx, `SELECT f, EXISTS (SELECT 1 FROM pg_ls_waldir() WHERE name = f) FROM (SELECT pg_walfile_name($1::pg_lsn + 1) AS f) s`, held).Scan(&segment, &kept); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	// Of restart_lsn + 1: pg_walfile_name names the segment holding the
	// byte before its argument, so at a segment boundary the one before.
	if !kept {
		t.Fatalf("the primary removed %s, which holds slots-2's restart_lsn %s", segment, held)
	}
	// The copy on slots-1 follows the primary's position.
	waitSlots(t, c, 1, "the copy of slots-2's slot at the primary's position", func(m map[string]slotInfo) bool {
		return m["_cnpg_slots_2"].Restart == held
	})

	// Switchover to slots-1: it has the slots of the others (its own
	// copy gone; slots-2's where the primary held it), the old primary
	// streams through its slot there.
	if err := c.SetTarget(ctx, "slots-1"); err != nil {
		t.Fatal(err)
	}
	c.WaitStatus(1, stepTimeout, "promoted", isPrimary)
	addr1 := c.Instances[1].Address()
	c.WaitStatus(0, stepTimeout, "old primary streams from the new", isStreamingStandbyOf(addr1))
	waitSlots(t, c, 1, "the new primary has everybody's slot", func(m map[string]slotInfo) bool {
		_, own := m["_cnpg_slots_1"]
		return m["_cnpg_slots_0"].Active && m["_cnpg_slots_2"].Restart == held && !own
	})
	waitSetting(t, c, 0, "primary_slot_name", "_cnpg_slots_0")

	// The stopped standby comes back and catches up through its slot.
	c.Start(2)
	c.WaitStatus(2, bootTimeout, "streaming from the new primary", isStreamingStandbyOf(addr1))
	waitSlots(t, c, 1, "slots-2 streams through its slot", func(m map[string]slotInfo) bool { return m["_cnpg_slots_2"].Active })
	waitSetting(t, c, 2, "primary_slot_name", "_cnpg_slots_2")
	// The old primary dropped its slot of the new primary.
	waitSlots(t, c, 0, "the old primary's slots are copies of the new primary's", func(m map[string]slotInfo) bool {
		_, stale := m["_cnpg_slots_1"]
		_, own := m["_cnpg_slots_0"]
		return !stale && !own && m["_cnpg_slots_2"].Restart != ""
	})

	// slots-2 removed (scaled down) while it still runs, as until a scale
	// down's remove step: its slot goes from the primary (here dropped by
	// hand between two of its reconnections, as a new primary that never
	// had it would lack it), and slots-2 streams on without it rather
	// than ask for a slot that is gone.
	slotsVolume(t, c, pc.Replication{Instances: all[:2], Slots: slots}, "r2")
	// The primary must have the scale down before the slot is dropped:
	// until then slots-2 is a member whose slot it creates again.
	c.WaitStatus(1, stepTimeout, "the primary on config r2", func(s instance.Status) bool { return s.ConfigRevision == "r2" })
	conn, err := pgx.Connect(context.Background(), c.InstanceDSN(1, "postgres", insttest.SuperuserPassword, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for try := 0; ; try++ {
		_, err := conn.Exec(context.Background(), `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '_cnpg_slots_2' AND active_pid IS NOT NULL`)
		if err == nil {
			_, err = conn.Exec(context.Background(), `SELECT pg_drop_replication_slot('_cnpg_slots_2') FROM pg_replication_slots WHERE slot_name = '_cnpg_slots_2'`)
		}
		if err == nil {
			var n int
			if err = conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '_cnpg_slots_2'`).Scan(&n); err == nil && n == 0 {
				break
			}
		}
		if try == 50 {
			t.Fatalf("drop slots-2's slot on the primary: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close(context.Background())
	waitSetting(t, c, 2, "primary_slot_name", "")
	c.WaitStatus(2, bootTimeout, "streaming standby without its slot", isStreamingStandbyOf(c.Instances[1].Address()))

	// Its copy on the standby goes too once it is stopped.
	c.Stop(2, syscall.SIGINT)
	waitSlots(t, c, 1, "the removed instance's slot dropped", func(m map[string]slotInfo) bool {
		_, ok := m["_cnpg_slots_2"]
		return !ok && m["_cnpg_slots_0"].Active
	})
	waitSlots(t, c, 0, "its copy dropped", func(m map[string]slotInfo) bool {
		_, ok := m["_cnpg_slots_2"]
		return !ok
	})

	// HA off: the standby stops using its slot, the slots go.
	off := *slots
	off.HA = false
	slotsVolume(t, c, pc.Replication{Instances: all[:2], Slots: &off}, "r3")
	waitSetting(t, c, 0, "primary_slot_name", "")
	waitSlots(t, c, 1, "no HA slot left", func(m map[string]slotInfo) bool {
		_, ok := m["_cnpg_slots_0"]
		return !ok
	})
}
