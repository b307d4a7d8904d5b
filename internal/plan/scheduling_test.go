package plan

import (
	"fmt"
	"strings"
	"testing"
)

// TestSchedulingChangeRollsInstances: changing a pod-level setting of a
// converged cluster (the pod template of an OnDelete StatefulSet) rolls
// every instance, standbys first, each step's reason naming the field;
// a cluster that writes none of them, planned against itself, does nothing.
func TestSchedulingChangeRollsInstances(t *testing.T) {
	for _, tc := range []struct {
		field, before, after string
	}{
		{"imagePullSecrets", "", "  imagePullSecrets: [{name: regcred}]\n"},
		{"priorityClassName", "", "  priorityClassName: db-high\n"},
		{"schedulerName", "  schedulerName: a\n", "  schedulerName: b\n"},
		{"topologySpreadConstraints", "", "  topologySpreadConstraints:\n  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {pgsync.io/cluster: website}}}\n"},
		{"affinity.nodeAffinity", "", "  affinity:\n    nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: Exists}]}]}}\n"},
		{"affinity.additionalPodAffinity", "", "  affinity:\n    additionalPodAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: shop}}}]}\n"},
		{"affinity.additionalPodAntiAffinity", "", "  affinity:\n    additionalPodAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: batch}}}]}\n"},
		{"ephemeralVolumesSizeLimit", "", "  ephemeralVolumesSizeLimit: {temporaryData: 1Gi}\n"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			img := "localhost:5000/postgresql:15.18"
			observed := Converged(mustLoad(t, website(img, 3, tc.before)))
			p, err := Make(mustLoad(t, website(img, 3, tc.after)), observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range p.Clusters[0].Steps {
				got = append(got, fmt.Sprintf("%s %s", s.Action, s.Instance))
				if s.Action == StepRestartInstance && !strings.Contains(s.Reason, "restart for "+tc.field) {
					t.Errorf("%s %s: reason %q does not name %s", s.Action, s.Instance, s.Reason, tc.field)
				}
			}
			restarts := strings.Count(strings.Join(got, "\n"), string(StepRestartInstance))
			if restarts != 3 {
				t.Errorf("steps %q: %d restarts, want every instance's (3)", got, restarts)
			}
			same, err := Make(mustLoad(t, website(img, 3, tc.before)), observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if same.HasChanges() {
				t.Errorf("unchanged cluster plans %+v", same.Clusters[0].Steps)
			}
		})
	}
}
