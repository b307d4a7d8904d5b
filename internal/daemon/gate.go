package daemon

import (
	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/fleet"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
	"github.com/pgsync/pgsync/internal/window"
)

// kindOf is what a step means to the fleet: restarts and switchovers are
// gated by waves and windows, creates and reloads are not.
func kindOf(s plan.Step, desired *cluster.Cluster) fleet.Step {
	switch {
	case s.Restarts(desired):
		return fleet.Disruptive
	case s.Action == plan.StepAwaitApproval:
		return fleet.NoStep
	}
	return fleet.Ungated
}

// fleetCluster is what the fleet order needs of one cluster this cycle.
func fleetCluster(k cluster.Key, desired *cluster.Cluster, live *observe.Cluster, cp *plan.ClusterPlan, defaultWindow window.Schedule) fleet.Cluster {
	fc := fleet.Cluster{Key: k, Window: defaultWindow}
	if desired != nil {
		if r, err := desired.Rollout(); err == nil {
			fc.Wave, fc.Suspended = r.Wave, r.Suspend
			if !r.Window.IsZero() {
				fc.Window = r.Window
			}
		}
	}
	if live != nil {
		ann := live.StatefulSet.Annotations
		if ann[pc.AnnSuspend] == "true" {
			fc.Suspended = true // set live with kubectl annotate
		}
		if ann[pc.AnnHalted] != "" {
			fc.Halted, fc.HaltCommit = true, ann[pc.AnnAppliedCommit]
		}
	}
	if cp == nil {
		return fc
	}
	if cp.Halted != "" {
		fc.Halted = true
		if live != nil {
			fc.HaltCommit = live.Commit
		}
	}
	for i, s := range cp.Steps {
		kind := kindOf(s, desired)
		if i == 0 {
			fc.Next = kind
		}
		if kind == fleet.Disruptive {
			fc.Restarts = true
		}
	}
	if fc.Restarts && desired != nil && live != nil {
		want := revision.Restart(desired)
		for _, in := range live.Observed.Instances {
			if in.Revision == want {
				fc.Rolling = true // it has taken a restart and has another ahead
			}
		}
	}
	return fc
}

// gateFor holds back the steps the fleet decision does not let proceed.
func gateFor(decisions map[cluster.Key]fleet.Decision) Gate {
	return func(c *observe.Cluster, desired *cluster.Cluster, s plan.Step) error {
		key := cluster.Key{}
		switch {
		case desired != nil:
			key = desired.Key()
		case c != nil:
			key = c.Key()
		}
		d, ok := decisions[key]
		if !ok || d.Proceed() {
			return nil
		}
		return &apply.WaitError{Reason: d.Reason}
	}
}
