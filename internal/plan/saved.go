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
		return ok && in.Revision != rev && saved.Ordinal < d.Spec.Instances
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
