package instance_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// TestFailoverSynchronous: with synchronous replication on (real
// PostgreSQL, a real kube-apiserver), a killed primary is replaced only by
// a synchronous standby — not by a more advanced asynchronous one — and no
// acknowledged commit is lost; with too few synchronous standbys
// answering nobody is promoted (the reason logged and recorded as a
// FailoverRefused Event) until enough answer again.
func TestFailoverSynchronous(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ctx := context.Background()
	c := insttest.NewCluster(t, "fs", 3)
	// fs-2 listed first and maxStandbyNamesFromCluster 1: ANY 1 ("fs-2"),
	// fs-1 (the lower ordinal) asynchronous.
	one := 1
	rep := pc.Replication{Instances: []string{"fs-0", "fs-2", "fs-1"},
		Synchronous: &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required", MaxStandbyNamesFromCluster: &one}}
	replicationVolume(t, c, rep, "r1")
	app := c.DSN("app", insttest.AppPassword, "app")

	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	c.Start(1)
	c.Start(2)
	for i := 1; i <= 2; i++ {
		c.WaitStatus(i, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
	}
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 1 ("fs-2")`)
	if err := insttest.CreateProbeTable(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitSets(t, c, `[{"method":"any","number":1,"standbys":["fs-2"],"settled":true}]`)

	// Writes through the multi-host DSN; then fs-2's WAL receiver is
	// paused: commits wait for it, while the primary's WAL (the waiting
	// commits') still reaches fs-1, which gets ahead. The primary dies.
	w := insttest.StartWriter(app, 1_000_000)
	if err := w.WaitAcks(50, stepTimeout); err != nil {
		t.Fatal(err)
	}
	recv := walReceiverPID(t, c, 2)
	if err := syscall.Kill(recv, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	c.Kill(0)
	_ = syscall.Kill(recv, syscall.SIGCONT)
	s1, _ := c.Status(1)
	s2, _ := c.Status(2)
	t.Logf("after the kill: fs-1 received %s, fs-2 received %s", s1.ReceivedLSN, s2.ReceivedLSN)
	if lsnOf(s1.ReceivedLSN) <= lsnOf(s2.ReceivedLSN) {
		t.Logf("fs-1 is not ahead of fs-2 (%s ≤ %s): the check below still holds, but proves less", s1.ReceivedLSN, s2.ReceivedLSN)
	}
	s := c.WaitStatus(2, stepTimeout, "the synchronous standby promoted", isPrimary)
	if !strings.Contains(s.LastFailover.Reason, "synchronous standby") {
		t.Errorf("failover reason %q", s.LastFailover.Reason)
	}
	if st, _ := c.Status(1); st.Role == "primary" || st.LeaseHolder == "fs-1" {
		t.Fatalf("the asynchronous fs-1 was promoted: %+v", st)
	}
	if err := w.WaitAcks(20, stepTimeout); err != nil {
		t.Fatalf("writes did not resume: %v", err)
	}
	acks := w.Stop()
	if m, err := insttest.Missing(ctx, c.InstanceDSN(2, "app", insttest.AppPassword, "app"), acks); err != nil || len(m) > 0 {
		t.Fatalf("%d acknowledged commits lost in the failover to fs-2 (%v): %v", len(m), err, m)
	}
	// (fs-1 may not have judged the Lease expired before fs-2 took it.)
	if strings.Contains(readLog(t, c, 1), "not a synchronous standby") {
		t.Log("fs-1 said it is not a synchronous standby")
	}

	// Every standby synchronous: ANY 1 of fs-0 and fs-1 under fs-2.
	rep.Instances = []string{"fs-0", "fs-1", "fs-2"}
	rep.Synchronous = &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required"}
	replicationVolume(t, c, rep, "r2")
	c.Start(0)
	for _, i := range []int{0, 1} {
		c.WaitStatus(i, stepTimeout, "streaming from fs-2", isStreamingStandbyOf(c.Instances[2].Address()))
	}
	waitSettingOneOf(t, c, 2, "synchronous_standby_names", `ANY 1 ("fs-0","fs-1","fs-2")`, `ANY 1 ("fs-1","fs-0","fs-2")`)
	waitSetsMatch(t, c, func(sets []pc.SyncSet) bool {
		return len(sets) == 1 && sets[0].Settled && sets[0].Number == 1 && len(sets[0].Standbys) == 2
	})

	// fs-1's manager stops answering (SIGSTOP: a partition of its
	// manager; its postgres streams on); then the primary dies. fs-0 alone
	// cannot know whether fs-1 holds a commit fs-0 lacks (ANY 1: either
	// may have acknowledged it): no promotion.
	w = insttest.StartWriter(app, 2_000_000)
	if err := w.WaitAcks(30, stepTimeout); err != nil {
		t.Fatal(err)
	}
	mgr1 := c.ManagerPID(1)
	if err := syscall.Kill(mgr1, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = syscall.Kill(mgr1, syscall.SIGCONT)
		}
	}()
	if err := w.WaitAcks(30, stepTimeout); err != nil {
		t.Fatalf("commits stopped: %v", err)
	}
	c.Kill(2)
	killed := time.Now()
	for time.Since(killed) < 4*c.LeaseDuration {
		if st, err := c.Status(0); err == nil && (st.Role == "primary" || st.LeaseHolder == "fs-0") {
			t.Fatalf("fs-0 promoted with fs-1 silent: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, _ := c.Status(0); !strings.Contains(st.ActionReason, "1 of the 2 standbys of ANY 1") {
		t.Errorf("fs-0's reason: %q", st.ActionReason)
	}
	if !strings.Contains(readLog(t, c, 0), "synchronous replication: no failover") {
		t.Error("fs-0's log does not say why it does not promote")
	}
	if ev := waitEvent(t, c, "fs-0", pc.EventFailoverRefused); !strings.Contains(ev, "of the 2 standbys") {
		t.Errorf("FailoverRefused event: %q", ev)
	}

	// fs-1 answers again: a quorum, the most advanced of the two (equal:
	// the lower ordinal) promotes, nothing acknowledged is lost.
	_ = syscall.Kill(mgr1, syscall.SIGCONT)
	resumed = true
	to := -1
	for deadline := time.Now().Add(stepTimeout); to < 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, i := range []int{0, 1} {
			if st, err := c.Status(i); err == nil && isPrimary(st) {
				to = i
			}
		}
	}
	if to < 0 {
		for i := range c.Instances {
			t.Logf("%s:\n%s", c.Instances[i].Name, c.LogTail(i, 30))
		}
		t.Fatal("no promotion once fs-1 answers again")
	}
	if err := w.WaitAcks(20, stepTimeout); err != nil {
		for i := range c.Instances {
			t.Logf("%s:\n%s", c.Instances[i].Name, c.LogTail(i, 40))
		}
		t.Fatalf("writes did not resume on %s: %v", c.Instances[to].Name, err)
	}
	acks = w.Stop()
	if m, err := insttest.Missing(ctx, c.InstanceDSN(to, "app", insttest.AppPassword, "app"), acks); err != nil || len(m) > 0 {
		t.Fatalf("%d acknowledged commits lost in the failover to %s (%v): %v", len(m), c.Instances[to].Name, err, m)
	}
}

// waitSets waits for the primary Lease's synchronous standby sets to read
// want (JSON).
func waitSets(t *testing.T, c *insttest.Cluster, want string) {
	t.Helper()
	got := ""
	waitSetsMatch(t, c, func(sets []pc.SyncSet) bool { got = pc.FormatSyncSets(sets); return got == want })
}

func waitSetsMatch(t *testing.T, c *insttest.Cluster, ok func([]pc.SyncSet) bool) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l, err := c.Lease(context.Background())
		if err != nil {
			continue
		}
		last = l.Annotations[pc.AnnSyncSets]
		if sets, err := pc.ParseSyncSets(last); err == nil && ok(sets) {
			return
		}
	}
	t.Fatalf("the primary Lease's %s: %q", pc.AnnSyncSets, last)
}

// waitSettingOneOf waits until instance i shows setting as one of want.
func waitSettingOneOf(t *testing.T, c *insttest.Cluster, i int, setting string, want ...string) {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = show(t, c, i, setting)
		for _, w := range want {
			if got == w {
				return
			}
		}
	}
	t.Fatalf("%s: %s = %q, want one of %q", c.Instances[i].Name, setting, got, want)
}
