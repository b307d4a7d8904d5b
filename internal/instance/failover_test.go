package instance

import (
	"testing"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestPostgresGone: a holder gives the Lease up only for a crash loop
// that has lasted a Lease duration, never for a slow start or a long
// crash recovery (the postmaster running, no further crash).
func TestPostgresGone(t *testing.T) {
	const d = 15 * time.Second
	for _, tc := range []struct {
		crashes int
		down    time.Duration
		want    bool
	}{
		{3, d, true},
		{10, 2 * d, true},
		{2, time.Hour, false},        // one crash, then a long recovery
		{0, time.Hour, false},        // a slow start
		{50, d - time.Second, false}, // crashing, but not for long yet
	} {
		if got := postgresGone(tc.crashes, tc.down, d); got != tc.want {
			t.Errorf("postgresGone(%d, %s) = %v, want %v", tc.crashes, tc.down, got, tc.want)
		}
	}
}

// TestEventMessages: the failover and rejoin Events say what was lost in
// the words a reader of `kubectl get events` needs, and never claim a
// loss that was not measured.
func TestEventMessages(t *testing.T) {
	for _, tc := range []struct {
		rec  pc.Failover
		want string
	}{
		{pc.Failover{From: "web-0", PromotedLSN: "0/5000000", Timeline: 3, FromLSN: "0/5000100", LostBytesAtLeast: 256},
			"took the primary Lease over from web-0 and promoted at 0/5000000 (timeline 3): at least 256 bytes of WAL the old primary wrote (it had published up to 0/5000100) were never received and are lost; the exact commits are counted when it rejoins"},
		{pc.Failover{From: "web-1", PromotedLSN: "0/5000200", Timeline: 2, FromLSN: "0/5000100"},
			"took the primary Lease over from web-1 and promoted at 0/5000200 (timeline 2): the old primary's last published position (0/5000100) was received; what it wrote after that, if anything, is lost; the exact commits are counted when it rejoins"},
	} {
		if got := failoverMessage(tc.rec); got != tc.want {
			t.Errorf("failoverMessage(%+v)\n got %q\nwant %q", tc.rec, got, tc.want)
		}
	}
	if got := commitsText(3, true); got != "3 commits" {
		t.Errorf("commitsText(3, true) = %q", got)
	}
	if got := commitsText(0, false); got != "commits not counted" {
		t.Errorf("commitsText(0, false) = %q", got)
	}
}
