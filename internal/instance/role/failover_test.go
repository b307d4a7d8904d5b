package role

import (
	"strings"
	"testing"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
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

// TestElectSync: with synchronous replication only a listed standby is
// elected, only among the answers of enough listed standbys that one of
// them holds every acknowledged commit, and only the most advanced of
// them; otherwise nobody is (writes stay down, the reason says why).
func TestElectSync(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const d = 15 * time.Second
	sb := func(name string, ord int, recv LSN) Candidate {
		return Candidate{Name: name, Ordinal: ord, Reachable: true, Standby: true, Received: recv, StreamedAt: t0.Add(2 * time.Second)}
	}
	set := func(method string, n int, settled bool, names ...string) pc.SyncSet {
		return pc.SyncSet{Method: method, Number: n, Standbys: names, Settled: settled}
	}
	any1 := []pc.SyncSet{set("any", 1, true, "db-1", "db-2")}
	base := Election{Now: t0.Add(d + time.Second), Holder: "db-0", LeaseSeen: t0, LeaseDuration: d, RecentStreaming: d,
		Synchronous: true, HasSyncSets: true, SyncSets: any1, Self: sb("db-1", 1, 100)}
	with := func(f func(*Election)) Election { e := base; f(&e); return e }

	tests := []struct {
		name             string
		e                Election
		elected, refused bool
		reason           string
	}{
		{"ANY 1 of 2: both answer, self most advanced", with(func(e *Election) { e.Peers = []Candidate{sb("db-2", 2, 90)} }), true, false, "most advanced synchronous standby"},
		{"ANY 1 of 2: both answer, the peer is ahead", with(func(e *Election) { e.Peers = []Candidate{sb("db-2", 2, 110)} }), false, false, "db-2 is more advanced"},
		{"ANY 1 of 2: the other is silent: the commit may be only there", base, false, true, "1 of the 2 standbys of ANY 1 (db-1,db-2) answered; 2 must"},
		{"ANY 1 of 2: the other answers but is not running", with(func(e *Election) {
			p := sb("db-2", 2, 500)
			p.Standby = false
			e.Peers = []Candidate{p}
		}), false, true, "1 of the 2"},
		{"ANY 2 of 3: two answer, enough", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 2, true, "db-1", "db-2", "db-3")}
			e.Peers = []Candidate{sb("db-2", 2, 100)}
		}), true, false, ""},
		{"ANY 1 of 3: two answer, not enough", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-1", "db-2", "db-3")}
			e.Peers = []Candidate{sb("db-2", 2, 100)}
		}), false, true, "2 of the 3"},
		{"FIRST 1 of 2 counts as ANY: any listed standby may have stood in", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("first", 1, true, "db-1", "db-2")}
		}), false, true, "FIRST 1 (db-1,db-2)"},
		{"an external standby name counts, never answers", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 2, true, "angus", "db-1", "db-2")}
			e.Peers = []Candidate{sb("db-2", 2, 50)}
		}), true, false, ""},
		{"an external standby name: too few", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "angus", "db-1", "db-2")}
			e.Peers = []Candidate{sb("db-2", 2, 50)}
		}), false, true, "2 of the 3"},
		{"self not listed: never, however advanced", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-2")}
			e.Self = sb("db-3", 3, 900)
			e.Peers = []Candidate{sb("db-2", 2, 100)}
		}), false, true, "not a synchronous standby"},
		{"an unlisted peer ahead is no rival", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-1")}
			e.Peers = []Candidate{sb("db-3", 3, 900)}
		}), true, false, ""},
		{"nothing published", with(func(e *Election) { e.HasSyncSets, e.SyncSets = false, nil }), false, true, "published no synchronous standby set"},
		{"unreadable", with(func(e *Election) { e.SyncSetsInvalid = true }), false, true, "cannot be read"},
		{"first set unsettled (a new primary's)", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, false, "db-1", "db-2")}
			e.Peers = []Candidate{sb("db-2", 2, 10)}
		}), false, true, "not yet confirmed"},
		{"a change under way: both sets must be met", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-2"), set("any", 1, false, "db-1")}
		}), false, true, "0 of the 1 standbys of ANY 1 (db-2)"},
		{"a change under way: both met, the most advanced of all wins", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-2"), set("any", 1, false, "db-1")}
			e.Peers = []Candidate{sb("db-2", 2, 120)}
		}), false, false, "db-2 is more advanced"},
		{"gone asynchronous after a set: the set before still counts", with(func(e *Election) {
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-1", "db-2"), {Number: 0}}
		}), false, true, "1 of the 2"},
		{"the most advanced answers but stopped streaming long ago", with(func(e *Election) {
			p := sb("db-2", 2, 200)
			p.StreamedAt = t0.Add(-time.Hour)
			e.Peers = []Candidate{p}
		}), false, true, "db-2 (received 0/C8, here 0/64) cannot be elected: not streaming"},
		{"equal to an ineligible best: elected", with(func(e *Election) {
			p := sb("db-0x", 0, 100)
			p.StreamedAt = t0.Add(-time.Hour)
			e.Peers = []Candidate{p, sb("db-2", 2, 50)}
			e.SyncSets = []pc.SyncSet{set("any", 1, true, "db-0x", "db-1", "db-2")}
		}), true, false, ""},
		{"a more advanced one not taking over: still waited for after the patience", with(func(e *Election) {
			e.Now = t0.Add(3 * d)
			e.Peers = []Candidate{sb("db-2", 2, 110)}
		}), false, false, "db-2 is more advanced"},
		{"an equal one with the lower ordinal not taking over: after the patience, self", with(func(e *Election) {
			e.Now = t0.Add(3 * d)
			e.Self = sb("db-2", 2, 100)
			e.Peers = []Candidate{sb("db-1", 1, 100)}
		}), true, false, ""},
		{"the old holder's answer does not count", with(func(e *Election) { e.Peers = []Candidate{sb("db-0", 0, 100)} }), false, true, "1 of the 2"},
		{"sets published, this instance's settings not yet synchronous: still restricted", with(func(e *Election) { e.Synchronous = false }), false, true, "1 of the 2"},
		{"settings synchronous, Lease still valid", with(func(e *Election) { e.Now = t0.Add(d - time.Second) }), false, false, "valid until"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Elect(tc.e)
			if v.Elected != tc.elected || v.SyncRefused != tc.refused || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("Elect = %+v, want elected %v refused %v reason ~%q", v, tc.elected, tc.refused, tc.reason)
			}
		})
	}
}

// TestElectSyncNeverLoses: for every placement of an acknowledged commit
// on Number of the listed standbys, and every subset of them answering,
// whoever Elect elects holds the commit.
func TestElectSyncNeverLoses(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	names := []string{"db-1", "db-2", "db-3", "db-4"}
	for _, method := range []string{"any", "first"} {
		for n := 1; n <= 3; n++ {
			sets := []pc.SyncSet{{Method: method, Number: n, Standbys: names, Settled: true}}
			for holders := 0; holders < 1<<len(names); holders++ {
				if bitsSet(holders) < n {
					continue
				}
				for answer := 1; answer < 1<<len(names); answer++ {
					var all []Candidate
					for i, nm := range names {
						recv := LSN(100)
						if holders&(1<<i) != 0 {
							recv = 200 // has the acknowledged commit
						}
						all = append(all, Candidate{Name: nm, Ordinal: i + 1, Reachable: answer&(1<<i) != 0, Standby: true, Received: recv, StreamedAt: t0})
					}
					for i, self := range all {
						if !self.Reachable {
							continue
						}
						v := Elect(Election{Now: t0.Add(100 * time.Second), Holder: "db-0", LeaseSeen: t0, LeaseDuration: 15 * time.Second,
							RecentStreaming: 15 * time.Second, Synchronous: true, HasSyncSets: true, SyncSets: sets, Self: self, Peers: all})
						if v.Elected && holders&(1<<i) == 0 {
							t.Fatalf("%s %d: commit on %04b, answering %04b: %s elected without it (%s)", method, n, holders, answer, self.Name, v.Reason)
						}
					}
				}
			}
		}
	}
}

func bitsSet(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
