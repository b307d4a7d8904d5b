package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// TestPlanPodMonitor: an objects step names the PodMonitor it creates or
// deletes; a cluster with enablePodMonitor is refused, at the field,
// where a live observation found the API server without the kind, and
// planned where nobody asked (offline); the other clusters are planned as
// before whatever was found.
func TestPlanPodMonitor(t *testing.T) {
	pm := "  monitoring:\n    enablePodMonitor: true\n"
	plain, with := website(img131, 3, "  monitoring: {}\n"), website(img131, 3, pm)
	for _, tc := range []struct{ name, base, head, want string }{
		{"enabled", plain, with, "create PodMonitor website"},
		{"disabled", with, plain, "delete PodMonitor website (enablePodMonitor is off)"},
		{"relabelings changed", with, website(img131, 3, pm+"    podMonitorRelabelings: [{action: drop, sourceLabels: [a]}]\n"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := planOne(t, tc.base, tc.head, Options{})
			if got := steps(cp); !slices.Equal(got, []string{"update-objects"}) {
				t.Fatalf("steps %v, want [update-objects]", got)
			}
			r := cp.Steps[0].Reason
			if tc.want != "" && !strings.Contains(r, tc.want) || tc.want == "" && strings.Contains(r, "PodMonitor") {
				t.Errorf("reason %q, want it to say %q", r, tc.want)
			}
		})
	}
	if r := planOne(t, "", with, Options{}).Steps[0].Reason; !strings.HasSuffix(r, "StatefulSet website, and PodMonitor website") {
		t.Errorf("create: %q", r)
	}
	if r := planOne(t, "", plain, Options{}).Steps[0].Reason; strings.Contains(r, "PodMonitor") {
		t.Errorf("create without a PodMonitor: %q", r)
	}

	head := mustLoad(t, with)
	if !NeedsPodMonitor(head) || NeedsPodMonitor(mustLoad(t, plain)) || NeedsPodMonitor(nil) {
		t.Error("NeedsPodMonitor")
	}
	for _, tc := range []struct {
		name string
		kind APIKind
		want string
	}{
		{"not asked", APIKind{}, ""},
		{"served", APIKind{Checked: true, Served: true}, ""},
		{"not served", APIKind{Checked: true}, "c0.yaml:14:23: spec.monitoring.enablePodMonitor: the API server has no PodMonitor kind (monitoring.coreos.com/v1): install the Prometheus Operator's CRDs or set enablePodMonitor: false"},
		{"unknown", APIKind{Checked: true, Err: "connection refused"}, "c0.yaml:14:23: spec.monitoring.enablePodMonitor: cannot tell whether the API server serves the PodMonitor kind (monitoring.coreos.com/v1): connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, base := range []string{"", plain, with} {
				observed := Observed{PodMonitorKind: tc.kind}
				if base != "" {
					observed.Clusters = Converged(mustLoad(t, base)).Clusters
				}
				_, err := Make(head, observed, Options{})
				got := ""
				if err != nil {
					got = err.Error()
				}
				if got != tc.want {
					t.Errorf("base %t: %q, want %q", base != "", got, tc.want)
				}
				if errs, ok := err.(cluster.Errors); err != nil && !ok {
					t.Errorf("not positioned: %T %v", err, errs)
				}
				// Another cluster is planned whatever was found.
				if _, err := Make(mustLoad(t, plain), observed, Options{}); err != nil {
					t.Errorf("a cluster without enablePodMonitor: %v", err)
				}
			}
		})
	}
}
