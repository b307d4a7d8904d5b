package conffile

import (
	"strings"
	"testing"
)

// TestPrimarySlotName: a standby's slot is rendered, and none is written
// when there is none (a reload then resets primary_slot_name).
func TestPrimarySlotName(t *testing.T) {
	base := Settings{Port: 5432, ListenAddresses: "*", SocketDir: "/run/pgsync", PrimaryConnInfo: "host=a"}
	with := base
	with.PrimarySlotName = "_cnpg_db_1"
	if conf, _ := Render(with); !strings.Contains(conf, "\nprimary_slot_name = '_cnpg_db_1'\n") {
		t.Errorf("no primary_slot_name:\n%s", conf)
	}
	if conf, _ := Render(base); strings.Contains(conf, "primary_slot_name") {
		t.Errorf("primary_slot_name without a slot:\n%s", conf)
	}
	// The Cluster's own is refused: the manager owns it.
	base.Parameters = map[string]string{"primary_slot_name": "mine"}
	if conf, rejected := Render(base); strings.Contains(conf, "mine") || len(rejected) != 1 {
		t.Errorf("the Cluster's primary_slot_name not refused: %v\n%s", rejected, conf)
	}
}
