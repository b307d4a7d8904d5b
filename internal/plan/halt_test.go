package plan

import (
	"testing"

	"github.com/pgsync/pgsync/internal/revision"
)

// TestHaltedReloadsNothing: a rollout halted on an instance that runs the
// new revision and is not ready (a broken image) plans no step at all —
// not even a reload of the instance that is down, which could never
// complete (seen in e2e: the rerun halted again on reload-config).
func TestHaltedReloadsNothing(t *testing.T) {
	broken := mustLoad(t, website("localhost:5000/postgresql:15.99", 3))[0]
	observed := Converged(mustLoad(t, website("localhost:5000/postgresql:15.18", 3)))
	oc := &observed.Clusters[0]
	oc.Spec = broken
	down := &oc.Instances[2]
	down.Image, down.Revision, down.Config, down.Ready = broken.Spec.ImageName, revision.Restart(broken), "", false
	p, err := Make(mustLoad(t, website("localhost:5000/postgresql:15.99", 3)), observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Clusters[0].Action; a != ActionUpdate || !p.HasChanges() {
		t.Errorf("halted cluster: action %s (HasChanges %v), want update: a halt is not a no-op", a, p.HasChanges())
	}
	if h := p.Clusters[0].Halted; h != "website-2" {
		t.Errorf("Halted %q, want website-2", h)
	}
	if steps := p.Clusters[0].Steps; len(steps) != 0 {
		t.Errorf("halted cluster plans %d steps, want none: %+v", len(steps), steps)
	}
}
