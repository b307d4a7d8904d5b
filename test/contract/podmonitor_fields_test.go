package contract

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
)

// spec.monitoring.enablePodMonitor renders the PodMonitor NAME, and each
// field of its relabelings lands in the PodMonitor's endpoint
// (internal/kube TestRenderPodMonitor; applied, changed and pruned by
// internal/apply TestPodMonitorAPI).
func init() {
	effects["spec.monitoring.enablePodMonitor"] = effect{
		where: "the PodMonitor NAME (internal/kube TestRenderPodMonitor, internal/apply TestPodMonitorAPI)",
		set: func(s *cluster.Spec) {
			s.Monitoring = &cluster.MonitoringConfiguration{EnablePodMonitor: true}
		},
		render: func(o *kube.Objects) any { return o.PodMonitor != nil },
	}
	str := func(v string) *string { return &v }
	for _, list := range []struct{ field, key string }{
		{"podMonitorRelabelings", "relabelings"}, {"podMonitorMetricRelabelings", "metricRelabelings"},
	} {
		for field, rc := range map[string]cluster.RelabelConfig{
			"sourceLabels": {SourceLabels: []string{"a"}, TargetLabel: "b"},
			"separator":    {SourceLabels: []string{"a", "b"}, Separator: str("/"), TargetLabel: "c"},
			"targetLabel":  {TargetLabel: "b"},
			"regex":        {SourceLabels: []string{"a"}, Regex: "x.*", Action: "keep"},
			"modulus":      {SourceLabels: []string{"a"}, TargetLabel: "shard", Modulus: 4, Action: "hashmod"},
			"replacement":  {TargetLabel: "b", Replacement: str("x")},
			"action":       {SourceLabels: []string{"a"}, Action: "drop"},
		} {
			effects["spec.monitoring."+list.field+"[]."+field] = effect{
				where: "the PodMonitor's podMetricsEndpoints[0]." + list.key + "[]." + field + " (internal/kube TestRenderPodMonitor)",
				set: func(s *cluster.Spec) {
					m := &cluster.MonitoringConfiguration{EnablePodMonitor: true}
					if list.key == "relabelings" {
						m.PodMonitorRelabelings = []cluster.RelabelConfig{rc}
					} else {
						m.PodMonitorMetricRelabelings = []cluster.RelabelConfig{rc}
					}
					s.Monitoring = m
				},
				render: func(o *kube.Objects) any {
					if o.PodMonitor == nil {
						return nil
					}
					eps, _, _ := unstructured.NestedSlice(o.PodMonitor.Object, "spec", "podMetricsEndpoints")
					rcs, _ := eps[0].(map[string]any)[list.key].([]any)
					if len(rcs) == 0 {
						return nil
					}
					return rcs[0].(map[string]any)[field]
				},
			}
		}
	}
}
