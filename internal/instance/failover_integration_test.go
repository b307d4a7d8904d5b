package instance_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/instance"
	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// TestFailover: three managers (real PostgreSQL, a real kube-apiserver);
// the primary dies or is partitioned from the API server, the most
// advanced standby takes the expired Lease and promotes, the old primary
// rejoins (pg_rewind, or a new base backup when that fails), and at no
// moment do two instances accept writes (every instance is written to
// directly throughout). The steps share one cluster and run in order.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "fo", 3)
	ctx := context.Background()
	app := c.DSN("app", insttest.AppPassword, "app")
	var times []time.Duration // kill → first acknowledged write through the multi-host DSN
	var lost []int64          // acknowledged, then lost in the last failover
	failovers := 0
	all := insttest.StartDirectWriters(c, 100_000_000, 20*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			all.Stop()
		}
	}()

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"bootstrap", func(t *testing.T) {
			c.Start(0)
			c.WaitStatus(0, bootTimeout, "primary", isPrimary)
			if err := insttest.CreateProbeTable(ctx, app); err != nil {
				t.Fatal(err)
			}
			c.Start(1)
			c.Start(2)
			for i := 1; i <= 2; i++ {
				c.WaitStatus(i, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
			}
		}},
		{"the primary's manager and postmaster killed: a standby promotes, writes resume", func(t *testing.T) {
			from := primaryIndex(t, c)
			to, d, missing := killPrimary(t, c, app, from)
			times, lost = append(times, d), missing
			failovers++
			s := c.WaitStatus(to, stepTimeout, "failover recorded", func(s instance.Status) bool {
				return s.LastFailover != nil && s.LastFailover.PromotedLSN != ""
			})
			f := s.LastFailover
			if f.From != c.Instances[from].Name || f.To != c.Instances[to].Name || f.At.IsZero() || f.Timeline != s.Timeline {
				t.Errorf("failover record %+v (timeline %d)", f, s.Timeline)
			}
			t.Logf("failover record: %+v", *f)
			if ev := waitEvent(t, c, c.Instances[to].Name, podcontract.EventFailoverPromoted); !strings.Contains(ev, "from "+f.From) || !strings.Contains(ev, f.PromotedLSN) {
				t.Errorf("FailoverPromoted event: %q", ev)
			}
			checkRouting(t, c, to)
			// The bystander follows the new primary.
			for i := range c.Instances {
				if i != from && i != to {
					c.WaitStatus(i, stepTimeout, "bystander follows", isStreamingStandbyOf(c.Instances[to].Address()))
					if b, _ := c.Status(i); b.LastFailover == nil || b.LastFailover.To != f.To {
						t.Errorf("the bystander's /status does not show the failover: %+v", b.LastFailover)
					}
				}
			}
		}},
		{"the old primary rejoins: crash recovery, pg_rewind, the discarded WAL logged", func(t *testing.T) {
			old, p := deadIndex(t, c), primaryIndex(t, c)
			c.Start(old)
			s := c.WaitStatus(old, stepTimeout, "rejoined as a standby", isStreamingStandbyOf(c.Instances[p].Address()))
			r := s.LastRejoin
			if r == nil || r.Method != "pg_rewind" || r.DiscardedFrom == "" || !r.CommitsCounted {
				t.Fatalf("lastRejoin %+v", r)
			}
			t.Logf("rejoin: %+v", *r)
			if ev := waitEvent(t, c, c.Instances[old].Name, podcontract.EventRejoinDiscardedWAL); !strings.Contains(ev, r.DiscardedFrom) || !strings.Contains(ev, fmt.Sprintf("%d commits", r.DiscardedCommits)) {
				t.Errorf("RejoinDiscardedWAL event: %q", ev)
			}
			logs := readLog(t, c, old)
			if len(lost) > r.DiscardedCommits {
				t.Errorf("%d acknowledged commits lost, but only %d commits discarded", len(lost), r.DiscardedCommits)
			}
			// What the new primary never had is gone from the old one too
			// (the rewind undid it): the standby has none of the lost rows.
			if err := insertOne(ctx, c.InstanceDSN(p, "app", insttest.AppPassword, "app"), 2_999_999); err != nil {
				t.Fatal(err)
			}
			rejoined := c.InstanceDSN(old, "app", insttest.AppPassword, "app")
			for deadline := time.Now().Add(stepTimeout); ; time.Sleep(50 * time.Millisecond) {
				if m, err := insttest.Missing(ctx, rejoined, []insttest.Ack{{ID: 2_999_999}}); err == nil && len(m) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the rejoined standby does not replay the new primary's writes")
				}
			}
			var acks []insttest.Ack
			for _, id := range lost {
				acks = append(acks, insttest.Ack{ID: id})
			}
			if m, err := insttest.Missing(ctx, rejoined, acks); err != nil || len(m) != len(lost) {
				t.Errorf("%d of the %d lost commits survived on the rewound old primary (%v)", len(lost)-len(m), len(lost), err)
			}
			for _, want := range []string{"crash recovery in single-user mode first", "discarding WAL the new primary never received", "timelines diverged: running pg_rewind"} {
				if !strings.Contains(logs, want) {
					t.Errorf("no %q in the old primary's log", want)
				}
			}
		}},
		{"the primary partitioned from the API server: fenced, another promotes", func(t *testing.T) {
			from := primaryIndex(t, c)
			for i := range c.Instances {
				if i != from {
					c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[from].Address()))
				}
			}
			w := insttest.StartWriter(app, 3_000_000)
			defer w.Stop()
			if err := w.WaitAcks(50, stepTimeout); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			c.CutAPIFor(from)
			defer c.RestoreAPIFor(from)
			c.WaitStatus(from, stepTimeout, "fenced", func(s instance.Status) bool { return s.Role == "fenced" })
			fencedAt := time.Now()
			to := -1
			deadline := time.Now().Add(stepTimeout)
			for to < 0 && time.Now().Before(deadline) {
				for i := range c.Instances {
					if s, err := c.Status(i); i != from && err == nil && isPrimary(s) {
						to = i
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			if to < 0 {
				t.Fatal("no standby took over from the partitioned primary")
			}
			if err := w.WaitAcks(50, stepTimeout); err != nil {
				t.Fatal(err)
			}
			acks := w.Stop()
			failovers++
			gap := insttest.MaxGap(acks, t0, time.Now())
			t.Logf("partition of %s: fenced %s after the cut, %s promoted; writes through the DSN stopped for %s",
				c.Instances[from].Name, fencedAt.Sub(t0).Round(time.Millisecond), c.Instances[to].Name, gap.Round(time.Millisecond))
			if missing, err := insttest.Missing(ctx, c.InstanceDSN(to, "app", insttest.AppPassword, "app"), acks); err != nil || len(missing) > 0 {
				t.Errorf("%d acknowledged commits missing after a fenced failover (%v): the fenced primary's fast shutdown sends all its WAL", len(missing), err)
			}
			c.RestoreAPIFor(from)
			s := c.WaitStatus(from, stepTimeout, "the fenced primary rejoins", isStreamingStandbyOf(c.Instances[to].Address()))
			t.Logf("rejoin after the partition: %+v", s.LastRejoin)
		}},
		{"two standbys: the most advanced one wins", func(t *testing.T) {
			from := primaryIndex(t, c)
			var others []int
			for i := range c.Instances {
				if i != from {
					others = append(others, i)
					c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[from].Address()))
				}
			}
			// The lower ordinal would win a tie: make it the laggard.
			lag, lead := others[0], others[1]
			pid := walReceiverPID(t, c, lag)
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(pid, syscall.SIGCONT)
			for id := int64(4_000_000); id < 4_000_200; id++ {
				if err := insertOne(ctx, c.InstanceDSN(from, "app", insttest.AppPassword, "app"), id); err != nil {
					t.Fatal(err)
				}
			}
			// Both statuses must show the difference before the kill.
			c.WaitStatus(lead, stepTimeout, "lead ahead", func(s instance.Status) bool {
				l, _ := c.Status(lag)
				return s.ReceivedLSN != "" && l.ReceivedLSN != "" && lsnOf(s.ReceivedLSN) > lsnOf(l.ReceivedLSN)
			})
			logFrom := len(readLog(t, c, lag))
			to, d, _ := killPrimary(t, c, app, from)
			times = append(times, d)
			failovers++
			if to != lead {
				t.Fatalf("%s promoted; %s had received more", c.Instances[to].Name, c.Instances[lead].Name)
			}
			// It may not even have held an election (the leader can take
			// over before the laggard's own clock says the Lease expired);
			// if it did, it stood down.
			if logs := readLog(t, c, lag)[logFrom:]; strings.Contains(logs, `"msg":"failover election","elected":true`) {
				t.Errorf("the laggard elected itself")
			} else if strings.Contains(readLog(t, c, lag)[logFrom:], "is more advanced") {
				t.Logf("the laggard stood down: %s is more advanced", c.Instances[lead].Name)
			}
			_ = syscall.Kill(pid, syscall.SIGCONT)
			c.WaitStatus(lag, stepTimeout, "laggard follows", isStreamingStandbyOf(c.Instances[lead].Address()))
			c.Start(from)
			c.WaitStatus(from, stepTimeout, "old primary rejoins", isStreamingStandbyOf(c.Instances[lead].Address()))
		}},
		{"pg_rewind impossible: the old primary is rebuilt from a base backup", func(t *testing.T) {
			if c.Cred == nil {
				t.Skip("needs root: the test makes pg_rewind fail with a directory only root can read")
			}
			from := primaryIndex(t, c)
			to, d, _ := killPrimary(t, c, app, from)
			times = append(times, d)
			failovers++
			// pg_rewind lists the target's directory before changing
			// anything: an unreadable directory makes it fail.
			bad := filepath.Join(c.Instances[from].PGData, "pgsync-test-unreadable")
			if err := os.Mkdir(bad, 0o000); err != nil {
				t.Fatal(err)
			}
			c.Start(from)
			s := c.WaitStatus(from, stepTimeout, "rebuilt and streaming", isStreamingStandbyOf(c.Instances[to].Address()))
			if r := s.LastRejoin; r == nil || r.Method != "base backup" || !strings.Contains(r.FallbackReason, "pg_rewind") || r.DiscardedFrom == "" {
				t.Errorf("lastRejoin %+v", r)
			}
			if _, err := os.Stat(bad); err == nil {
				t.Error("the data directory was not replaced")
			}
		}},
		{"a switchover target that stops right after the release: another standby takes over, losing nothing", func(t *testing.T) {
			from := primaryIndex(t, c)
			var others []int
			for i := range c.Instances {
				if i != from {
					others = append(others, i)
					c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[from].Address()))
				}
			}
			target, other := others[0], others[1]
			w := insttest.StartWriter(app, 5_000_000)
			defer w.Stop()
			if err := w.WaitAcks(50, stepTimeout); err != nil {
				t.Fatal(err)
			}
			// The target's manager freezes (its postgres keeps streaming,
			// so the primary hands over): it never takes the Lease.
			pid := c.ManagerPID(target)
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(pid, syscall.SIGCONT)
			t0 := time.Now()
			if err := c.SetTarget(ctx, c.Instances[target].Name); err != nil {
				t.Fatal(err)
			}
			s := c.WaitStatus(other, stepTimeout, "took over the released Lease", isPrimary)
			if err := w.WaitAcks(50, stepTimeout); err != nil {
				t.Fatal(err)
			}
			acks := w.Stop()
			failovers++
			t.Logf("released to a frozen target: %s took over, writes stopped for %s", c.Instances[other].Name, insttest.MaxGap(acks, t0, time.Now()).Round(time.Millisecond))
			if missing, err := insttest.Missing(ctx, c.InstanceDSN(other, "app", insttest.AppPassword, "app"), acks); err != nil || len(missing) > 0 {
				t.Errorf("%d acknowledged commits lost taking over a released Lease (%v)", len(missing), err)
			}
			s = c.WaitStatus(other, stepTimeout, "failover recorded", func(s instance.Status) bool {
				return s.LastFailover != nil && s.LastFailover.PromotedLSN != "" && s.LastFailover.To == c.Instances[other].Name
			})
			if f := s.LastFailover; f.From != c.Instances[from].Name || f.FromLSN == "" || f.LostBytesAtLeast != 0 {
				t.Errorf("failover record %+v", f)
			}
			_ = syscall.Kill(pid, syscall.SIGCONT)
			for _, i := range []int{from, target} {
				c.WaitStatus(i, stepTimeout, "follows the new primary", isStreamingStandbyOf(c.Instances[other].Address()))
			}
		}},
		{"the primary's postgres keeps failing to start: its manager gives the Lease up, a standby takes over", func(t *testing.T) {
			from := primaryIndex(t, c)
			for i := range c.Instances {
				if i != from {
					c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[from].Address()))
				}
			}
			// A configuration postgres refuses: every restart fails at once,
			// while the manager stays up and could renew for ever.
			auto := filepath.Join(c.Instances[from].PGData, "postgresql.auto.conf")
			orig, err := os.ReadFile(auto)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WriteFileAs(auto, []byte("this is not a setting\n")); err != nil {
				t.Fatal(err)
			}
			restored := false
			restore := func() {
				if !restored {
					restored = true
					if err := c.WriteFileAs(auto, orig); err != nil {
						t.Error(err)
					}
				}
			}
			defer restore()
			s, err := c.Status(from)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if err := syscall.Kill(s.PostmasterPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			to := -1
			for deadline := time.Now().Add(stepTimeout); to < 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				for i := range c.Instances {
					if s, err := c.Status(i); i != from && err == nil && isPrimary(s) {
						to = i
					}
				}
			}
			if to < 0 {
				t.Fatalf("no standby took over from a primary whose postgres cannot start:\n%s", c.LogTail(from, 30))
			}
			failovers++
			t.Logf("%s's postgres crash-looping: %s primary %s after the kill", c.Instances[from].Name, c.Instances[to].Name, time.Since(t0).Round(time.Millisecond))
			restore()
			if !strings.Contains(readLog(t, c, from), "postgres keeps failing: stopping it and giving the primary Lease up") {
				t.Error("the old primary's log does not say it gave the Lease up")
			}
			f := c.WaitStatus(to, stepTimeout, "failover recorded", func(s instance.Status) bool {
				return s.LastFailover != nil && s.LastFailover.PromotedLSN != "" && s.LastFailover.To == c.Instances[to].Name
			}).LastFailover
			if f.From != c.Instances[from].Name {
				t.Errorf("failover record %+v", f)
			}
			c.WaitStatus(from, stepTimeout, "the old primary rejoins", isStreamingStandbyOf(c.Instances[to].Address()))
			if err := insertOne(ctx, c.InstanceDSN(to, "app", insttest.AppPassword, "app"), 6_999_999); err != nil {
				t.Errorf("no writes on the new primary: %v", err)
			}
		}},
		{"repeated failovers leave a healthy cluster", func(t *testing.T) {
			for round := 0; round < 5; round++ {
				from := primaryIndex(t, c)
				for i := range c.Instances {
					if i != from {
						c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[from].Address()))
					}
				}
				to, d, _ := killPrimary(t, c, app, from)
				times = append(times, d)
				failovers++
				c.Start(from)
				c.WaitStatus(from, stepTimeout, "old primary rejoins", isStreamingStandbyOf(c.Instances[to].Address()))
			}
			p := primaryIndex(t, c)
			for i := range c.Instances {
				if i != p {
					c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[p].Address()))
					if !c.Ready(i) {
						t.Errorf("%s not ready", c.Instances[i].Name)
					}
				}
			}
			checkRouting(t, c, p)
			// Every instance has the primary's rows up to a marker (the
			// direct writers keep adding rows meanwhile).
			marker := int64(9_999_999)
			if err := insertOne(ctx, c.InstanceDSN(p, "app", insttest.AppPassword, "app"), marker); err != nil {
				t.Fatal(err)
			}
			rows := func(i int) (int64, string, error) {
				var n int64
				var sum string
				conn, err := pgx.Connect(ctx, c.InstanceDSN(i, "app", insttest.AppPassword, "app"))
				if err != nil {
					return 0, "", err
				}
				defer conn.Close(ctx)
				err = conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(id), 0)::text FROM probe WHERE at <= (SELECT at FROM probe WHERE id = $1)`, marker).Scan(&n, &sum)
				return n, sum, err
			}
			wantN, wantSum, err := rows(p)
			if err != nil || wantN == 0 {
				t.Fatalf("primary: %d rows (%v)", wantN, err)
			}
			for i := range c.Instances {
				var n int64
				var sum string
				for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if n, sum, err = rows(i); err == nil && n == wantN && sum == wantSum {
						break
					}
				}
				if n != wantN || sum != wantSum {
					t.Errorf("%s has %d rows up to the marker (%v), the primary %d", c.Instances[i].Name, n, err, wantN)
				}
			}
		}},
		{"never two instances accepting writes, throughout", func(t *testing.T) {
			acks := all.Stop()
			stopped = true
			hs, err := insttest.Handovers(acks)
			if err != nil {
				t.Fatal(err)
			}
			// The first writes went to the bootstrapped primary; each
			// failover moves them once.
			if len(hs) != failovers {
				t.Errorf("%d handovers of the accepting instance for %d failovers: %+v", len(hs), failovers, hs)
			}
			minGap := time.Duration(1 << 62)
			for _, h := range hs {
				minGap = min(minGap, h.First.Sub(h.Last))
			}
			t.Logf("%d direct commits over %d instances, %d handovers, the shortest gap between two instances' commits %s",
				len(acks), len(c.Instances), len(hs), minGap.Round(time.Millisecond))
			sorted := slices.Clone(times)
			sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
			if len(sorted) > 0 {
				t.Logf("kill → first write through the multi-host DSN over %d failovers (Lease %s): median %s, min %s, max %s, all %v",
					len(sorted), c.LeaseDuration, sorted[len(sorted)/2].Round(time.Millisecond), sorted[0].Round(time.Millisecond),
					sorted[len(sorted)-1].Round(time.Millisecond), roundAll(times))
			}
		}},
		{"no secrets in any response or log", func(t *testing.T) {
			checkNoSecrets(t, c)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			for i := range c.Instances {
				t.Logf("%s log tail:\n%s", c.Instances[i].Name, c.LogTail(i, 40))
			}
			return
		}
	}
}

// killPrimary kills instance from (manager and postmaster) while a writer
// runs through the multi-host DSN, waits for another instance to become
// primary and for writes to resume, and returns it with the time from the
// kill to the first acknowledged write, and the acknowledged commits the
// new primary lacks. It reports (does not fail on) the
// acknowledged commits the new primary lacks: asynchronous replication can
// lose those.
func killPrimary(t *testing.T, c *insttest.Cluster, dsn string, from int) (int, time.Duration, []int64) {
	t.Helper()
	ctx := context.Background()
	w := insttest.StartWriter(dsn, time.Now().UnixNano()/1000)
	defer w.Stop()
	if err := w.WaitAcks(50, stepTimeout); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c.Kill(from)
	to := -1
	deadline := time.Now().Add(stepTimeout)
	for to < 0 && time.Now().Before(deadline) {
		for i := range c.Instances {
			if s, err := c.Status(i); i != from && err == nil && isPrimary(s) {
				to = i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if to < 0 {
		for i := range c.Instances {
			t.Logf("%s:\n%s", c.Instances[i].Name, c.LogTail(i, 30))
		}
		t.Fatalf("no standby took over from %s", c.Instances[from].Name)
	}
	if err := w.WaitAcks(20, stepTimeout); err != nil {
		t.Fatalf("writes did not resume: %v", err)
	}
	acks := w.Stop()
	// Writes are back at the end of the longest gap after the kill
	// (commits answered just after t0 were on their way before it).
	_, _, end := insttest.GapBounds(acks, t0, time.Now())
	back := end.Sub(t0)
	// The commits acknowledged right before the kill may not have reached
	// a standby: count what the new primary lacks.
	missing, err := insttest.Missing(ctx, c.InstanceDSN(to, "app", insttest.AppPassword, "app"), acks)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s killed: %s promoted, writes back %s after the kill; %d acknowledged commits lost (asynchronous replication)",
		c.Instances[from].Name, c.Instances[to].Name, back.Round(time.Millisecond), len(missing))
	return to, back, missing
}

// primaryIndex is the instance that is primary now.
func primaryIndex(t *testing.T, c *insttest.Cluster) int {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		for i := range c.Instances {
			if s, err := c.Status(i); err == nil && isPrimary(s) {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no primary")
	return -1
}

// deadIndex is the instance whose manager is not running.
func deadIndex(t *testing.T, c *insttest.Cluster) int {
	t.Helper()
	for i := range c.Instances {
		if c.ManagerPID(i) == 0 {
			return i
		}
	}
	t.Fatal("every manager runs")
	return -1
}

// walReceiverPID is the WAL receiver process of standby i.
func walReceiverPID(t *testing.T, c *insttest.Cluster, i int) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.InstanceDSN(i, "postgres", insttest.SuperuserPassword, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pid FROM pg_stat_wal_receiver").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func lsnOf(s string) uint64 {
	var hi, lo uint64
	fmt.Sscanf(s, "%X/%X", &hi, &lo)
	return hi<<32 | lo
}

func roundAll(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Round(10*time.Millisecond).String())
	}
	return out
}

// waitEvent waits for an Event of reason on pod and returns its message.
func waitEvent(t *testing.T, c *insttest.Cluster, pod, reason string) string {
	t.Helper()
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		evs, err := c.Admin.CoreV1().Events(c.Namespace).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod + ",reason=" + reason})
		if err == nil && len(evs.Items) > 0 {
			e := evs.Items[len(evs.Items)-1]
			if e.Type != corev1.EventTypeWarning || e.InvolvedObject.UID == "" {
				t.Errorf("event %s on %s: type %s, uid %q", reason, pod, e.Type, e.InvolvedObject.UID)
			}
			t.Logf("event %s on %s: %s", reason, pod, e.Message)
			return e.Message
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event on pod %s (%v)", reason, pod, err)
		}
	}
}
