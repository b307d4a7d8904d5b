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

// After a switchover or failover to an instance re-created with TLS, a
// standby from before TLS cannot stream (no client certificate, plaintext
// refused): the plan re-creates it, even on the desired revision, and
// does not hold the rollout on it; under a primary without TLS it stays.
func TestPlanRecreatesStandbysCutOffByTLS(t *testing.T) {
	c := mustLoad(t, website(img131, 3))[0]
	observed := Converged([]*cluster.Cluster{c})
	o := &observed.Clusters[0]
	o.Primary = 1
	o.Instances[0].NoTLS = true
	o.Instances[2].NoTLS, o.Instances[2].Ready = true, false
	p, err := Make([]*cluster.Cluster{c}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := p.Clusters[0]
	if cp.Halted != "" {
		t.Errorf("halted by %s: a standby cut off by TLS holds nothing", cp.Halted)
	}
	got := steps(cp)
	want := []string{"restart-instance website-2 standby", "restart-instance website-0 standby"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("steps %q, want %q", got, want)
	}
	for _, s := range cp.Steps {
		if !strings.Contains(s.Reason, "cannot stream from website-1, a primary with TLS") {
			t.Errorf("%s: reason %q does not say why", s.Instance, s.Reason)
		}
	}
	for _, w := range cp.Warnings {
		if strings.HasPrefix(w, "TLS: ") {
			t.Errorf("warning %q: the instances restarting are not among those left without TLS", w)
		}
	}
	// The saved plan's order stands when the other standby comes first now.
	reordered := append([]Step(nil), cp.Steps...)
	reordered[0], reordered[1] = reordered[1], reordered[0]
	if !SavedStepsStand(o, c, cp.Steps, reordered) || !SavedStepStands(o, c, cp.Steps[0], reordered[0]) {
		t.Error("a saved plan restarting the same standbys in another order does not stand")
	}

	o.Instances[1].NoTLS = true // the primary has no TLS either: they stream
	if p, _ := Make([]*cluster.Cluster{c}, observed, Options{}); len(p.Clusters[0].Steps) != 0 {
		t.Errorf("steps %v under a primary without TLS: want none", steps(p.Clusters[0]))
	}
}

// An instance whose manager reports a problem with spec.certificates'
// Secrets (its /status tlsProblem) is named in a plan warning with it;
// nothing is planned for it.
func TestPlanWarnsOfCertificateProblems(t *testing.T) {
	c := mustLoad(t, website(img131, 2))[0]
	observed := Converged([]*cluster.Cluster{c})
	observed.Clusters[0].Instances[1].TLSProblem = "serverTLSSecret: the certificate does not name website-1.website-hl.shop.svc"
	p, err := Make([]*cluster.Cluster{c}, observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := p.Clusters[0]
	if cp.Action != ActionNoOp || len(cp.Steps) != 0 {
		t.Errorf("action %s, steps %v: want a no-op", cp.Action, steps(cp))
	}
	want := "TLS: website-1: spec.certificates: serverTLSSecret: the certificate does not name website-1.website-hl.shop.svc"
	if len(cp.Warnings) != 1 || cp.Warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", cp.Warnings, want)
	}
}
