package plan

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPlanManagedServices: adding, changing and removing
// spec.managed.services is one update-objects step, restarting nothing,
// whose reason names each Service created, re-created and deleted; a
// Service left behind (drift) gets the same step.
func TestPlanManagedServices(t *testing.T) {
	svc := func(body string) string { return "  managed:\n    services:\n" + body }
	lb := "      - selectorType: rw\n        serviceTemplate: {metadata: {name: website-lb}, spec: {type: LoadBalancer}}\n"
	standbys := func(port int) string {
		return "      - selectorType: ro\n        updateStrategy: replace\n        serviceTemplate: {metadata: {name: website-standbys}, spec: {ports: [{port: " + strconv.Itoa(port) + "}]}}\n"
	}
	plain := website(img131, 3)
	full := website(img131, 3, svc("      disabledDefaultServices: [ro]\n      additional:\n"+lb+standbys(6432)))
	for _, tc := range []struct {
		name, base, head, want string
	}{
		{"added", plain, full, "Services: create website-lb, website-standbys; delete website-ro (no longer in the spec)"},
		{"replace strategy changed", full, strings.Replace(full, "6432", "6433", 1), "Services: re-create website-standbys (updateStrategy replace: deleted and created anew, with a new cluster IP)"},
		{"patch strategy changed", full, strings.Replace(full, "LoadBalancer", "NodePort", 1), ""},
		{"removed", full, plain, "Services: create website-ro; delete website-lb, website-standbys (no longer in the spec)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := planOne(t, tc.base, tc.head, Options{})
			if got := steps(cp); !slices.Equal(got, []string{"update-objects"}) {
				t.Fatalf("steps %v, want [update-objects]", got)
			}
			reason := cp.Steps[0].Reason
			if tc.want != "" && !strings.Contains(reason, tc.want) || tc.want == "" && strings.Contains(reason, "Services:") {
				t.Errorf("reason %q, want it to say %q", reason, tc.want)
			}
		})
	}
	// A new cluster's step names its Services; the seed's as before.
	if r := planOne(t, "", full, Options{}).Steps[0].Reason; !strings.Contains(r, "Services website-rw, website-r, website-hl, website-lb, website-standbys,") {
		t.Errorf("create: %q", r)
	}
	if r := planOne(t, "", plain, Options{}).Steps[0].Reason; !strings.Contains(r, "Services website-rw, website-ro, website-r, website-hl, Lease website-primary") {
		t.Errorf("create without managed.services: %q", r)
	}
	// Invariant 8: the same spec plans nothing.
	if cp := planOne(t, full, full, Options{}); len(cp.Steps) != 0 || cp.Action != ActionNoOp {
		t.Errorf("unchanged managed.services: %v %v", cp.Action, steps(cp))
	}
	// A Service pgsync owns that the spec no longer renders (an apply
	// interrupted before it deleted it) is drift: the step deletes it.
	observed := Converged(mustLoad(t, plain))
	observed.Clusters[0].Drift = []string{"Service website-old: not in the spec"}
	p, err := Make(mustLoad(t, plain), observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cp := p.Clusters[0]; !slices.Equal(steps(cp), []string{"update-objects"}) || !strings.Contains(cp.Steps[0].Reason, "Service website-old: not in the spec") {
		t.Errorf("left-behind Service: %v %+v", steps(cp), cp.Steps)
	}
}
