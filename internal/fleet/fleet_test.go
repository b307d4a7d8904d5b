package fleet_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	_ "time/tzdata"

	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/fleet"
	"github.com/pgsync/pgsync/internal/window"
)

func key(s string) cluster.Key {
	ns, name, _ := strings.Cut(s, "/")
	return cluster.Key{Namespace: ns, Name: name}
}

func schedule(t *testing.T, text string) window.Schedule {
	t.Helper()
	s, err := window.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// starting is a cluster whose next step would start its rollout.
func starting(k string) fleet.Cluster {
	return fleet.Cluster{Key: key(k), Next: fleet.Disruptive, Restarts: true}
}

// rolling is a cluster in the middle of its rollout.
func rolling(k string) fleet.Cluster {
	return fleet.Cluster{Key: key(k), Next: fleet.Disruptive, Restarts: true, Rolling: true}
}

func with(c fleet.Cluster, edit func(*fleet.Cluster)) fleet.Cluster {
	edit(&c)
	return c
}

// line renders a decision for comparison: KEY STATE: reason.
func line(d fleet.Decision) string { return fmt.Sprintf("%s %s: %s", d.Key, d.State, d.Reason) }

func TestDecide(t *testing.T) {
	// Friday 2026-12-04 12:00 UTC: Rome's Saturday window is closed.
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	saturday := schedule(t, "Sat 02:00-04:00 Europe/Rome")
	fridayNoon := schedule(t, "Fri 11:00-13:00 UTC")
	for _, tc := range []struct {
		name     string
		clusters []fleet.Cluster
		opts     fleet.Options
		want     []string
		rolling  int
	}{
		{
			name:     "free slots go by namespace/name",
			clusters: []fleet.Cluster{starting("b/x"), starting("a/z"), starting("a/y"), starting("c/w"), starting("b/a")},
			opts:     fleet.Options{MaxRolling: 3},
			want: []string{
				"a/y start: starts rolling: 3 clusters rolling (max 3)",
				"a/z start: starts rolling: 3 clusters rolling (max 3)",
				"b/a start: starts rolling: 3 clusters rolling (max 3)",
				"b/x waiting-max-rolling: waiting: 3 clusters rolling (max 3)",
				"c/w waiting-max-rolling: waiting: 3 clusters rolling (max 3)",
			},
			rolling: 3,
		},
		{
			name:     "zero options: one at a time",
			clusters: []fleet.Cluster{starting("a/b"), starting("a/a")},
			want: []string{
				"a/a start: starts rolling: 1 cluster rolling (max 1)",
				"a/b waiting-max-rolling: waiting: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name:     "clusters mid-rollout keep their slots, even above the maximum",
			clusters: []fleet.Cluster{starting("a/a"), rolling("b/b"), rolling("c/c"), rolling("d/d")},
			opts:     fleet.Options{MaxRolling: 2},
			want: []string{
				"a/a waiting-max-rolling: waiting: 3 clusters rolling (max 2)",
				"b/b rolling: rolling: 3 clusters rolling (max 2)",
				"c/c rolling: rolling: 3 clusters rolling (max 2)",
				"d/d rolling: rolling: 3 clusters rolling (max 2)",
			},
			rolling: 3,
		},
		{
			name: "waves first, then names; a wave waits for the lower ones",
			clusters: []fleet.Cluster{
				with(starting("a/late"), func(c *fleet.Cluster) { c.Wave = 2 }),
				with(starting("z/canary"), func(c *fleet.Cluster) { c.Wave = 0 }),
				with(starting("b/mid"), func(c *fleet.Cluster) { c.Wave = 1 }),
			},
			opts: fleet.Options{MaxRolling: 3},
			want: []string{
				"z/canary start: starts rolling: 1 cluster rolling (max 3)",
				"b/mid waiting-wave: waiting for wave 0: z/canary",
				"a/late waiting-wave: waiting for wave 0: z/canary",
			},
			rolling: 1,
		},
		{
			name: "a wave still rolling holds the next one back",
			clusters: []fleet.Cluster{
				rolling("a/a"), rolling("a/b"), rolling("a/c"), rolling("a/d"),
				with(starting("b/next"), func(c *fleet.Cluster) { c.Wave = 1 }),
			},
			opts: fleet.Options{MaxRolling: 5},
			want: []string{
				"a/a rolling: rolling: 4 clusters rolling (max 5)",
				"a/b rolling: rolling: 4 clusters rolling (max 5)",
				"a/c rolling: rolling: 4 clusters rolling (max 5)",
				"a/d rolling: rolling: 4 clusters rolling (max 5)",
				"b/next waiting-wave: waiting for wave 0: a/a, a/b, a/c and 1 more",
			},
			rolling: 4,
		},
		{
			name: "a pending restart behind a reload holds the next wave back too",
			clusters: []fleet.Cluster{
				{Key: key("a/a"), Next: fleet.Ungated, Restarts: true},
				with(starting("b/b"), func(c *fleet.Cluster) { c.Wave = 1 }),
			},
			want: []string{
				"a/a ungated: not gated: neither restarts nor switches over",
				"b/b waiting-wave: waiting for wave 0: a/a",
			},
		},
		{
			name: "suspended and halted clusters do not hold a wave back",
			clusters: []fleet.Cluster{
				with(starting("a/a"), func(c *fleet.Cluster) { c.Suspended = true }),
				with(rolling("a/b"), func(c *fleet.Cluster) { c.Halted, c.HaltCommit = true, "old" }),
				with(starting("b/b"), func(c *fleet.Cluster) { c.Wave = 1 }),
			},
			opts: fleet.Options{Commit: "new"},
			want: []string{
				"a/a suspended: suspended",
				"a/b halted: halted",
				"b/b start: starts rolling: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name: "a closed window waits and takes no slot; the brief's reason",
			clusters: []fleet.Cluster{
				with(starting("a/a"), func(c *fleet.Cluster) { c.Window = saturday }),
				with(starting("a/b"), func(c *fleet.Cluster) { c.Window = fridayNoon }),
			},
			want: []string{
				"a/a waiting-window: waiting for window Sat 02:00-04:00 Europe/Rome, opens 2026-12-05T02:00+01:00",
				"a/b start: starts rolling: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name: "mid-rollout, a closed window holds the next step, and the slot stays taken",
			clusters: []fleet.Cluster{
				with(rolling("a/a"), func(c *fleet.Cluster) { c.Window = saturday }),
				starting("a/b"),
			},
			want: []string{
				"a/a waiting-window: waiting for window Sat 02:00-04:00 Europe/Rome, opens 2026-12-05T02:00+01:00 (mid-rollout: keeps its slot)",
				"a/b waiting-max-rolling: waiting: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name: "creates and reloads are never gated: closed window, no slot, higher wave",
			clusters: []fleet.Cluster{
				rolling("a/a"),
				{Key: key("a/b"), Next: fleet.Ungated, Window: saturday, Wave: 3},
				with(rolling("a/c"), func(c *fleet.Cluster) { c.Next, c.Window = fleet.Ungated, saturday }),
				{Key: key("a/d"), Next: fleet.NoStep},
				with(rolling("a/e"), func(c *fleet.Cluster) { c.Next = fleet.NoStep }),
			},
			opts: fleet.Options{MaxRolling: 1},
			want: []string{
				"a/a rolling: rolling: 3 clusters rolling (max 1)",
				"a/c rolling: rolling: 3 clusters rolling (max 1)",
				"a/d idle: no step this cycle",
				"a/e rolling: rolling: 3 clusters rolling (max 1)",
				"a/b ungated: not gated: neither restarts nor switches over",
			},
			rolling: 3,
		},
		{
			name: "suspended: not even a reload; mid-rollout it keeps its slot",
			clusters: []fleet.Cluster{
				{Key: key("a/a"), Next: fleet.Ungated, Suspended: true},
				with(rolling("a/b"), func(c *fleet.Cluster) { c.Suspended = true }),
				starting("a/c"),
			},
			want: []string{
				"a/a suspended: suspended",
				"a/b suspended: suspended (mid-rollout: keeps its slot)",
				"a/c waiting-max-rolling: waiting: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name: "a halt on this commit stops new rollouts; rolling ones and reloads go on",
			clusters: []fleet.Cluster{
				with(rolling("a/halted"), func(c *fleet.Cluster) { c.Halted, c.HaltCommit = true, "c2" }),
				rolling("b/rolling"),
				starting("c/new"),
				with(starting("d/new-closed"), func(c *fleet.Cluster) { c.Window = saturday }),
				{Key: key("e/reload"), Next: fleet.Ungated},
			},
			opts: fleet.Options{MaxRolling: 3, Commit: "c2"},
			want: []string{
				"a/halted halted: halted",
				"b/rolling rolling: rolling: 1 cluster rolling (max 3)",
				"c/new waiting-halt: waiting: new rollouts stopped, a/halted halted (--on-halt stop)",
				"d/new-closed waiting-halt: waiting: new rollouts stopped, a/halted halted (--on-halt stop)",
				"e/reload ungated: not gated: neither restarts nor switches over",
			},
			rolling: 1,
		},
		{
			name: "--on-halt continue: a halted cluster holds no slot",
			clusters: []fleet.Cluster{
				with(rolling("a/halted"), func(c *fleet.Cluster) { c.Halted, c.HaltCommit = true, "c2" }),
				starting("c/new"),
			},
			opts: fleet.Options{MaxRolling: 1, OnHalt: fleet.OnHaltContinue, Commit: "c2"},
			want: []string{
				"a/halted halted: halted",
				"c/new start: starts rolling: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name: "a halt left from an earlier commit does not stop this one",
			clusters: []fleet.Cluster{
				with(rolling("a/halted"), func(c *fleet.Cluster) { c.Halted, c.HaltCommit = true, "c1" }),
				starting("c/new"),
			},
			opts: fleet.Options{Commit: "c2"},
			want: []string{
				"a/halted halted: halted",
				"c/new start: starts rolling: 1 cluster rolling (max 1)",
			},
			rolling: 1,
		},
		{
			name: "a new rollout shows the lower wave it waits for before its own window",
			clusters: []fleet.Cluster{
				with(starting("a/a"), func(c *fleet.Cluster) { c.Window = saturday }),
				with(starting("a/b"), func(c *fleet.Cluster) { c.Window, c.Wave = saturday, 1 }),
			},
			want: []string{
				"a/a waiting-window: waiting for window Sat 02:00-04:00 Europe/Rome, opens 2026-12-05T02:00+01:00",
				"a/b waiting-wave: waiting for wave 0: a/a",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := fleet.Decide(tc.clusters, now, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range res.Decisions {
				got = append(got, line(d))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			if res.Rolling != tc.rolling {
				t.Errorf("Rolling = %d, want %d", res.Rolling, tc.rolling)
			}
		})
	}
}

func TestDecisionDetails(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	res, err := fleet.Decide([]fleet.Cluster{
		with(starting("a/a"), func(c *fleet.Cluster) { c.Window = schedule(t, "Sat 02:00-04:00 Europe/Rome") }),
		with(rolling("a/h"), func(c *fleet.Cluster) { c.Halted, c.HaltCommit = true, "c9" }),
	}, now, fleet.Options{Commit: "c9"})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Decisions[0]
	if d.State != fleet.StateStopped || d.Proceed() {
		t.Errorf("a/a = %+v, want stopped by the halt", d)
	}
	if diff := cmp.Diff([]cluster.Key{key("a/h")}, res.StoppedBy); diff != "" {
		t.Errorf("StoppedBy (-want +got):\n%s", diff)
	}
	res, err = fleet.Decide([]fleet.Cluster{with(starting("a/a"), func(c *fleet.Cluster) { c.Window = schedule(t, "Sat 02:00-04:00 Europe/Rome") })}, now, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Decisions[0]; !d.Opens.Equal(time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)) || d.Proceed() {
		t.Errorf("decision = %+v, want waiting, opening 2026-12-05T01:00Z", d)
	}
	for state, want := range map[fleet.State]bool{
		fleet.StateIdle: true, fleet.StateUngated: true, fleet.StateRolling: true, fleet.StateStart: true,
		fleet.StateSuspended: false, fleet.StateHalted: false, fleet.StateWindow: false,
		fleet.StateMaxRolling: false, fleet.StateWave: false, fleet.StateStopped: false,
	} {
		if got := (fleet.Decision{State: state}).Proceed(); got != want {
			t.Errorf("%s: Proceed = %v, want %v", state, got, want)
		}
	}
}

func TestDecideRefuses(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		clusters []fleet.Cluster
		opts     fleet.Options
		want     string
	}{
		{nil, fleet.Options{MaxRolling: -1}, "max rolling must be at least 1 (got -1)"},
		{nil, fleet.Options{OnHalt: "pause"}, `on halt "pause": allowed: stop, continue`},
		{[]fleet.Cluster{starting("a/a"), rolling("a/a")}, fleet.Options{}, "cluster a/a is listed twice"},
		{[]fleet.Cluster{{Key: key("a/a"), Next: 7}}, fleet.Options{}, "cluster a/a: unknown next step 7"},
	} {
		if _, err := fleet.Decide(tc.clusters, now, tc.opts); err == nil || err.Error() != tc.want {
			t.Errorf("Decide(%v, %+v) error = %v, want %s", tc.clusters, tc.opts, err, tc.want)
		}
	}
}

// TestInputOrderDoesNotMatter: the order is the documented one, whatever
// order the daemon lists the clusters in.
func TestInputOrderDoesNotMatter(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	var clusters []fleet.Cluster
	for i := range 30 {
		c := starting(fmt.Sprintf("ns%d/c%02d", i%3, i))
		c.Wave = rng.IntN(3)
		c.Rolling = rng.IntN(4) == 0
		clusters = append(clusters, c)
	}
	want, err := fleet.Decide(clusters, now, fleet.Options{MaxRolling: 4})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		rng.Shuffle(len(clusters), func(i, j int) { clusters[i], clusters[j] = clusters[j], clusters[i] })
		got, err := fleet.Decide(clusters, now, fleet.Options{MaxRolling: 4})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("a shuffled input changed the result (-want +got):\n%s", diff)
		}
	}
}
