package role

import "testing"

func TestDecide(t *testing.T) {
	const self = "db-1"
	held := func(holder string) Lease {
		return Lease{Exists: true, Holder: holder, Target: holder, PrimaryAddress: holder + ":5432", Initialized: true}
	}
	released := func(by, target string, final LSN) Lease {
		return Lease{Exists: true, Target: target, ReleasedBy: by, FinalLSN: final, HasFinalLSN: true, Initialized: true}
	}
	primary := Local{HasData: true, Up: true, Accepting: true, Routed: true}
	standby := func(upstream string, replay LSN) Local {
		return Local{HasData: true, Up: true, Accepting: true, InRecovery: true, Upstream: upstream, ReplayLSN: replay}
	}
	stopped := func(ckpt LSN) Local { return Local{HasData: true, CheckpointLSN: ckpt} }
	with := func(l Lease, f func(*Lease)) Lease { f(&l); return l }

	tests := []struct {
		name string
		in   Input
		want Kind
		up   string
		take bool
	}{
		{"lease missing, nothing running", Input{Local: Local{}}, Wait, "", false},
		{"lease missing while writable fences", Input{Local: primary}, Fence, "", false},
		{"designated primary, empty PGDATA: initdb",
			Input{Lease: Lease{Exists: true, Target: self}}, InitPrimary, "", false},
		{"designated but cluster already initialized: no second initdb",
			Input{Lease: Lease{Exists: true, Target: self, Initialized: true}}, Wait, "", false},
		{"holder with empty PGDATA never initdbs",
			Input{Lease: held(self)}, Wait, "", false},
		{"standby with empty PGDATA clones from holder",
			Input{Lease: held("db-0")}, Clone, "db-0:5432", false},
		{"empty PGDATA, holder without address waits",
			Input{Lease: with(held("db-0"), func(l *Lease) { l.PrimaryAddress = "" })}, Wait, "", false},
		{"holder, stopped: start as primary",
			Input{Lease: held(self), Local: stopped(0)}, StartPrimary, "", false},
		{"holder, running, not yet routed",
			Input{Lease: held(self), Local: with2(primary, func(l *Local) { l.Routed = false })}, Route, "", false},
		{"holder renews when due",
			Input{Lease: held(self), Local: primary, RenewDue: true}, Renew, "", false},
		{"holder, nothing due",
			Input{Lease: held(self), Local: primary}, Wait, "", false},
		{"holder not accepting yet waits",
			Input{Lease: held(self), Local: with2(primary, func(l *Local) { l.Accepting = false })}, Wait, "", false},
		{"holder still in recovery promotes",
			Input{Lease: held(self), Local: standby("", 10)}, Promote, "", false},
		{"holder cannot renew in time: fence",
			Input{Lease: held(self), Local: primary, RenewOverdue: true}, Fence, "", false},
		{"fenced holder stays down",
			Input{Lease: held(self), Local: stopped(5), RenewOverdue: true}, Wait, "", false},
		{"fenced holder retries the renewal before starting",
			Input{Lease: held(self), Local: stopped(5), RenewOverdue: true, RenewDue: true}, Renew, "", false},
		{"new target elsewhere: demote",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: primary}, Demote, "", false},
		{"new target, renewal due: renew first (the demotion may be refused)",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: primary, RenewDue: true}, Renew, "", false},
		{"new target but the Lease is about to expire: fence first",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: primary, RenewOverdue: true, RenewDue: true}, Fence, "", false},
		{"new target while fenced: demote still publishes the LSN",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: stopped(9), RenewOverdue: true}, Demote, "", false},
		{"switchover held off after a failed attempt, stopped: start as primary again",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: stopped(9), DemoteHeld: true}, StartPrimary, "", false},
		{"switchover held off, overdue: renew before starting",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: stopped(9), DemoteHeld: true, RenewOverdue: true, RenewDue: true}, Renew, "", false},
		{"switchover held off, running: serve as primary",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: primary, DemoteHeld: true}, Wait, "", false},
		{"switchover held off, running, renewal due: renew",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: primary, DemoteHeld: true, RenewDue: true}, Renew, "", false},
		{"switchover held off but the Lease is about to expire: fence",
			Input{Lease: with(held(self), func(l *Lease) { l.Target = "db-2" }), Local: primary, DemoteHeld: true, RenewOverdue: true}, Fence, "", false},
		{"target, old primary still holds: prepare the takeover",
			Input{Lease: with(held("db-0"), func(l *Lease) { l.Target = self }), Local: standby("db-0:5432", 100)}, Prepare, "db-0:5432", false},
		{"target, prepared: keep streaming",
			Input{Lease: with(held("db-0"), func(l *Lease) { l.Target = self }), Local: with2(standby("db-0:5432", 100), func(l *Local) { l.Prepared = true })}, Wait, "", false},
		{"prepared, but the target moved elsewhere: back to the plain configuration",
			Input{Lease: with(held("db-0"), func(l *Lease) { l.Target = "db-2" }), Local: with2(standby("db-0:5432", 100), func(l *Local) { l.Prepared = true })}, Follow, "db-0:5432", false},
		{"target, released, replay behind: wait",
			Input{Lease: released("db-0", self, 200), Local: standby("db-0:5432", 199)}, Wait, "", false},
		{"target, released, replay reached: promote",
			Input{Lease: released("db-0", self, 200), Local: standby("db-0:5432", 200)}, Promote, "", false},
		{"target, released, replay past: promote",
			Input{Lease: released("db-0", self, 200), Local: standby("db-0:5432", 300)}, Promote, "", false},
		{"target, released without final LSN: no blind promotion",
			Input{Lease: with(released("db-0", self, 0), func(l *Lease) { l.HasFinalLSN = false }), Local: standby("db-0:5432", 300)}, Wait, "", false},
		{"target, released, not accepting: wait",
			Input{Lease: released("db-0", self, 200), Local: with2(standby("", 0), func(l *Local) { l.Accepting = false })}, Wait, "", false},
		{"target, released, stopped: start in recovery",
			Input{Lease: released("db-0", self, 200), Local: stopped(100)}, StartStandby, "", false},
		{"switchover back to the releaser before anyone promoted: take back",
			Input{Lease: released(self, self, 200), Local: stopped(200)}, StartPrimary, "", true},
		{"releaser with other data than published: no take back",
			Input{Lease: released(self, self, 200), Local: stopped(100)}, StartStandby, "", false},
		{"bootstrap interrupted after initdb: take the Lease and start",
			Input{Lease: Lease{Exists: true, Target: self}, Local: stopped(1)}, StartPrimary, "", true},
		{"released primary waits for the new holder",
			Input{Lease: released(self, "db-2", 200), Local: stopped(200)}, Wait, "", false},
		{"bystander standby keeps running during the switchover",
			Input{Lease: released("db-0", "db-2", 200), Local: standby("db-0:5432", 200)}, Wait, "", false},
		{"bystander stopped with no primary starts in recovery",
			Input{Lease: released("db-0", "db-2", 200), Local: stopped(100)}, StartStandby, "", false},
		{"writable without the Lease fences",
			Input{Lease: released("db-0", "db-2", 200), Local: primary}, Fence, "", false},
		{"writable while another holds the Lease fences",
			Input{Lease: held("db-2"), Local: primary}, Fence, "", false},
		{"old primary rejoins the new holder",
			Input{Lease: held("db-2"), Local: stopped(200)}, Rejoin, "db-2:5432", false},
		{"old primary stays down while -rw may still route to it",
			Input{Lease: held("db-2"), Local: stopped(200), RouteHeld: true}, Wait, "", false},
		{"a writable old primary fences even while the route is held",
			Input{Lease: held("db-2"), Local: primary, RouteHeld: true}, Fence, "", false},
		{"standby follows a new holder",
			Input{Lease: held("db-2"), Local: standby("db-0:5432", 300)}, Follow, "db-2:5432", false},
		{"standby of the holder: nothing to do",
			Input{Lease: held("db-2"), Local: standby("db-2:5432", 300)}, Wait, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Self = self
			got := Decide(in)
			if got.Kind != tc.want || got.Upstream != tc.up || got.TakeLease != tc.take {
				t.Fatalf("Decide = %v (upstream %q, take %v, %q), want %v (upstream %q, take %v)",
					got.Kind, got.Upstream, got.TakeLease, got.Reason, tc.want, tc.up, tc.take)
			}
			if got.Kind != Wait && got.Kind != Renew && got.Reason == "" {
				t.Errorf("action %v without a reason", got.Kind)
			}
		})
	}
}

func with2(l Local, f func(*Local)) Local { f(&l); return l }

// TestDecideNeverTwoWriters walks every combination of the boolean inputs
// and checks invariant 4 from the decision's side: an instance that does not
// hold a renewable Lease is never left writable, and is never started or
// promoted into a primary without the Lease being (or becoming) its own.
func TestDecideNeverTwoWriters(t *testing.T) {
	const self = "a"
	holders := []string{"", self, "b"}
	targets := []string{"", self, "b"}
	bools := []bool{false, true}
	for _, holder := range holders {
		for _, target := range targets {
			for _, exists := range bools {
				for _, up := range bools {
					for _, acc := range bools {
						for _, rec := range bools {
							for _, overdue := range bools {
								for _, held := range bools {
									for _, elected := range bools {
										for _, gone := range bools {
											in := Input{
												Self:         self,
												Lease:        Lease{Exists: exists, Holder: holder, Target: target, PrimaryAddress: "x:1", Initialized: true, HasFinalLSN: true, FinalLSN: 5, ReleasedBy: "b"},
												Local:        Local{HasData: true, Up: up, Accepting: acc, InRecovery: rec, ReplayLSN: 5},
												RenewOverdue: overdue,
												DemoteHeld:   held,
												Failover:     Verdict{Expired: elected, Elected: elected},
												PostgresGone: gone,
											}
											a := Decide(in)
											writable := up && acc && !rec
											ownsRenewable := exists && holder == self && !overdue
											if writable && !ownsRenewable && a.Kind != Fence && a.Kind != Demote {
												t.Errorf("%+v: writable without a renewable Lease, got %v", in, a.Kind)
											}
											if a.Kind == Promote && !(exists && (holder == self || (holder == "" && target == self))) {
												t.Errorf("%+v: promote without the Lease being ours to take", in)
											}
											if a.Kind == StartPrimary && !(holder == self || a.TakeLease) {
												t.Errorf("%+v: start as primary without the Lease", in)
											}
											if held && a.Kind == Demote {
												t.Errorf("%+v: demoted while the switchover is held off", in)
											}
											releasedElsewhere := holder == "" && target != self
											if a.Kind == TakeOver && (writable || !elected || holder == self || (holder == "" && !releasedElsewhere) || !exists) {
												t.Errorf("%+v: take-over without an election against another holder, or while writable", in)
											}
											if a.Kind == Abdicate && (holder != self || writable) {
												t.Errorf("%+v: abdicated without holding, or while writable", in)
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		if l.String() != s {
			t.Errorf("round trip %q -> %q", s, l.String())
		}
	}
	if l, _ := ParseLSN("1/0"); l != 1<<32 {
		t.Errorf("1/0 = %d", l)
	}
	for _, bad := range []string{"", "16", "x/1", "1/y", "100000000/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
}

func TestNeedsRewind(t *testing.T) {
	hist, err := ParseHistory("1\t0/3000148\tno recovery target specified\n\n2\t0/5000100\tno recovery target specified\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tli     uint32
		ckpt    LSN
		primTLI uint32
		history []HistoryEntry
		want    bool
	}{
		{"same timeline", 3, 0x9000000, 3, hist, false},
		{"ancestor, checkpoint before the fork", 2, 0x5000028, 3, hist, false},
		{"ancestor, checkpoint at the fork", 2, 0x5000100, 3, hist, true},
		{"ancestor, wrote past the fork", 2, 0x6000000, 3, hist, true},
		{"older ancestor", 1, 0x3000000, 3, hist, false},
		{"unknown timeline (sibling)", 4, 0x3000000, 3, hist, true},
		{"no history at all", 1, 0x3000000, 2, nil, true},
	}
	for _, tc := range tests {
		if got := NeedsRewind(tc.tli, tc.ckpt, tc.primTLI, tc.history); got != tc.want {
			t.Errorf("%s: NeedsRewind = %v, want %v", tc.name, got, tc.want)
		}
	}
	if fp, ok := ForkPoint(2, hist); !ok || fp != 0x5000100 {
		t.Errorf("ForkPoint(2) = %v %v", fp, ok)
	}
	if _, ok := ForkPoint(3, hist); ok {
		t.Error("ForkPoint of the primary's own timeline")
	}
	for _, tc := range []struct {
		state      string
		local, pri uint32
		want       bool
	}{
		{"in production", 2, 3, true},
		{"in production", 3, 3, false},
		{"shutting down", 2, 3, true},
		{"in crash recovery", 2, 3, true},
		{"shut down", 2, 3, false},
		{"shut down in recovery", 2, 3, false},
		{"in archive recovery", 2, 3, false},
	} {
		if got := NeedsCrashRecovery(tc.state, tc.local, tc.pri); got != tc.want {
			t.Errorf("NeedsCrashRecovery(%q, %d, %d) = %v", tc.state, tc.local, tc.pri, got)
		}
	}
	if _, err := ParseHistory("1 nonsense"); err == nil {
		t.Error("malformed history accepted")
	}
}
