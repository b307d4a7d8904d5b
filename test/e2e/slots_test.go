package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// checkHASlots: the primary of a 3-instance website cluster (HA slots on
// by default, spec.replicationSlots not written) has an HA slot for each
// of the two others, and both standbys stream through theirs.
func checkHASlots(ctx context.Context, t *testing.T, primaryDSN, primary string) {
	t.Helper()
	var want []string
	for i := range 3 {
		if n := fmt.Sprintf("website-%d", i); n != primary {
			want = append(want, pc.SlotName(pc.DefaultSlots.Prefix, n))
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = nil
		conn := instConnect(ctx, t, primaryDSN)
		rows, err := conn.Query(ctx, `SELECT slot_name FROM pg_replication_slots WHERE active AND slot_name LIKE '\_cnpg\_%' ORDER BY slot_name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
		rows.Close()
		conn.Close(ctx)
		sort.Strings(got)
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("primary %s: active HA slots %v, want %v", primary, got, want)
}
