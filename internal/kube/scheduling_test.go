package kube

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// schedulingYAML sets every pod-level setting of scheduling.go.
const schedulingYAML = `  imagePullSecrets: [{name: regcred}, {name: mirror}]
  priorityClassName: db-high
  schedulerName: my-scheduler
  ephemeralVolumesSizeLimit: {temporaryData: 256Mi}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: DoNotSchedule
      minDomains: 2
      nodeTaintsPolicy: Honor
      labelSelector: {matchLabels: {pgsync.io/cluster: web}}
`

const schedulingAffinity = `    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: cores, operator: Gt, values: ["3"]}]}]
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 10, preference: {matchFields: [{key: metadata.name, operator: NotIn, values: [node-9]}]}}
    additionalPodAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - {topologyKey: topology.kubernetes.io/zone, labelSelector: {matchLabels: {app: shop}}, namespaces: [front]}
    additionalPodAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - {topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: workload, operator: In, values: [analytics]}]}}
      preferredDuringSchedulingIgnoredDuringExecution:
        - {weight: 5, podAffinityTerm: {topologyKey: kubernetes.io/hostname, namespaceSelector: {}, labelSelector: {matchLabels: {app: batch}}, matchLabelKeys: [tier]}}
`

func withScheduling(y string) string {
	y = strings.Replace(y, "  affinity:\n", schedulingYAML+"  affinity:\n"+schedulingAffinity, 1)
	return y
}

// TestRenderScheduling: each pod-level setting lands in the pod template
// as CloudNativePG puts it; pgsync's own anti-affinity term stays first;
// a cluster setting none renders what it rendered before (no field set).
func TestRenderScheduling(t *testing.T) {
	own := corev1.WeightedPodAffinityTerm{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pgsync.io/cluster": "web"}},
		TopologyKey:   "kubernetes.io/hostname"}}
	limit := resource.MustParse("256Mi")
	for _, tc := range []struct {
		name string
		edit func(string) string
		got  func(s corev1.PodSpec) any
		want any
	}{
		{"unset: no pull Secrets", nil, func(s corev1.PodSpec) any { return s.ImagePullSecrets }, []corev1.LocalObjectReference(nil)},
		{"unset: default priority and scheduler", nil, func(s corev1.PodSpec) any { return s.PriorityClassName + "/" + s.SchedulerName }, "/"},
		{"unset: no spread constraints", nil, func(s corev1.PodSpec) any { return s.TopologySpreadConstraints }, []corev1.TopologySpreadConstraint(nil)},
		{"unset: only pgsync's anti-affinity", nil, func(s corev1.PodSpec) any { return s.Affinity },
			&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{own}}}},
		{"unset: no size limits", nil, func(s corev1.PodSpec) any {
			var out []*resource.Quantity
			for _, v := range s.Volumes {
				if v.EmptyDir != nil {
					out = append(out, v.EmptyDir.SizeLimit)
				}
			}
			return out
		}, []*resource.Quantity{nil, nil, nil}},
		{"imagePullSecrets in order", withScheduling, func(s corev1.PodSpec) any { return s.ImagePullSecrets },
			[]corev1.LocalObjectReference{{Name: "regcred"}, {Name: "mirror"}}},
		{"priorityClassName and schedulerName", withScheduling, func(s corev1.PodSpec) any { return s.PriorityClassName + "/" + s.SchedulerName }, "db-high/my-scheduler"},
		{"topologySpreadConstraints", withScheduling, func(s corev1.PodSpec) any { return s.TopologySpreadConstraints },
			[]corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
				MinDomains: ptr(int32(2)), NodeTaintsPolicy: ptr(corev1.NodeInclusionPolicyHonor),
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pgsync.io/cluster": "web"}}}}},
		{"temporaryData limits each scratch emptyDir", withScheduling, func(s corev1.PodSpec) any {
			out := map[string]string{}
			for _, v := range s.Volumes {
				if v.EmptyDir != nil {
					out[v.Name] = v.EmptyDir.SizeLimit.String()
				}
			}
			return out
		}, map[string]string{volController: limit.String(), volTmp: limit.String(), volRun: limit.String()}},
		{"nodeAffinity", withScheduling, func(s corev1.PodSpec) any { return s.Affinity.NodeAffinity }, &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "cores", Operator: corev1.NodeSelectorOpGt, Values: []string{"3"}}}}}},
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 10, Preference: corev1.NodeSelectorTerm{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"node-9"}}}}}}}},
		{"additionalPodAffinity", withScheduling, func(s corev1.PodSpec) any { return s.Affinity.PodAffinity }, &corev1.PodAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "topology.kubernetes.io/zone",
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}}, Namespaces: []string{"front"}}}}},
		{"additionalPodAntiAffinity after pgsync's own term", withScheduling, func(s corev1.PodSpec) any { return s.Affinity.PodAntiAffinity }, &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname",
				LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "workload", Operator: metav1.LabelSelectorOpIn, Values: []string{"analytics"}}}}}},
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{own, {Weight: 5, PodAffinityTerm: corev1.PodAffinityTerm{
				TopologyKey: "kubernetes.io/hostname", NamespaceSelector: &metav1.LabelSelector{}, MatchLabelKeys: []string{"tier"},
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}}}}}}},
		{"additionalPodAntiAffinity without pgsync's", func(y string) string {
			return strings.Replace(withScheduling(y), "  affinity:\n", "  affinity:\n    enablePodAntiAffinity: false\n", 1)
		}, func(s corev1.PodSpec) any {
			return len(s.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := render(t, loadCluster(t, tc.edit)).StatefulSet.Spec.Template.Spec
			if got := tc.got(s); !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}
