package role

import (
	"strings"
	"testing"
	"time"
)

func TestElect(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const d = 15 * time.Second
	self := Candidate{Name: "db-1", Ordinal: 1, Reachable: true, Standby: true, Received: 100, StreamedAt: t0.Add(2 * time.Second)}
	peer := func(name string, ord int, recv LSN) Candidate {
		return Candidate{Name: name, Ordinal: ord, Reachable: true, Standby: true, Received: recv, StreamedAt: t0.Add(2 * time.Second)}
	}
	base := Election{Now: t0.Add(d + time.Second), Holder: "db-0", LeaseSeen: t0, LeaseDuration: d, RecentStreaming: d, Self: self}
	with := func(f func(*Election)) Election { e := base; f(&e); return e }

	tests := []struct {
		name             string
		e                Election
		expired, elected bool
		reason           string
	}{
		{"Lease still valid: never", with(func(e *Election) { e.Now = t0.Add(d - time.Millisecond) }), false, false, "valid until"},
		{"exactly at the expiry: may take over", with(func(e *Election) { e.Now = t0.Add(d) }), true, true, "most advanced"},
		{"failover delay not yet over", with(func(e *Election) { e.FailoverDelay = 10 * time.Second }), false, false, "valid until"},
		{"failover delay over", with(func(e *Election) { e.FailoverDelay = 10 * time.Second; e.Now = t0.Add(d + 10*time.Second) }), true, true, ""},
		{"never saw the Lease", with(func(e *Election) { e.LeaseSeen = time.Time{} }), false, false, ""},
		{"no holder", with(func(e *Election) { e.Holder = "" }), false, false, "no other holder"},
		{"self is the holder", with(func(e *Election) { e.Holder = "db-1" }), false, false, "no other holder"},
		{"alone: elected", base, true, true, "most advanced"},
		{"self not streaming recently", with(func(e *Election) { e.Self.StreamedAt = t0.Add(-d - time.Second) }), true, false, "not streaming"},
		{"self never streamed", with(func(e *Election) { e.Self.StreamedAt = time.Time{} }), true, false, "not streaming"},
		{"self not a running standby", with(func(e *Election) { e.Self.Standby = false }), true, false, "not a running standby"},
		{"a peer received more", with(func(e *Election) { e.Peers = []Candidate{peer("db-2", 2, 101)} }), true, false, "db-2 is more advanced"},
		{"a peer received less", with(func(e *Election) { e.Peers = []Candidate{peer("db-2", 2, 99)} }), true, true, ""},
		{"tie, peer has the lower ordinal", with(func(e *Election) { e.Peers = []Candidate{peer("db-0x", 0, 100)} }), true, false, "lower ordinal"},
		{"tie, self has the lower ordinal", with(func(e *Election) { e.Peers = []Candidate{peer("db-2", 2, 100)} }), true, true, ""},
		{"the more advanced peer is unreachable", with(func(e *Election) {
			p := peer("db-2", 2, 200)
			p.Reachable = false
			e.Peers = []Candidate{p}
		}), true, true, ""},
		{"the more advanced peer is not a standby", with(func(e *Election) {
			p := peer("db-2", 2, 200)
			p.Standby = false
			e.Peers = []Candidate{p}
		}), true, true, ""},
		{"the more advanced peer stopped streaming long ago", with(func(e *Election) {
			p := peer("db-2", 2, 200)
			p.StreamedAt = t0.Add(-time.Hour)
			e.Peers = []Candidate{p}
		}), true, true, ""},
		{"the old holder's own status is ignored", with(func(e *Election) { e.Peers = []Candidate{peer("db-0", 0, 500)} }), true, true, ""},
		{"self listed among the peers", with(func(e *Election) { e.Peers = []Candidate{self} }), true, true, ""},
		{"released, target silent: not before the duration", with(func(e *Election) {
			e.Released, e.FinalLSN, e.Now = true, 90, t0.Add(d-time.Second)
		}), false, false, "its target may take it until"},
		{"released, target silent: the standby that has the final LSN", with(func(e *Election) { e.Released, e.FinalLSN = true, 90 }), true, true, ""},
		{"released: a standby short of the final LSN never", with(func(e *Election) { e.Released, e.FinalLSN = true, 101 }), true, false, "short of the released primary's final LSN"},
		{"released: a peer short of the final LSN is no rival", with(func(e *Election) {
			e.Released, e.FinalLSN = true, 100
			e.Self.Received = 100
			e.Peers = []Candidate{peer("db-0x", 0, 99)}
		}), true, true, ""},
		{"a more advanced peer that does not take over is waited for a Lease duration", with(func(e *Election) {
			e.Now = t0.Add(2*d - time.Millisecond)
			e.Peers = []Candidate{peer("db-2", 2, 200)}
		}), true, false, "db-2 is more advanced"},
		{"then any candidate takes over", with(func(e *Election) {
			e.Now = t0.Add(2 * d)
			e.Peers = []Candidate{peer("db-2", 2, 200)}
		}), true, true, "no more advanced standby took over"},
		{"an ineligible one still not", with(func(e *Election) {
			e.Now = t0.Add(3 * d)
			e.Self.Standby = false
		}), true, false, "not a running standby"},
		{"two peers, one ahead", with(func(e *Election) { e.Peers = []Candidate{peer("db-2", 2, 50), peer("db-3", 3, 150)} }), true, false, "db-3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Elect(tc.e)
			if v.Expired != tc.expired || v.Elected != tc.elected || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("Elect = %+v, want expired %v elected %v reason ~%q", v, tc.expired, tc.elected, tc.reason)
			}
			if v.Elected && tc.e.Now.Before(FailoverAt(tc.e.LeaseSeen, tc.e.LeaseDuration, tc.e.FailoverDelay)) {
				t.Fatal("elected while the Lease is valid")
			}
		})
	}
}

// TestElectExactlyOne: every standby of a cluster, seeing the same peers,
// elects itself in exactly one case (the highest LSN, then the lowest
// ordinal), whatever the order of the peers.
func TestElectExactlyOne(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	lsns := []LSN{10, 20, 20, 5}
	var all []Candidate
	for i, l := range lsns {
		all = append(all, Candidate{Name: "db-" + string(rune('1'+i)), Ordinal: i + 1, Reachable: true, Standby: true, Received: l, StreamedAt: t0})
	}
	winners := 0
	for i, self := range all {
		peers := append(append([]Candidate{}, all[i+1:]...), all[:i]...)
		// Within a Lease duration of the expiry (after it, anyone
		// eligible may try: the Lease write picks one).
		v := Elect(Election{Now: t0.Add(16 * time.Second), Holder: "db-0", LeaseSeen: t0, LeaseDuration: 15 * time.Second, RecentStreaming: 15 * time.Second, Self: self, Peers: peers})
		if v.Elected {
			winners++
			if self.Name != "db-2" {
				t.Errorf("%s elected, want db-2 (LSN 20, lower ordinal than db-3)", self.Name)
			}
		}
	}
	if winners != 1 {
		t.Errorf("%d winners", winners)
	}
}

func TestDecideFailover(t *testing.T) {
	const self = "db-1"
	held := Lease{Exists: true, Holder: "db-0", Target: "db-0", PrimaryAddress: "db-0:5432", Initialized: true}
	standby := Local{HasData: true, Up: true, Accepting: true, InRecovery: true, Upstream: "db-0:5432", ReplayLSN: 5}
	elected := Verdict{Expired: true, Elected: true, Reason: "elected"}
	lost := Verdict{Expired: true, Reason: "db-2 is more advanced"}
	tests := []struct {
		name  string
		lease Lease
		local Local
		v     Verdict
		want  Kind
	}{
		{"elected standby takes over", held, standby, elected, TakeOver},
		{"elected, holder never published an address: still takes over", with3(held, func(l *Lease) { l.PrimaryAddress = "" }), standby, elected, TakeOver},
		{"not elected: waits and says why", held, standby, lost, Wait},
		{"valid Lease: a standby never takes over", held, standby, Verdict{}, Wait},
		{"elected but stopped: no take-over", held, Local{HasData: true}, elected, Rejoin},
		{"elected but not accepting: no take-over", held, with2(standby, func(l *Local) { l.Accepting = false }), elected, Wait},
		{"elected but writable: fence first", held, with2(standby, func(l *Local) { l.InRecovery = false }), elected, Fence},
		{"released, target silent, elected: takes over", Lease{Exists: true, Target: "db-2", ReleasedBy: "db-0", HasFinalLSN: true, FinalLSN: 5, Initialized: true}, standby, elected, TakeOver},
		{"released, not elected: waits and says why", Lease{Exists: true, Target: "db-2", ReleasedBy: "db-0", HasFinalLSN: true, FinalLSN: 5, Initialized: true}, standby, lost, Wait},
		{"after the take-over the holder promotes", with3(held, func(l *Lease) { l.Holder, l.Target = self, self }), standby, Verdict{}, Promote},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Decide(Input{Self: self, Lease: tc.lease, Local: tc.local, Failover: tc.v})
			if a.Kind != tc.want {
				t.Fatalf("Decide = %v (%q), want %v", a.Kind, a.Reason, tc.want)
			}
			if a.Kind == Wait && tc.v.Expired && a.Reason != tc.v.Reason {
				t.Errorf("reason %q, want the election's %q", a.Reason, tc.v.Reason)
			}
		})
	}
}

func with3(l Lease, f func(*Lease)) Lease { f(&l); return l }

func TestDecideAbdication(t *testing.T) {
	const self = "db-0"
	held := Lease{Exists: true, Holder: self, Target: self, PrimaryAddress: "db-0:5432", Initialized: true}
	crashing := Local{HasData: true, Up: true}
	abdicated := Lease{Exists: true, Target: self, ReleasedBy: self, Abdicated: true, Initialized: true}
	standby := Local{HasData: true, Up: true, Accepting: true, InRecovery: true, ReplayLSN: 5}
	tests := []struct {
		name string
		in   Input
		want Kind
		take bool
	}{
		{"postgres keeps failing: give the Lease up", Input{Lease: held, Local: crashing, PostgresGone: true}, Abdicate, false},
		{"postgres keeps failing during a switchover: give it up too", Input{Lease: with3(held, func(l *Lease) { l.Target = "db-1" }), Local: crashing, PostgresGone: true}, Abdicate, false},
		{"overdue and running: fence comes first", Input{Lease: held, Local: Local{HasData: true, Up: true, Accepting: true}, PostgresGone: true, RenewOverdue: true}, Fence, false},
		{"a slow start is not a failure", Input{Lease: held, Local: crashing}, Wait, false},
		{"gave it up: stays down meanwhile", Input{Lease: abdicated, Local: Local{HasData: true}, AbdicateHeld: true}, Wait, false},
		{"gave it up, nobody took it: take it back", Input{Lease: abdicated, Local: Local{HasData: true}}, StartPrimary, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Self = self
			a := Decide(in)
			if a.Kind != tc.want || a.TakeLease != tc.take {
				t.Fatalf("Decide = %v take %v (%q), want %v take %v", a.Kind, a.TakeLease, a.Reason, tc.want, tc.take)
			}
		})
	}
	// A standby of a cluster whose primary abdicated: elected, it takes
	// the released Lease over.
	a := Decide(Input{Self: "db-1", Lease: abdicated, Local: standby, Failover: Verdict{Expired: true, Elected: true, Reason: "x"}})
	if a.Kind != TakeOver {
		t.Errorf("standby of an abdicated primary: %v, want take-over", a.Kind)
	}
	// Elect: an abdication needs no Lease duration, only the failover
	// delay, and no final LSN.
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v := Elect(Election{Now: t0.Add(time.Millisecond), Holder: self, LeaseSeen: t0, Released: true, RecentStreaming: time.Minute,
		Self: Candidate{Name: "db-1", Ordinal: 1, Reachable: true, Standby: true, Received: 5, StreamedAt: t0}})
	if !v.Elected {
		t.Errorf("abdicated Lease not taken over at once: %+v", v)
	}
}
