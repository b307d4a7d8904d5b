package plan

import (
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// A saved plan's choice among equally right steps stands when lag has
// moved since; a step that is no longer right does not.
func TestSavedStepStands(t *testing.T) {
	head := mustLoad(t, website(img132, 4))[0]
	other := mustLoad(t, website("quay.io/enterprisedb/postgresql:13.3", 4))[0]
	rolling := func() *ObservedCluster {
		o := Converged(mustLoad(t, website(img131, 4))).Clusters[0]
		o.Spec = head
		return &o
	}
	// Standbys 3 and 2 restarted; the primary 0 and standby 1 are not.
	switching := func() *ObservedCluster {
		o := rolling()
		o.Instances[1] = updatedInstance(head, 1, true)
		o.Instances[2] = updatedInstance(head, 2, true)
		o.Instances[3] = updatedInstance(head, 3, true)
		return o
	}
	restart := func(ordinal int, image string) Step {
		return Step{Action: StepRestartInstance, Phase: PhaseRollingStandbys, Instance: instanceName(head, ordinal),
			Ordinal: ordinal, TargetOrdinal: NoOrdinal, From: img131, To: image}
	}
	switchover := func(to int) Step {
		return Step{Action: StepSwitchover, Phase: PhasePrimary, Instance: "website-0", Ordinal: 0,
			TargetOrdinal: to, From: "website-0", To: instanceName(head, to)}
	}
	tests := []struct {
		name           string
		o              *ObservedCluster
		d              *cluster.Cluster
		planned, saved Step
		want           bool
	}{
		{"another outdated standby first", rolling(), head, restart(1, img132), restart(2, img132), true},
		{"the saved standby is already updated", func() *ObservedCluster {
			o := rolling()
			o.Instances[2] = updatedInstance(head, 2, true)
			return o
		}(), head, restart(1, img132), restart(2, img132), false},
		{"the saved restart is the primary", rolling(), head, restart(1, img132), restart(0, img132), false},
		{"another image", rolling(), other, restart(1, other.Spec.ImageName), restart(2, img132), false},
		{"another kind of step", rolling(), head, switchover(1), restart(2, img132), false},
		{"a ready updated standby to switch to", switching(), head, switchover(2), switchover(1), true},
		{"the saved target is not ready", func() *ObservedCluster {
			o := switching()
			o.Instances[1].Ready = false
			return o
		}(), head, switchover(2), switchover(1), false},
		{"the saved target is outdated", func() *ObservedCluster {
			o := switching()
			o.Instances[1] = rolling().Instances[1]
			return o
		}(), head, switchover(2), switchover(1), false},
		{"the saved target is the primary now", func() *ObservedCluster {
			o := switching()
			o.Primary = 1
			return o
		}(), head, switchover(2), switchover(1), false},
		{"the saved target is scaled away", switching(), mustLoad(t, website(img132, 2))[0], switchover(1), switchover(3), false},
		{"synchronous: the saved target is not listed", func() *ObservedCluster {
			o := switching()
			o.SyncRestricted, o.Instances[2].SyncListed = true, true
			return o
		}(), head, switchover(2), switchover(1), false},
		{"synchronous: the saved target is listed", func() *ObservedCluster {
			o := switching()
			o.SyncRestricted, o.Instances[1].SyncListed, o.Instances[2].SyncListed = true, true, true
			return o
		}(), head, switchover(2), switchover(1), true},
		{"synchronous: none listed qualifies, the same unlisted target", func() *ObservedCluster {
			o := switching()
			o.SyncRestricted = true
			return o
		}(), head, switchover(1), switchover(1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SavedStepStands(tt.o, tt.d, tt.planned, tt.saved); got != tt.want {
				t.Errorf("SavedStepStands = %v, want %v", got, tt.want)
			}
		})
	}
}

// A whole saved plan stands when lag moved between plan and apply and
// the planner now orders the same restarts differently, or picks another
// updated standby to switch to; it does not when the steps changed.
func TestSavedStepsStand(t *testing.T) {
	head := mustLoad(t, website(img132, 4))
	observed := func(lags ...int64) Observed {
		o := Converged(mustLoad(t, website(img131, 4)))
		for i, lag := range lags {
			o.Clusters[0].Instances[i+1].LagBytes = lag
		}
		return o
	}
	steps := func(o Observed, desired []*cluster.Cluster) []Step {
		t.Helper()
		p, err := Make(desired, o, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Clusters[0].Steps
	}
	atPlan := steps(observed(300, 200, 100), head)
	atApply := observed(100, 200, 300)
	now := steps(atApply, head)
	if sameOrder(now, atPlan) {
		t.Fatalf("the lags chosen do not reorder the plan: %v", now)
	}
	withSync := observed(100, 200, 300)
	withSync.Clusters[0].SyncRestricted = true
	withSync.Clusters[0].Instances[1].SyncListed = true
	other := mustLoad(t, website("quay.io/enterprisedb/postgresql:13.3", 4))
	tests := []struct {
		name           string
		o              Observed
		d              []*cluster.Cluster
		planned, saved []Step
		want           bool
	}{
		{"the same plan", atApply, head, now, now, true},
		{"the restarts reordered, another switchover target", atApply, head, now, atPlan, true},
		{"the saved target is not listed now", withSync, head, steps(withSync, head), atPlan, false},
		{"another image now", atApply, other, steps(atApply, other), atPlan, false},
		{"a step fewer", atApply, head, now, atPlan[1:], false},
		{"a standby already restarted", func() Observed {
			o := observed(100, 200, 300)
			o.Clusters[0].Instances[1] = updatedInstance(head[0], 1, true)
			return o
		}(), head, nil, atPlan, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			planned := tt.planned
			if planned == nil {
				planned = steps(tt.o, tt.d)
			}
			if got := SavedStepsStand(&tt.o.Clusters[0], tt.d[0], planned, tt.saved); got != tt.want {
				t.Errorf("SavedStepsStand = %v, want %v\nplanned %v\nsaved   %v", got, tt.want, names(planned), names(tt.saved))
			}
		})
	}
}

func sameOrder(a, b []Step) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Instance != b[i].Instance || a[i].To != b[i].To {
			return false
		}
	}
	return true
}

func names(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, string(s.Action)+" "+s.Instance+" → "+s.To)
	}
	return out
}
