package plan

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/revision"
)

// execute changes the observed state the way apply carrying out step s
// would: the model of the daemon's world that the convergence test drives.
func execute(t *testing.T, d *cluster.Cluster, o *ObservedCluster, s Step) {
	t.Helper()
	index := func(ordinal int) int {
		for i, in := range o.Instances {
			if in.Ordinal == ordinal {
				return i
			}
		}
		t.Fatalf("step %s names ordinal %d, which does not run", s.Action, ordinal)
		return -1
	}
	switch s.Action {
	case StepUpdateObjects:
		o.Spec = d
	case StepReloadConfig:
		for i := range o.Instances {
			o.Instances[i].Config = revision.Config(d)
		}
	case StepResizeVolume:
		o.Instances[index(s.Ordinal)].VolumeSize = cluster.Quantity(s.To)
	case StepCreateInstance:
		n := s.Ordinal
		if n != len(o.Instances) {
			t.Fatalf("create-instance %s while %d instances run: ordinals must stay dense", s.Instance, len(o.Instances))
		}
		o.Instances = append(o.Instances, ObservedInstance{Ordinal: n, Image: d.Spec.ImageName, Revision: revision.Restart(d),
			Config: revision.Config(d), VolumeSize: d.Spec.Storage.Size, Ready: true})
	case StepRemoveInstance:
		i := index(s.Ordinal)
		if o.Instances[i].Ordinal == o.Primary {
			t.Fatalf("remove-instance %s removes the primary", s.Instance)
		}
		o.Instances = append(o.Instances[:i], o.Instances[i+1:]...)
	case StepRestartInstance:
		in := &o.Instances[index(s.Ordinal)]
		in.Image, in.Revision, in.Config, in.Ready = d.Spec.ImageName, revision.Restart(d), revision.Config(d), true
	case StepAwaitApproval:
		o.ApprovedRevision = revision.Restart(d)
	case StepSwitchover:
		from, to := o.Instances[index(s.Ordinal)], o.Instances[index(s.TargetOrdinal)]
		if from.Ordinal != o.Primary {
			t.Fatalf("switchover from %s, which is not the primary", s.From)
		}
		if !to.Ready {
			t.Fatalf("switchover to %s, which is not ready", s.To)
		}
		o.Primary = to.Ordinal
	default:
		t.Fatalf("unexpected step %s", s.Action)
	}
}

// randomSpec is a website cluster with random instances, minor version,
// parameters and size; all share major 13, size only grows with grow.
func randomSpec(t *testing.T, r *rand.Rand, supervised bool) *cluster.Cluster {
	extra := []string{}
	if supervised {
		extra = append(extra, "  primaryUpdateStrategy: supervised\n")
	}
	if r.IntN(4) == 0 {
		extra = append(extra, "  primaryUpdateMethod: restart\n")
	}
	params := []string{}
	if r.IntN(2) == 0 {
		params = append(params, fmt.Sprintf("      work_mem: %dMB\n", 4+r.IntN(3)))
	}
	if r.IntN(2) == 0 {
		params = append(params, fmt.Sprintf("      shared_buffers: %dMB\n", 128*(1+r.IntN(3))))
	}
	if len(params) > 0 {
		extra = append(extra, "  postgresql:\n    parameters:\n"+strings.Join(params, ""))
	}
	image := fmt.Sprintf("quay.io/enterprisedb/postgresql:13.%d", 1+r.IntN(3))
	doc := website(image, 1+r.IntN(5), extra...)
	doc = strings.Replace(doc, "10Gi", fmt.Sprintf("%dGi", 10+r.IntN(3)), 1)
	return mustLoad(t, doc)[0]
}

// TestConvergence drives the planner like the daemon does — plan, execute
// the first step, observe, plan again — from many random starting points
// (interrupted rollouts included), and checks the invariants of DESIGN §7
// at every iteration:
//   - the plan after executing a step is exactly the rest of the previous
//     plan: nothing is repeated or re-ordered (invariant 6);
//   - every instance restarts at most once; the primary's update (switchover
//     or in-place restart) comes after every standby's (invariant 1);
//   - a switchover goes to a ready instance on the new revision, unless it
//     only makes room for a scale down (invariant 2);
//   - the loop ends with every instance on the desired spec, at the desired
//     count and size, and the primary among them.
func TestConvergence(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 2000; run++ {
		supervised := r.IntN(3) == 0
		base, head := randomSpec(t, r, supervised), randomSpec(t, r, supervised)
		if head.Spec.Storage.Size.Cmp(base.Spec.Storage.Size) < 0 {
			head.Spec.Storage.Size = base.Spec.Storage.Size
		}
		observed := Converged([]*cluster.Cluster{base})
		o := &observed.Clusters[0]
		o.Primary = r.IntN(len(o.Instances))
		for i := range o.Instances {
			o.Instances[i].LagBytes = int64(r.IntN(3) * 100)
		}
		// Half the runs start mid-rollout: objects already updated and a
		// random subset of instances already restarted.
		if r.IntN(2) == 0 {
			o.Spec = head
			for i := range o.Instances {
				if r.IntN(2) == 0 {
					o.Instances[i].Image, o.Instances[i].Revision, o.Instances[i].Config = head.Spec.ImageName, revision.Restart(head), revision.Config(head)
				}
			}
		}
		// Some outdated standbys are not ready (crashed on the old spec):
		// they do not halt the rollout and are restarted first.
		for i := range o.Instances {
			if o.Instances[i].Ordinal != o.Primary && o.Instances[i].Revision != revision.Restart(head) && r.IntN(5) == 0 {
				o.Instances[i].Ready = false
			}
		}
		name := fmt.Sprintf("run %d (%d → %d instances, %s → %s, primary %d)", run, len(o.Instances), head.Spec.Instances,
			tagOf(base.Spec.ImageName), tagOf(head.Spec.ImageName), o.Primary)

		var previous []string
		restarted := map[string]int{}
		for iteration := 0; ; iteration++ {
			if iteration > 40 {
				t.Fatalf("%s: no convergence after 40 steps", name)
			}
			// Make is pure: it must leave every input as it found it, including
			// what the inputs point to (the specs, the instance slices).
			desired := []*cluster.Cluster{head}
			desiredBefore, observedBefore := deepCopy(t, desired), deepCopy(t, observed)
			p, err := Make(desired, observed, Options{})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// reflect.DeepEqual first: cmp.Diff on every iteration doubles the
			// test's time under -race.
			if !reflect.DeepEqual(desiredBefore, desired) {
				t.Fatalf("%s, iteration %d: Make changed the desired clusters (-before +after):\n%s", name, iteration, cmp.Diff(desiredBefore, desired))
			}
			if !reflect.DeepEqual(observedBefore, observed) {
				t.Fatalf("%s, iteration %d: Make changed the observed state (-before +after):\n%s", name, iteration, cmp.Diff(observedBefore, observed))
			}
			cp := p.Clusters[0]
			got := steps(cp)
			if previous != nil && strings.Join(got, "\n") != strings.Join(previous[1:], "\n") {
				t.Fatalf("%s, iteration %d: the plan after a step is not the rest of the previous one\nprevious: %q\nnow:      %q", name, iteration, previous, got)
			}
			checkOrder(t, name, cp, o.Primary, head)
			if len(cp.Steps) == 0 {
				break
			}
			s := cp.Steps[0]
			if s.Action == StepRestartInstance {
				restarted[s.Instance]++
				if restarted[s.Instance] > 1 {
					t.Fatalf("%s: %s restarted twice", name, s.Instance)
				}
			}
			if s.Action == StepSwitchover && len(o.Instances) <= head.Spec.Instances {
				for _, in := range o.Instances {
					if instanceName(head, in.Ordinal) == s.To && in.Revision != revision.Restart(head) {
						t.Fatalf("%s: switchover to %s, which is not updated", name, s.To)
					}
				}
			}
			execute(t, head, o, s)
			previous = got
		}

		if len(o.Instances) != head.Spec.Instances || o.Primary >= head.Spec.Instances {
			t.Fatalf("%s: ended with %d instances, primary %d", name, len(o.Instances), o.Primary)
		}
		for _, in := range o.Instances {
			if in.Revision != revision.Restart(head) || in.Config != revision.Config(head) || in.VolumeSize.Cmp(head.Spec.Storage.Size) != 0 || !in.Ready {
				t.Fatalf("%s: %s did not converge: %+v", name, instanceName(head, in.Ordinal), in)
			}
		}
	}
}

// checkOrder asserts that in one plan no standby restarts after the
// primary's update began.
func checkOrder(t *testing.T, name string, cp ClusterPlan, primary int, d *cluster.Cluster) {
	t.Helper()
	primaryUpdated := false
	current := instanceName(d, primary)
	for _, s := range cp.Steps {
		switch {
		case s.Action == StepSwitchover && s.To != "" && primaryUpdated:
			t.Fatalf("%s: a second switchover after the primary's update: %q", name, steps(cp))
		case s.Action == StepRestartInstance && s.Role == RoleStandby && primaryUpdated && s.Instance != current:
			t.Fatalf("%s: standby %s restarts after the primary's update: %q", name, s.Instance, steps(cp))
		case s.Action == StepRestartInstance && s.Instance == current:
			primaryUpdated = true
		}
		if s.Action == StepSwitchover {
			current = s.To
		}
	}
}
