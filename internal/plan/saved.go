package plan

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/revision"
)

// SavedStepStands says whether a saved plan's step may be carried out in
// place of the step pgsync plans now (planned), on cluster o towards d.
//
// Where several steps are equally right the planner chooses by lag: the
// most lagging standby restarts first, the least lagging takes over. Lag
// moves between plan and apply (a standby that has just restarted lags a
// few kB for a moment), so a replan may choose another of the same
// choices. The reviewed choice then stands, as long as it is still one of
// them: the same kind of step on the same phase, a standby still to be
// restarted onto the same image, or a ready standby on the new revision
// to switch over to from the same primary. Anything else is a divergence.
func SavedStepStands(o *ObservedCluster, d *cluster.Cluster, planned, saved Step) bool {
	if o == nil || planned.Action != saved.Action || planned.Phase != saved.Phase {
		return false
	}
	rev := revision.Restart(d)
	instance := func(ordinal int) (ObservedInstance, bool) {
		for _, in := range o.Instances {
			if in.Ordinal == ordinal {
				return in, true
			}
		}
		return ObservedInstance{}, false
	}
	switch planned.Action {
	case StepRestartInstance:
		if planned.Phase != PhaseRollingStandbys || planned.To != saved.To || saved.Ordinal == o.Primary {
			return false
		}
		in, ok := instance(saved.Ordinal)
		return ok && (in.Revision != rev || recreateReason(d, o, in) != "") && saved.Ordinal < d.Spec.Instances
	case StepSwitchover:
		if planned.Phase != PhasePrimary || planned.Ordinal != saved.Ordinal || saved.Ordinal != o.Primary {
			return false
		}
		in, ok := instance(saved.TargetOrdinal)
		// With synchronous replication the saved target must still be
		// listed, unless planning afresh picks it too (no listed one
		// qualifies).
		listed := !o.SyncRestricted || in.SyncListed || planned.TargetOrdinal == saved.TargetOrdinal
		return ok && saved.TargetOrdinal != o.Primary && in.Ready && in.Revision == rev && saved.TargetOrdinal < d.Spec.Instances && listed
	}
	return false
}

// SavedStepsStand says whether a saved plan's steps for cluster o may be
// carried out in place of the steps pgsync plans now: apply's check of a
// whole saved plan before its first step. Every step must be the one
// planned now, or one of the same equal choices (SavedStepStands): the
// rolling restarts of the same standbys in another order, or a
// switchover to another standby that is, or will have been restarted
// onto, the new revision by then. The executor still checks each step
// when it comes to it.
func SavedStepsStand(o *ObservedCluster, d *cluster.Cluster, planned, saved []Step) bool {
	if len(planned) != len(saved) {
		return false
	}
	rev := revision.Restart(d)
	instance := func(ordinal int) (ObservedInstance, bool) {
		for _, in := range o.Instances {
			if in.Ordinal == ordinal {
				return in, true
			}
		}
		return ObservedInstance{}, false
	}
	restartedBySaved := map[int]bool{}
	plannedRestarts, savedRestarts := map[string]int{}, map[string]int{}
	for i, p := range planned {
		s := saved[i]
		if p.Action != s.Action || p.Phase != s.Phase {
			return false
		}
		rolling := s.Action == StepRestartInstance && s.Phase == PhaseRollingStandbys
		if rolling {
			plannedRestarts[p.Instance]++
			savedRestarts[s.Instance]++
			restartedBySaved[s.Ordinal] = true
		}
		if p.Action == s.Action && p.Instance == s.Instance && p.To == s.To {
			continue
		}
		if o == nil || d == nil {
			return false
		}
		switch {
		case rolling:
			in, ok := instance(s.Ordinal)
			if p.To != s.To || !ok || s.Ordinal == o.Primary || (in.Revision == rev && recreateReason(d, o, in) == "") || s.Ordinal >= d.Spec.Instances {
				return false
			}
		case s.Action == StepSwitchover && s.Phase == PhasePrimary:
			in, ok := instance(s.TargetOrdinal)
			if p.Ordinal != s.Ordinal || s.Ordinal != o.Primary || !ok || s.TargetOrdinal == o.Primary || s.TargetOrdinal >= d.Spec.Instances {
				return false
			}
			onRevision := (in.Ready && in.Revision == rev) || restartedBySaved[s.TargetOrdinal]
			if !onRevision || (o.SyncRestricted && !in.SyncListed) {
				return false
			}
		default:
			return false
		}
	}
	if len(plannedRestarts) != len(savedRestarts) {
		return false
	}
	for name, n := range plannedRestarts {
		if savedRestarts[name] != n {
			return false
		}
	}
	return true
}
