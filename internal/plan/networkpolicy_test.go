package plan

import (
	"slices"
	"strings"
	"testing"
)

// TestPlanClientsChangeUpdatesObjects: changing who the NetworkPolicy
// admits (pgsync.io/clients) is an update of the cluster's objects and
// restarts nothing; a cluster whose NetworkPolicy is missing (applied by
// a pgsync that rendered none) gets the same step, naming it.
func TestPlanClientsChangeUpdatesObjects(t *testing.T) {
	head := strings.Replace(website(img131, 3), "  namespace: website\n",
		"  namespace: website\n  annotations:\n    pgsync.io/clients: \"app=web\"\n", 1)
	cp := planOne(t, website(img131, 3), head, Options{})
	if got := steps(cp); !slices.Equal(got, []string{"update-objects"}) {
		t.Errorf("steps %v, want [update-objects]", got)
	}
	var paths []string
	for _, c := range cp.Changes {
		paths = append(paths, c.Path)
	}
	if !slices.ContainsFunc(paths, func(p string) bool { return strings.Contains(p, "pgsync.io/clients") }) {
		t.Errorf("changes %v do not name pgsync.io/clients", paths)
	}

	observed := Converged(mustLoad(t, website(img131, 3)))
	observed.Clusters[0].Drift = []string{"NetworkPolicy website: missing"}
	p, err := Make(mustLoad(t, website(img131, 3)), observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp = p.Clusters[0]
	if got := steps(cp); !slices.Equal(got, []string{"update-objects"}) || !strings.Contains(cp.Steps[0].Reason, "NetworkPolicy website: missing") {
		t.Errorf("a missing NetworkPolicy: steps %v (%+v), want one update-objects naming it", got, cp.Steps)
	}
}
