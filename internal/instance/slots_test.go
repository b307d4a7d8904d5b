package instance

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

func TestPrimarySlotOps(t *testing.T) {
	ha := pc.DefaultSlots
	off := ha
	off.HA = false
	three := []string{"db-0", "db-1", "db-2"}
	for _, tc := range []struct {
		name      string
		s         pc.Slots
		self      string
		instances []string
		have      []slotRow
		want      []slotOp
	}{
		{"new primary: a slot per other instance, unreserved", ha, "db-0", three, nil,
			[]slotOp{{kind: "create", name: "_cnpg_db_1"}, {kind: "create", name: "_cnpg_db_2"}}},
		{"all there: nothing", ha, "db-0", three,
			[]slotRow{{name: "_cnpg_db_1", active: true}, {name: "_cnpg_db_2"}}, nil},
		{"promoted standby: its own copy dropped, the old primary's created", ha, "db-1", three,
			[]slotRow{{name: "_cnpg_db_1"}, {name: "_cnpg_db_2", hasRestart: true, restart: 5}},
			[]slotOp{{kind: "drop", name: "_cnpg_db_1"}, {kind: "create", name: "_cnpg_db_0"}}},
		{"departed instance: dropped once inactive", ha, "db-0", three[:2],
			[]slotRow{{name: "_cnpg_db_1"}, {name: "_cnpg_db_2"}}, []slotOp{{kind: "drop", name: "_cnpg_db_2"}}},
		{"departed but still streaming: kept for now", ha, "db-0", three[:2],
			[]slotRow{{name: "_cnpg_db_1"}, {name: "_cnpg_db_2", active: true}}, nil},
		{"user slots left alone", ha, "db-0", three[:1], []slotRow{{name: "backup_slot"}}, nil},
		{"HA off: inactive HA slots dropped", off, "db-0", three,
			[]slotRow{{name: "_cnpg_db_1", active: true}, {name: "_cnpg_db_2"}, {name: "mine"}},
			[]slotOp{{kind: "drop", name: "_cnpg_db_2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := primarySlotOps(tc.s, tc.self, tc.instances, tc.have)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(slotOp{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestStandbySlotOps(t *testing.T) {
	ha := pc.DefaultSlots
	noUser := ha
	noUser.SynchronizeUser = false
	off := ha
	off.HA = false
	at := func(n string, l role.LSN) slotRow { return slotRow{name: n, hasRestart: true, restart: l} }
	primary := []slotRow{{name: "_cnpg_db_1", active: true, hasRestart: true, restart: 100}, at("_cnpg_db_2", 80), {name: "_cnpg_db_3"}, at("keep", 70), at("tmp_x", 60)}
	exclude := []*regexp.Regexp{regexp.MustCompile("^tmp_")}
	for _, tc := range []struct {
		name  string
		s     pc.Slots
		local []slotRow
		want  []slotOp
	}{
		{"first copy: the others' slots that hold WAL and the user's not excluded, reserved and advanced", ha, nil,
			[]slotOp{{kind: "reserve", name: "_cnpg_db_2"}, {kind: "advance", name: "_cnpg_db_2", lsn: 80},
				{kind: "reserve", name: "keep"}, {kind: "advance", name: "keep", lsn: 70}}},
		{"later: advanced only forwards", ha, []slotRow{at("_cnpg_db_2", 50), at("keep", 90)},
			[]slotOp{{kind: "advance", name: "_cnpg_db_2", lsn: 80}}},
		{"its own slot, one the primary dropped, and one holding an xmin: dropped", ha,
			[]slotRow{at("_cnpg_db_1", 10), at("_cnpg_db_9", 10), {name: "_cnpg_db_2", hasRestart: true, restart: 80, holdsXmin: true}, at("keep", 70)},
			[]slotOp{{kind: "drop", name: "_cnpg_db_1"}, {kind: "drop", name: "_cnpg_db_9"}, {kind: "drop", name: "_cnpg_db_2"},
				{kind: "reserve", name: "_cnpg_db_2"}, {kind: "advance", name: "_cnpg_db_2", lsn: 80}}},
		{"excluded local slots left alone", ha, []slotRow{at("tmp_local", 1), at("_cnpg_db_2", 80), at("keep", 70)}, nil},
		{"synchronizeReplicas off: user copies dropped", noUser, []slotRow{at("_cnpg_db_2", 80), at("keep", 70)},
			[]slotOp{{kind: "drop", name: "keep"}}},
		{"HA off: HA copies dropped", off, []slotRow{at("_cnpg_db_2", 80), at("keep", 70)},
			[]slotOp{{kind: "drop", name: "_cnpg_db_2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := standbySlotOps(tc.s, exclude, "db-1", primary, tc.local)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(slotOp{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestSlotName(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"_cnpg_", "cluster-example-1"}: "_cnpg_cluster_example_1",
		{"_cnpg_", "A.b--c"}:            "_cnpg_a_b_c",
		{"", "x_-y"}:                    "x__y",
	} {
		if got := pc.SlotName(in[0], in[1]); got != want {
			t.Errorf("SlotName(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
