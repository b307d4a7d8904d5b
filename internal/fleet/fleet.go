// Package fleet owns the fleet's rollout order in `pgsync run`: which
// clusters may start, or go on with, a step that restarts an instance or
// switches the primary over in this cycle, and why each other one waits.
// It is pure: the caller observes, plans and reads the clock; Decide only
// decides, the same way for the same input.
//
// The rules:
//
//   - Suspended (pgsync.io/suspend): no step at all, not even a create or
//     a reload. A suspended cluster in the middle of a rollout keeps its
//     rolling slot: it is still half rolled.
//   - Halted: no step (only a new spec lifts a halt). A halted cluster
//     holds no slot, so that --on-halt continue means what it says. With
//     --on-halt stop (the default) a halt reached on the commit being
//     rolled out stops every new rollout of that commit; clusters already
//     rolling go on, creates and reloads too.
//   - A step that neither restarts nor switches over (create, reload, a
//     volume grown while in use…) is never held back by waves, windows or
//     --max-rolling. A step that restarts for another reason (a resize
//     with resizeInUseVolumes false) or moves the primary (a scale-down)
//     is Disruptive: the caller classifies by effect, not by name.
//   - A restart or switchover starts only inside the cluster's maintenance
//     window, if it has one (its pgsync.io/maintenance-window, else the
//     daemon's default) — also in the middle of a rollout, which then keeps
//     its slot and waits for the window. A step once started is not cut
//     short when the window closes.
//   - Clusters already rolling — between the first and the last restart or
//     switchover of their rollout — keep their slot and go on, even when
//     there are more of them than --max-rolling (the flag was lowered).
//   - A new rollout starts only when fewer than --max-rolling clusters are
//     rolling, and only when no cluster of a lower wave (pgsync.io/wave,
//     0 when not set) has a rollout pending or under way: waves are
//     barriers, so a canary in wave 0 is finished before wave 1 starts.
//     Suspended and halted clusters do not hold a wave back.
//
// Order: by wave, then namespace/name. Free slots go to the first clusters
// in that order, and Decide returns its decisions in it. A new rollout held
// back for several reasons is shown waiting for the one least likely to
// clear by itself: a halt, then a lower wave, then its window, then a slot.
//
// It must not import `k8s.io/client-go/...`, `internal/plan`,
// `internal/apply`, `internal/observe` or `internal/daemon/...`: the daemon
// maps its plan and observations onto a Cluster, not the other way round.
package fleet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/window"
)

// Step is what a cluster's next step does, as far as the fleet is
// concerned.
type Step int

const (
	// NoStep: the plan has nothing to do this cycle (it waits for an
	// instance to become ready, or for an approval).
	NoStep Step = iota
	// Ungated: a step that neither restarts nor switches over.
	Ungated
	// Disruptive: a step that restarts an instance or switches over.
	Disruptive
)

// Cluster is what Decide needs to know of one cluster.
type Cluster struct {
	Key cluster.Key
	// Wave is the cluster's pgsync.io/wave (0 when not set).
	Wave int
	// Next is what the cluster's next step does.
	Next Step
	// Restarts says some step of the plan, the next or a later one,
	// restarts or switches over: the cluster has a rollout pending and
	// holds later waves back. Next == Disruptive implies it.
	Restarts bool
	// Rolling says the cluster is between the first and the last restart
	// or switchover of a rollout: it has taken one (some instance already
	// runs the desired revision) and has another ahead.
	Rolling bool
	// Suspended: pgsync.io/suspend is "true" (in Git or set live).
	Suspended bool
	// Halted: the cluster's rollout is halted (pgsync.io/halted);
	// HaltCommit is the commit that rollout came from (the StatefulSet's
	// pgsync.io/applied-commit).
	Halted     bool
	HaltCommit string
	// Window is when restarts and switchovers may start; the zero
	// Schedule means at any time.
	Window window.Schedule
}

// OnHalt is what a halt does to the rest of the commit's rollouts.
type OnHalt string

const (
	// OnHaltStop: no new rollout starts while a cluster is halted on the
	// commit being rolled out.
	OnHaltStop OnHalt = "stop"
	// OnHaltContinue: halts stop only their own cluster.
	OnHaltContinue OnHalt = "continue"
)

// Options are the daemon's flags that steer the order.
type Options struct {
	// MaxRolling is --max-rolling: at most this many clusters rolling at
	// once. 0 means 1, the flag's default.
	MaxRolling int
	// OnHalt is --on-halt; "" means OnHaltStop, the flag's default.
	OnHalt OnHalt
	// Commit is the commit being rolled out: only a halt on it stops new
	// rollouts.
	Commit string
}

// State says what a cluster does this cycle. Its values are stable: the
// plan's JSON and `pgsync status` may carry them.
type State string

const (
	// StateIdle: the plan has no step this cycle.
	StateIdle State = "idle"
	// StateUngated: the next step neither restarts nor switches over.
	StateUngated State = "ungated"
	// StateRolling: in the middle of a rollout, the cluster keeps its
	// slot and takes its next step.
	StateRolling State = "rolling"
	// StateStart: the cluster starts its rollout, taking a free slot.
	StateStart State = "start"
	// StateSuspended, StateHalted: no step.
	StateSuspended State = "suspended"
	StateHalted    State = "halted"
	// StateWindow: waiting for the maintenance window (Decision.Opens).
	StateWindow State = "waiting-window"
	// StateMaxRolling: waiting for a slot.
	StateMaxRolling State = "waiting-max-rolling"
	// StateWave: waiting for lower waves to finish.
	StateWave State = "waiting-wave"
	// StateStopped: waiting because a halt stopped new rollouts.
	StateStopped State = "waiting-halt"
)

// Decision is what one cluster may do this cycle, and why.
type Decision struct {
	Key   cluster.Key
	Wave  int
	State State
	// Opens is when the window opens next, for StateWindow.
	Opens time.Time
	// Reason says it in a line for the plan and `pgsync status`
	// ("waiting: 3 clusters rolling (max 3)").
	Reason string
}

// Proceed reports whether the cluster may take its next step this cycle.
func (d Decision) Proceed() bool {
	switch d.State {
	case StateIdle, StateUngated, StateRolling, StateStart:
		return true
	}
	return false
}

// Result is one cycle's decisions.
type Result struct {
	// Decisions, one per cluster, by wave, then namespace/name.
	Decisions []Decision
	// Rolling is how many clusters hold a slot once this cycle's rollouts
	// have started.
	Rolling int
	// StoppedBy lists the clusters halted on the commit whose halt stops
	// new rollouts (OnHaltStop); empty when none does.
	StoppedBy []cluster.Key
}

// timeFormat is how a window's opening is shown: minutes and the zone's
// offset are what a reader needs ("2026-12-05T02:00+01:00").
const timeFormat = "2006-01-02T15:04Z07:00"

// Decide returns what every cluster may do at now (see the package comment
// for the rules). It fails only on input no daemon should pass: options out
// of range, or a cluster listed twice.
func Decide(clusters []Cluster, now time.Time, opts Options) (Result, error) {
	maxRolling := opts.MaxRolling
	switch {
	case maxRolling == 0:
		maxRolling = 1
	case maxRolling < 0:
		return Result{}, fmt.Errorf("max rolling must be at least 1 (got %d)", maxRolling)
	}
	onHalt := opts.OnHalt
	if onHalt == "" {
		onHalt = OnHaltStop
	}
	if onHalt != OnHaltStop && onHalt != OnHaltContinue {
		return Result{}, fmt.Errorf("on halt %q: allowed: %s, %s", onHalt, OnHaltStop, OnHaltContinue)
	}
	ordered := slices.Clone(clusters)
	slices.SortFunc(ordered, func(a, b Cluster) int {
		switch {
		case a.Wave != b.Wave:
			return a.Wave - b.Wave
		case a.Key.Less(b.Key):
			return -1
		case b.Key.Less(a.Key):
			return 1
		}
		return 0
	})
	for i := 1; i < len(ordered); i++ {
		if ordered[i].Key == ordered[i-1].Key {
			return Result{}, fmt.Errorf("cluster %s is listed twice", ordered[i].Key)
		}
	}

	var res Result
	// pending[w] lists the clusters of wave w that hold later waves back.
	pending := map[int][]cluster.Key{}
	for _, c := range ordered {
		if c.Next < NoStep || c.Next > Disruptive {
			return Result{}, fmt.Errorf("cluster %s: unknown next step %d", c.Key, c.Next)
		}
		if c.Rolling && !c.Halted {
			res.Rolling++
		}
		if c.Halted && onHalt == OnHaltStop && c.HaltCommit == opts.Commit {
			res.StoppedBy = append(res.StoppedBy, c.Key)
		}
		if !c.Suspended && !c.Halted && (c.Rolling || c.Restarts || c.Next == Disruptive) {
			pending[c.Wave] = append(pending[c.Wave], c.Key)
		}
	}
	lowest, anyPending := 0, false
	for w := range pending {
		if !anyPending || w < lowest {
			lowest, anyPending = w, true
		}
	}

	// States first, reasons once every start is known, so that every
	// reason counts the same clusters rolling.
	for _, c := range ordered {
		d := Decision{Key: c.Key, Wave: c.Wave}
		windowClosed := !c.Window.IsZero() && !c.Window.Open(now)
		switch {
		case c.Suspended:
			d.State = StateSuspended
		case c.Halted:
			d.State = StateHalted
		case c.Next == Ungated && !c.Rolling:
			d.State = StateUngated
		case c.Next == NoStep && !c.Rolling:
			d.State = StateIdle
		case c.Next == Disruptive && windowClosed:
			// Checked before the order: a closed window takes no slot,
			// and one that opens will not help a cluster held back by a
			// halt or a wave, so those come first for a new rollout.
			d.State = StateWindow
			if !c.Rolling {
				switch {
				case len(res.StoppedBy) > 0:
					d.State = StateStopped
				case c.Wave > lowest:
					d.State = StateWave
				}
			}
		case c.Rolling:
			d.State = StateRolling
		case len(res.StoppedBy) > 0:
			d.State = StateStopped
		case c.Wave > lowest:
			d.State = StateWave
		case res.Rolling >= maxRolling:
			d.State = StateMaxRolling
		default:
			d.State = StateStart
			res.Rolling++
		}
		if d.State == StateWindow {
			d.Opens, _ = c.Window.Next(now)
		}
		res.Decisions = append(res.Decisions, d)
	}
	for i, c := range ordered {
		d := &res.Decisions[i]
		keepsSlot := ""
		if c.Rolling && !c.Halted {
			keepsSlot = " (mid-rollout: keeps its slot)"
		}
		switch d.State {
		case StateSuspended:
			d.Reason = "suspended" + keepsSlot
		case StateHalted:
			d.Reason = "halted"
		case StateUngated:
			d.Reason = "not gated: neither restarts nor switches over"
		case StateIdle:
			d.Reason = "no step this cycle"
		case StateWindow:
			d.Reason = fmt.Sprintf("waiting for window %s, opens %s%s", c.Window, d.Opens.Format(timeFormat), keepsSlot)
		case StateRolling:
			d.Reason = "rolling: " + rollingCount(res.Rolling, maxRolling)
		case StateStopped:
			d.Reason = fmt.Sprintf("waiting: new rollouts stopped, %s halted (--on-halt stop)", keyList(res.StoppedBy))
		case StateWave:
			d.Reason = fmt.Sprintf("waiting for wave %d: %s", lowest, keyList(pending[lowest]))
		case StateMaxRolling:
			d.Reason = "waiting: " + rollingCount(res.Rolling, maxRolling)
		case StateStart:
			d.Reason = "starts rolling: " + rollingCount(res.Rolling, maxRolling)
		}
	}
	return res, nil
}

func rollingCount(n, max int) string {
	noun := "clusters"
	if n == 1 {
		noun = "cluster"
	}
	return fmt.Sprintf("%d %s rolling (max %d)", n, noun, max)
}

// keyList names up to three clusters, then how many more.
func keyList(keys []cluster.Key) string {
	const shown = 3
	names := make([]string, 0, shown)
	for i, k := range keys {
		if i == shown {
			return strings.Join(names, ", ") + fmt.Sprintf(" and %d more", len(keys)-shown)
		}
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}
