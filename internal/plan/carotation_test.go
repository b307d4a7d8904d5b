package plan

import (
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// A year before the newest CA generation expires the plan creates the
// next one; pods that cannot mount it are re-created (the primary by
// switchover), and nothing else restarts.
func TestPlanRotatesTheCA(t *testing.T) {
	c := mustLoad(t, website(img131, 3))[0]
	observed := func(mounted int, due bool, newest ...int) Observed {
		o := Converged([]*cluster.Cluster{c})
		for i := range o.Clusters[0].Instances {
			o.Clusters[0].Instances[i].CA = &ObservedCA{Mounted: mounted, Newest: newest[i], RotationDue: due}
		}
		return o
	}
	tests := []struct {
		name     string
		o        Observed
		steps    []string
		warning  string
		reasonOf map[string]string
	}{
		{"not due", observed(4, false, 1, 1, 1), nil, "", nil},
		{"due: create generation 2", observed(4, true, 1, 1, 1), []string{"rotate-ca  website-ca → website-ca-2"}, "", nil},
		{"generation 2 created, one pod has not seen it yet", func() Observed {
			o := observed(4, false, 2, 2, 1)
			o.Clusters[0].Instances[2].CA.RotationDue = true
			return o
		}(), nil, "", nil},
		{"due, pods from before rotation", observed(1, true, 1, 1, 1), []string{
			"rotate-ca  website-ca → website-ca-2",
			"restart-instance website-2 standby", "restart-instance website-1 standby",
			"switchover website-0 website-0 → website-1", "restart-instance website-0 standby"},
			"", map[string]string{"website-2": "its pod mounts 1 of the CA's generations"}},
		{"the last generation is due", observed(4, true, 4, 4, 4), nil, "the last of the 4 generations", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Make([]*cluster.Cluster{c}, tt.o, Options{})
			if err != nil {
				t.Fatal(err)
			}
			cp := p.Clusters[0]
			var got []string
			for _, s := range cp.Steps {
				line := string(s.Action) + " " + s.Instance
				if s.Action == StepRotateCA || s.Action == StepSwitchover {
					line += " " + s.From + " → " + s.To
				} else {
					line += " " + string(s.Role)
				}
				got = append(got, line)
			}
			if strings.Join(got, "; ") != strings.Join(tt.steps, "; ") {
				t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.steps, "\n  "))
			}
			for instance, want := range tt.reasonOf {
				for _, s := range cp.Steps {
					if s.Instance == instance && !strings.Contains(s.Reason, want) {
						t.Errorf("%s: reason %q, want %q", instance, s.Reason, want)
					}
				}
			}
			warned := strings.Join(cp.Warnings, "\n")
			if tt.warning != "" && !strings.Contains(warned, tt.warning) {
				t.Errorf("warnings %q, want %q", cp.Warnings, tt.warning)
			}
			if len(tt.steps) == 0 && tt.warning == "" && cp.Action != ActionNoOp {
				t.Errorf("action %s, want no-op", cp.Action)
			}
		})
	}
}
