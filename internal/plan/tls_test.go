package plan

import (
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// TestPlanNamesInstancesWithoutTLS: instances whose pods predate pgsync's
// TLS are named in a warning, and nothing is planned for them (a pgsync
// upgrade alone restarts no cluster, invariant 8).
func TestPlanNamesInstancesWithoutTLS(t *testing.T) {
	c := mustLoad(t, website(img131, 3))[0]
	observed := Converged([]*cluster.Cluster{c})
	for _, i := range []int{0, 2} {
		observed.Clusters[0].Instances[i].NoTLS = true
	}
	p, err := Make([]*cluster.Cluster{c}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := p.Clusters[0]
	if cp.Action != ActionNoOp || len(cp.Steps) != 0 {
		t.Errorf("action %s, steps %v: want a no-op (nothing restarts for TLS)", cp.Action, steps(cp))
	}
	var warned []string
	for _, w := range cp.Warnings {
		if strings.HasPrefix(w, "TLS: ") {
			warned = append(warned, w)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "website-0, website-2 run without TLS") {
		t.Errorf("warnings %q: want one naming website-0 and website-2", cp.Warnings)
	}
	observed = Converged([]*cluster.Cluster{c})
	if p, _ := Make([]*cluster.Cluster{c}, observed, Options{}); len(p.Clusters[0].Warnings) != 0 {
		t.Errorf("warnings with TLS everywhere: %q", p.Clusters[0].Warnings)
	}
}
