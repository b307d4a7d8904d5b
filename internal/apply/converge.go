package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Outcome is how a cluster's run ended.
type Outcome string

const (
	Converged        Outcome = "converged"
	AwaitingApproval Outcome = "waiting for approval"
	Halted           Outcome = "halted"
	Orphaned         Outcome = "orphaned"
	Failed           Outcome = "failed"
)

// Progress hears about each step: started (Elapsed zero, Err nil) and
// finished.
type Progress func(ev ProgressEvent)

// ProgressEvent is one step starting or finishing.
type ProgressEvent struct {
	Cluster  cluster.Key
	Step     plan.Step
	Number   int // 1 for the cluster's first step of this run
	Finished bool
	Elapsed  time.Duration
	Err      error
}

// Run converges clusters one after another.
type Run struct {
	Exec    *Executor
	Options plan.Options
	// Owner names this run in the apply Leases (host/pid).
	Owner    string
	Progress Progress
	// Expect, when set, holds a saved plan's steps per cluster: the run
	// carries out exactly those, and stops if what it plans diverges.
	Expect map[cluster.Key][]plan.Step
}

// ClusterResult is one cluster's outcome.
type ClusterResult struct {
	Cluster cluster.Key
	Outcome Outcome
	Steps   int
	Elapsed time.Duration
	Err     error
}

// maxSteps bounds a cluster's run: each step must change what runs, and a
// plan never needs more than a few steps per instance. Past it something
// is wrong with pgsync itself, and stopping is safer than looping.
func maxSteps(c *cluster.Cluster) int { return 10 + 4*c.Spec.Instances }

// Converge runs the loop of doc.go for one cluster: desired nil means the
// cluster was removed from Git (orphan, or delete with Prune). It holds
// the cluster's apply lock throughout.
func (r *Run) Converge(ctx context.Context, key cluster.Key, desired *cluster.Cluster, commit string) ClusterResult {
	start := r.Exec.now()
	res := ClusterResult{Cluster: key}
	live, err := r.observe(ctx, key)
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return res
	}
	spec := desired
	if spec == nil {
		if live == nil {
			res.Outcome = Converged
			return res
		}
		spec = live.Observed.Spec
	}
	lock, err := r.Exec.Acquire(ctx, spec, r.Owner)
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return res
	}
	deleted := false
	defer func() {
		if deleted {
			lock.Delete(context.WithoutCancel(ctx))
		} else {
			lock.Release(context.WithoutCancel(ctx))
		}
	}()

	var previous *plan.Step
	for {
		if res.Steps > maxSteps(spec) {
			res.Outcome, res.Err = Failed, fmt.Errorf("%s: still not converged after %d steps; stopping (a pgsync bug: please report the plan)", key, res.Steps)
			break
		}
		check := func(s plan.Step) (plan.Step, error) {
			if previous != nil && sameStep(*previous, s) && s.Action != plan.StepUpdateObjects {
				return s, fmt.Errorf("%s: step %s %s completed but is planned again; stopping (a pgsync bug: please report the plan)", key, s.Action, s.Instance)
			}
			if want, ok := r.Expect[key]; ok {
				switch {
				case res.Steps < len(want) && sameStep(want[res.Steps], s):
				case res.Steps < len(want) && live != nil && desired != nil && plan.SavedStepStands(&live.Observed, desired, s, want[res.Steps]):
					// The reviewed choice among equal ones (lag moved).
					s = want[res.Steps]
				default:
					saved := "nothing more"
					if res.Steps < len(want) {
						saved = describe(want[res.Steps])
					}
					return s, fmt.Errorf("%s: the cluster diverged from the saved plan at step %d: pgsync now plans %s, the saved plan has %s; plan again", key, res.Steps+1, describe(s), saved)
				}
			}
			res.Steps++
			return s, nil
		}
		one := r.Once(ctx, key, desired, commit, live, res.Steps+1, check)
		live = one.Live
		deleted = one.Outcome == Converged && one.Step != nil && one.Step.Action == plan.StepDeleteCluster
		if one.Outcome != Progressing {
			res.Outcome, res.Err = one.Outcome, one.Err
			break
		}
		previous = one.Step
	}
	res.Elapsed = r.Exec.now().Sub(start)
	return res
}

// Progressing is Once's outcome when it carried out a step and the
// cluster may have more to do; Waiting, when a gate held the step back.
const (
	Progressing Outcome = "progressing"
	Waiting     Outcome = "waiting"
)

// WaitError, returned by a gate, holds a step back for now (a fleet wave
// is full, the maintenance window is closed, the cluster is suspended).
type WaitError struct{ Reason string }

func (e *WaitError) Error() string { return e.Reason }

// StepResult is what one pass of the loop did.
type StepResult struct {
	Outcome Outcome
	// Step is the step carried out (or held back), nil when none.
	Step    *plan.Step
	Elapsed time.Duration
	Err     error
	// Live is the cluster as observed after the pass (nil once deleted).
	Live *observe.Cluster
}

// Once is one pass of the loop: plan the cluster from live (nil: it does
// not run) and carry out at most its first step. gate, when not nil, is
// asked before the step runs and returns the step to carry out (a saved
// plan's equal choice may replace it): an error stops (a *WaitError holds
// the step back: Waiting). number numbers the step in progress events. The caller
// holds the cluster's apply lock.
func (r *Run) Once(ctx context.Context, key cluster.Key, desired *cluster.Cluster, commit string, live *observe.Cluster, number int, gate func(plan.Step) (plan.Step, error)) StepResult {
	res := StepResult{Live: live}
	var observed plan.Observed
	if live != nil {
		observed.Clusters = []plan.ObservedCluster{live.Observed}
	}
	var want []*cluster.Cluster
	if desired != nil {
		want = []*cluster.Cluster{desired}
	}
	if plan.NeedsPodMonitor(want) {
		// Before every step: the kind may go with its CRD at any time,
		// and a step would apply the PodMonitor after the other objects.
		observed.PodMonitorKind = observe.PodMonitorKind(r.Exec.Client.Discovery())
	}
	p, err := plan.Make(want, observed, r.Options)
	if err != nil {
		res.Outcome, res.Err = Failed, err
		return res
	}
	if len(p.Clusters) == 0 {
		res.Outcome = Converged
		return res
	}
	cp := p.Clusters[0]
	switch {
	case cp.Action == plan.ActionOrphan:
		if err := r.Exec.Orphan(ctx, live); err != nil {
			res.Outcome, res.Err = Failed, err
			return res
		}
		r.Exec.event(ctx, live, corev1.EventTypeNormal, ReasonOrphaned, "removed from Git: left running, no longer managed by pgsync")
		res.Outcome = Orphaned
		return res
	case len(cp.Steps) == 0 && cp.Halted != "":
		why := "the rollout is halted: " + cp.Halted + " runs the new spec but is not ready; a commit that fixes the spec resumes it"
		if live != nil && live.StatefulSet.Annotations[pc.AnnHalted] != "" {
			why += " (" + live.StatefulSet.Annotations[pc.AnnHalted] + ")"
		}
		res.Outcome, res.Err = Halted, errors.New(why)
		return res
	case len(cp.Steps) == 0:
		res.Outcome = Converged
		return res
	}
	s := cp.Steps[0]
	res.Step = &s
	if s.Action == plan.StepAwaitApproval {
		res.Outcome = AwaitingApproval
		return res
	}
	if gate != nil {
		if s, err = gate(s); err != nil {
			var w *WaitError
			if errors.As(err, &w) {
				res.Outcome, res.Err = Waiting, err
			} else {
				res.Outcome, res.Err = Failed, err
			}
			return res
		}
	}
	r.progress(ProgressEvent{Cluster: key, Step: s, Number: number})
	r.Exec.event(ctx, live, corev1.EventTypeNormal, ReasonStepStarted, describe(s))
	t0 := r.Exec.now()
	err = r.Exec.Step(ctx, Target{Desired: desired, Live: live, Commit: commit}, s)
	res.Elapsed = r.Exec.now().Sub(t0)
	r.progress(ProgressEvent{Cluster: key, Step: s, Number: number, Finished: true, Elapsed: res.Elapsed, Err: err})
	var halt *HaltError
	switch {
	case errors.As(err, &halt):
		if res.Live, _ = r.observe(ctx, key); res.Live != nil {
			r.Exec.event(ctx, res.Live, corev1.EventTypeWarning, ReasonHalted, halt.Error())
			if err := r.Exec.setHalted(ctx, res.Live, halt.Error()); err != nil {
				r.Exec.logf("mark halted", "cluster", key.String(), "error", err.Error())
			}
		}
		res.Outcome, res.Err = Halted, halt
		return res
	case err != nil:
		res.Outcome, res.Err = Failed, err
		return res
	}
	if s.Action == plan.StepDeleteCluster {
		res.Outcome, res.Live = Converged, nil
		return res
	}
	if res.Live, err = r.observe(ctx, key); err != nil {
		res.Outcome, res.Err = Failed, err
		return res
	}
	r.Exec.event(ctx, res.Live, corev1.EventTypeNormal, ReasonStepFinished, describe(s)+" ("+res.Elapsed.Round(time.Millisecond).String()+")")
	res.Outcome = Progressing
	return res
}

func (r *Run) progress(ev ProgressEvent) {
	if r.Progress != nil {
		r.Progress(ev)
	}
}

// observe returns the cluster as it runs, nil when it does not, with its
// drift, as the live plan sees it: without drift the loop planned no
// update-objects for objects edited by hand or left half-applied by a
// killed run (seen in e2e: a run killed inside a switchover's apply left
// the standby PodDisruptionBudget selecting the old pods; pgsync apply
// printed the update-objects step, then said converged without it).
func (r *Run) observe(ctx context.Context, key cluster.Key) (*observe.Cluster, error) {
	f, err := observe.Observe(ctx, r.Exec.Client, observe.Options{Namespace: key.Namespace, Status: r.Exec.Status})
	if err != nil {
		return nil, err
	}
	for i := range f.Clusters {
		if f.Clusters[i].Key() == key {
			if err := f.FindDrift(ctx, r.Exec.Dynamic, func(k cluster.Key) bool { return k == key }); err != nil {
				return nil, err
			}
			return &f.Clusters[i], nil
		}
	}
	return nil, nil
}

func sameStep(a, b plan.Step) bool {
	return a.Action == b.Action && a.Instance == b.Instance && a.To == b.To
}

// describe is a step in one line.
func describe(s plan.Step) string {
	out := string(s.Action)
	if s.Instance != "" {
		out += " " + s.Instance
	}
	if s.From != "" || s.To != "" {
		out += fmt.Sprintf(" (%s → %s)", s.From, s.To)
	}
	return out
}
