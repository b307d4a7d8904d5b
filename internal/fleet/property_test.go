package fleet_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/fleet"
	"github.com/pgsync/pgsync/internal/window"
)

// simCluster is one cluster of a simulated fleet: a rollout of a few
// restarts or switchovers, maybe behind a reload, maybe suspended for a
// while, maybe halting.
type simCluster struct {
	key         cluster.Key
	wave        int
	window      window.Schedule
	steps, done int
	reload      bool
	settle      bool // the plan has no step this cycle (an instance is starting)
	// suspended from one cycle until another
	suspendFrom, suspendUntil int
	halted                    bool
}

func (c *simCluster) finished() bool { return !c.reload && c.done == c.steps }
func (c *simCluster) rolling() bool  { return c.done > 0 && c.done < c.steps }

// TestFleetProperties runs Decide over random fleets, cycle after cycle,
// carrying out what it allows the way the daemon would, and holds it to:
//
//   - never more than --max-rolling clusters rolling at once;
//   - a restart or switchover only inside the cluster's window, never for
//     a suspended or halted cluster; a reload or create whenever the
//     cluster is neither;
//   - with --on-halt stop, no rollout starts after a halt on the commit;
//   - no rollout starts while a lower wave has one pending;
//   - every cluster eventually gets its turn (windows do open), except
//     those halted or, under --on-halt stop, not started before a halt.
func TestFleetProperties(t *testing.T) {
	windows := []string{
		"",
		"daily 01:00-03:00 Europe/Rome",
		"Sat,Sun 10:00-16:00 America/New_York",
		"Mon-Fri 22:00-02:00 UTC",
		"Sun 02:00-04:00 Europe/Rome; Wed 02:00-04:00 America/New_York",
	}
	schedules := make([]window.Schedule, len(windows))
	for i, text := range windows {
		if text != "" {
			schedules[i] = schedule(t, text)
		}
	}
	const (
		fleets = 100
		cycle  = 30 * time.Minute
		// Enough for every cluster to wait a week for its window, one after
		// the other.
		maxCycles = 16 * 7 * 48
	)
	seen := map[fleet.State]int{}
	suspendedMid := 0 // suspended in the middle of a rollout
	rng := rand.New(rand.NewPCG(7, 11))
	year := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for f := range fleets {
		maxRolling := 1 + rng.IntN(4)
		onHalt := []fleet.OnHalt{fleet.OnHaltStop, fleet.OnHaltContinue}[rng.IntN(2)]
		halts := f%3 == 0
		var sims []*simCluster
		for i := range 1 + rng.IntN(16) {
			c := &simCluster{
				key:    cluster.Key{Namespace: fmt.Sprintf("ns%d", rng.IntN(3)), Name: fmt.Sprintf("db%02d", i)},
				wave:   max(0, rng.IntN(5)-2), // mostly 0: clusters compete for slots
				window: schedules[rng.IntN(len(schedules))],
				steps:  rng.IntN(4), // 0: a reload only
				reload: rng.IntN(3) == 0,
				settle: rng.IntN(4) == 0,
			}
			if c.steps == 0 {
				c.reload = true
			}
			if rng.IntN(4) == 0 {
				c.suspendFrom = rng.IntN(100)
				c.suspendUntil = c.suspendFrom + rng.IntN(300)
			}
			sims = append(sims, c)
		}
		start := year.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		opts := fleet.Options{MaxRolling: maxRolling, OnHalt: onHalt, Commit: "head"}
		name := fmt.Sprintf("fleet %d (%d clusters, max %d, on-halt %s, halts %v, from %s)", f, len(sims), maxRolling, onHalt, halts, start.Format(time.RFC3339))

		stopped, stoppedAt := false, 0
		n := 0
		for ; n < maxCycles; n++ {
			now := start.Add(time.Duration(n) * cycle)
			var in []fleet.Cluster
			byKey := map[cluster.Key]*simCluster{}
			for _, c := range sims {
				if c.finished() {
					continue
				}
				next := fleet.Disruptive
				switch {
				case c.reload:
					next = fleet.Ungated
				case c.halted || c.settle:
					next = fleet.NoStep
				}
				in = append(in, fleet.Cluster{
					Key: c.key, Wave: c.wave, Next: next, Restarts: c.done < c.steps, Rolling: c.rolling(),
					Suspended: c.suspendFrom <= n && n < c.suspendUntil, Halted: c.halted, HaltCommit: "head", Window: c.window,
				})
				byKey[c.key] = c
			}
			res, err := fleet.Decide(in, now, opts)
			if err != nil {
				t.Fatalf("%s, cycle %d: %v", name, n, err)
			}
			if res.Rolling > maxRolling {
				t.Fatalf("%s, cycle %d: %d clusters rolling, max %d", name, n, res.Rolling, maxRolling)
			}
			for i, d := range res.Decisions {
				seen[d.State]++
				if d.State == fleet.StateSuspended && byKey[d.Key].rolling() {
					suspendedMid++
				}
				c := byKey[d.Key]
				var from fleet.Cluster
				for _, x := range in {
					if x.Key == d.Key {
						from = x
					}
				}
				switch {
				case d.Proceed() && (from.Suspended || from.Halted):
					t.Fatalf("%s, cycle %d: %s proceeds while suspended or halted: %s", name, n, d.Key, d.Reason)
				case d.Proceed() && from.Next == fleet.Disruptive && !c.window.IsZero() && !c.window.Open(now):
					t.Fatalf("%s, cycle %d: %s restarts outside its window %s at %s", name, n, d.Key, c.window, now)
				case !d.Proceed() && from.Next == fleet.Ungated && !from.Suspended && !from.Halted:
					t.Fatalf("%s, cycle %d: a reload of %s is held back: %s", name, n, d.Key, d.Reason)
				case d.State == fleet.StateStart && stopped:
					t.Fatalf("%s, cycle %d: %s starts after a halt stopped new rollouts", name, n, d.Key)
				case i > 0 && d.Wave < res.Decisions[i-1].Wave:
					t.Fatalf("%s, cycle %d: decisions out of wave order", name, n)
				}
				if d.State == fleet.StateStart {
					for _, x := range in {
						if x.Wave < d.Wave && !x.Suspended && !x.Halted && (x.Rolling || x.Restarts) {
							t.Fatalf("%s, cycle %d: %s (wave %d) starts while %s of wave %d is pending", name, n, d.Key, d.Wave, x.Key, x.Wave)
						}
					}
				}
				if !d.Proceed() {
					continue
				}
				if from.Next == fleet.NoStep {
					c.settle = false
					continue
				}
				if c.reload {
					c.reload = false
					continue
				}
				if halts && rng.IntN(8) == 0 {
					c.halted = true // the step did not complete
					continue
				}
				c.done++
				c.settle = rng.IntN(3) == 0
			}
			inFlight, left := 0, 0
			for _, c := range sims {
				if c.rolling() && !c.halted {
					inFlight++
				}
				if c.halted && onHalt == fleet.OnHaltStop && !stopped {
					stopped, stoppedAt = true, n
				}
				if !c.finished() && !c.halted {
					left++
				}
			}
			if inFlight > maxRolling {
				t.Fatalf("%s, after cycle %d: %d clusters rolling, max %d", name, n, inFlight, maxRolling)
			}
			// Once stopped, only what was rolling may go on; a week more
			// shows that nothing else starts.
			if left == 0 || stopped && inFlight == 0 && n > stoppedAt+7*48 {
				break
			}
		}
		for _, c := range sims {
			switch {
			case c.finished() || c.halted:
			case stopped && c.done == 0:
				// Never started before the halt stopped new rollouts.
			default:
				t.Errorf("%s: %s (wave %d, window %q, %d of %d steps, reload %v) never got its turn in %d cycles",
					name, c.key, c.wave, c.window, c.done, c.steps, c.reload, n)
			}
		}
	}
	// The generator must reach every state, or some rule goes untested.
	for _, st := range []fleet.State{fleet.StateIdle, fleet.StateUngated, fleet.StateRolling, fleet.StateStart,
		fleet.StateSuspended, fleet.StateHalted, fleet.StateWindow, fleet.StateMaxRolling, fleet.StateWave, fleet.StateStopped} {
		if seen[st] == 0 {
			t.Errorf("no decision of state %s in any fleet", st)
		}
	}
	if suspendedMid == 0 {
		t.Error("no cluster was suspended in the middle of its rollout")
	}
	t.Logf("decisions by state: %v; suspended mid-rollout: %d", seen, suspendedMid)
}
