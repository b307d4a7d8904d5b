package contract

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
)

// The effects of the pod-level settings (imagePullSecrets,
// priorityClassName, schedulerName, topologySpreadConstraints, node and
// additional pod (anti-)affinity, ephemeralVolumesSizeLimit): each leaf
// is changed from schedulingBase, which sets every one of them, and the
// rendered pod field it lands in (as JSON, so a leaf not copied leaves it
// unchanged) must change. TestEveryFieldHasAnEffect compares against
// baseSpec, which sets none; TestSchedulingLeavesHaveEffects compares
// against schedulingBase itself, which catches a leaf that is not
// rendered. The restart that carries a change to the pods is
// internal/plan's TestSchedulingChangeRollsInstances.
var schedulingEffects = map[string]func(s *cluster.Spec){}

// schedulingBase sets every pod-level setting to a valid value.
func schedulingBase(s *cluster.Spec) {
	s.ImagePullSecrets = []cluster.LocalObjectReference{{Name: "regcred"}}
	s.PriorityClassName = "db-high"
	s.SchedulerName = "my-scheduler"
	s.EphemeralVolumesSizeLimit = &cluster.EphemeralVolumesSizeLimits{TemporaryData: ptr(cluster.Quantity("1Gi"))}
	s.TopologySpreadConstraints = []cluster.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: "DoNotSchedule",
		LabelSelector: &cluster.LabelSelector{MatchLabels: map[string]string{"pgsync.io/cluster": "fx"},
			MatchExpressions: []cluster.LabelSelectorRequirement{{Key: "role", Operator: "In", Values: []string{"primary"}}}},
		MinDomains: ptr(2), NodeAffinityPolicy: ptr("Honor"), NodeTaintsPolicy: ptr("Ignore"), MatchLabelKeys: []string{"rev"},
	}}
	nodeTerm := func() cluster.NodeSelectorTerm {
		return cluster.NodeSelectorTerm{
			MatchExpressions: []cluster.NodeSelectorRequirement{{Key: "pool", Operator: "In", Values: []string{"db"}}},
			MatchFields:      []cluster.NodeSelectorRequirement{{Key: "metadata.name", Operator: "NotIn", Values: []string{"node-9"}}},
		}
	}
	s.Affinity.NodeAffinity = &cluster.NodeAffinity{
		Required:  &cluster.NodeSelector{NodeSelectorTerms: []cluster.NodeSelectorTerm{nodeTerm()}},
		Preferred: []cluster.PreferredSchedulingTerm{{Weight: 10, Preference: nodeTerm()}},
	}
	podTerm := func() cluster.PodAffinityTerm {
		return cluster.PodAffinityTerm{
			LabelSelector: &cluster.LabelSelector{MatchLabels: map[string]string{"app": "shop"},
				MatchExpressions: []cluster.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"web"}}}},
			NamespaceSelector: &cluster.LabelSelector{MatchLabels: map[string]string{"team": "a"},
				MatchExpressions: []cluster.LabelSelectorRequirement{{Key: "env", Operator: "In", Values: []string{"prod"}}}},
			Namespaces: []string{"front"}, TopologyKey: "kubernetes.io/hostname",
			MatchLabelKeys: []string{"rev"}, MismatchLabelKeys: []string{"gen"},
		}
	}
	pod := func() *cluster.PodAffinity {
		return &cluster.PodAffinity{Required: []cluster.PodAffinityTerm{podTerm()},
			Preferred: []cluster.WeightedPodAffinityTerm{{Weight: 20, PodAffinityTerm: podTerm()}}}
	}
	s.Affinity.AdditionalPodAffinity, s.Affinity.AdditionalPodAntiAffinity = pod(), pod()
}

func init() {
	leaf := func(path string, f func(s *cluster.Spec)) { schedulingEffects[path] = f }
	leaf("spec.imagePullSecrets[].name", func(s *cluster.Spec) { s.ImagePullSecrets[0].Name = "mirror" })
	leaf("spec.priorityClassName", func(s *cluster.Spec) { s.PriorityClassName = "db-low" })
	leaf("spec.schedulerName", func(s *cluster.Spec) { s.SchedulerName = "other" })
	leaf("spec.ephemeralVolumesSizeLimit.temporaryData", func(s *cluster.Spec) {
		s.EphemeralVolumesSizeLimit.TemporaryData = ptr(cluster.Quantity("2Gi"))
	})
	selector := func(prefix string, sel func(s *cluster.Spec) *cluster.LabelSelector) {
		leaf(prefix+".matchLabels", func(s *cluster.Spec) { sel(s).MatchLabels = map[string]string{"other": "x"} })
		leaf(prefix+".matchExpressions[].key", func(s *cluster.Spec) { sel(s).MatchExpressions[0].Key = "other" })
		leaf(prefix+".matchExpressions[].operator", func(s *cluster.Spec) { sel(s).MatchExpressions[0].Operator = "NotIn" })
		leaf(prefix+".matchExpressions[].values", func(s *cluster.Spec) { sel(s).MatchExpressions[0].Values = []string{"z"} })
	}
	tsc := func(s *cluster.Spec) *cluster.TopologySpreadConstraint { return &s.TopologySpreadConstraints[0] }
	const t = "spec.topologySpreadConstraints[]."
	leaf(t+"maxSkew", func(s *cluster.Spec) { tsc(s).MaxSkew = 2 })
	leaf(t+"topologyKey", func(s *cluster.Spec) { tsc(s).TopologyKey = "topology.kubernetes.io/region" })
	leaf(t+"whenUnsatisfiable", func(s *cluster.Spec) { tsc(s).WhenUnsatisfiable, tsc(s).MinDomains = "ScheduleAnyway", nil })
	leaf(t+"minDomains", func(s *cluster.Spec) { tsc(s).MinDomains = ptr(3) })
	leaf(t+"nodeAffinityPolicy", func(s *cluster.Spec) { tsc(s).NodeAffinityPolicy = ptr("Ignore") })
	leaf(t+"nodeTaintsPolicy", func(s *cluster.Spec) { tsc(s).NodeTaintsPolicy = ptr("Honor") })
	leaf(t+"matchLabelKeys", func(s *cluster.Spec) { tsc(s).MatchLabelKeys = []string{"rev2"} })
	selector(t+"labelSelector", func(s *cluster.Spec) *cluster.LabelSelector { return tsc(s).LabelSelector })

	const n = "spec.affinity.nodeAffinity."
	nodeTerm := func(prefix string, term func(s *cluster.Spec) *cluster.NodeSelectorTerm) {
		leaf(prefix+".matchExpressions[].key", func(s *cluster.Spec) { term(s).MatchExpressions[0].Key = "pool2" })
		leaf(prefix+".matchExpressions[].operator", func(s *cluster.Spec) { term(s).MatchExpressions[0].Operator = "NotIn" })
		leaf(prefix+".matchExpressions[].values", func(s *cluster.Spec) { term(s).MatchExpressions[0].Values = []string{"olap"} })
		// metadata.name is the only field a node selector matches:
		// another key is refused, so the key has no other effect.
		refusals[prefix+".matchFields[].key"] = func(s *cluster.Spec) { schedulingBase(s); term(s).MatchFields[0].Key = "metadata.uid" }
		leaf(prefix+".matchFields[].operator", func(s *cluster.Spec) { term(s).MatchFields[0].Operator = "In" })
		leaf(prefix+".matchFields[].values", func(s *cluster.Spec) { term(s).MatchFields[0].Values = []string{"node-8"} })
	}
	nodeTerm(n+"requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[]", func(s *cluster.Spec) *cluster.NodeSelectorTerm {
		return &s.Affinity.NodeAffinity.Required.NodeSelectorTerms[0]
	})
	leaf(n+"preferredDuringSchedulingIgnoredDuringExecution[].weight", func(s *cluster.Spec) { s.Affinity.NodeAffinity.Preferred[0].Weight = 11 })
	nodeTerm(n+"preferredDuringSchedulingIgnoredDuringExecution[].preference", func(s *cluster.Spec) *cluster.NodeSelectorTerm {
		return &s.Affinity.NodeAffinity.Preferred[0].Preference
	})

	for name, get := range map[string]func(s *cluster.Spec) *cluster.PodAffinity{
		"additionalPodAffinity":     func(s *cluster.Spec) *cluster.PodAffinity { return s.Affinity.AdditionalPodAffinity },
		"additionalPodAntiAffinity": func(s *cluster.Spec) *cluster.PodAffinity { return s.Affinity.AdditionalPodAntiAffinity },
	} {
		p := "spec.affinity." + name + "."
		podTerm := func(prefix string, term func(s *cluster.Spec) *cluster.PodAffinityTerm) {
			selector(prefix+"labelSelector", func(s *cluster.Spec) *cluster.LabelSelector { return term(s).LabelSelector })
			selector(prefix+"namespaceSelector", func(s *cluster.Spec) *cluster.LabelSelector { return term(s).NamespaceSelector })
			leaf(prefix+"namespaces", func(s *cluster.Spec) { term(s).Namespaces = []string{"back"} })
			leaf(prefix+"topologyKey", func(s *cluster.Spec) { term(s).TopologyKey = "topology.kubernetes.io/zone" })
			leaf(prefix+"matchLabelKeys", func(s *cluster.Spec) { term(s).MatchLabelKeys = []string{"rev2"} })
			leaf(prefix+"mismatchLabelKeys", func(s *cluster.Spec) { term(s).MismatchLabelKeys = []string{"gen2"} })
		}
		podTerm(p+"requiredDuringSchedulingIgnoredDuringExecution[].", func(s *cluster.Spec) *cluster.PodAffinityTerm { return &get(s).Required[0] })
		leaf(p+"preferredDuringSchedulingIgnoredDuringExecution[].weight", func(s *cluster.Spec) { get(s).Preferred[0].Weight = 21 })
		podTerm(p+"preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.", func(s *cluster.Spec) *cluster.PodAffinityTerm {
			return &get(s).Preferred[0].PodAffinityTerm
		})
	}

	for path, f := range schedulingEffects {
		if _, dup := effects[path]; dup {
			panic("two effects entries for " + path)
		}
		effects[path] = effect{
			where:  "the pod template's " + schedulingTarget(path) + " (TestSchedulingLeavesHaveEffects; TestAPIScheduling admits it)",
			set:    func(s *cluster.Spec) { schedulingBase(s); f(s) },
			render: schedulingRendered,
		}
	}
}

// schedulingTarget names the pod field a path lands in.
func schedulingTarget(path string) string {
	switch {
	case strings.HasPrefix(path, "spec.affinity."):
		return "affinity"
	case strings.HasPrefix(path, "spec.ephemeralVolumesSizeLimit."):
		return "emptyDir sizeLimits"
	}
	p := strings.TrimPrefix(path, "spec.")
	p, _, _ = strings.Cut(p, "[")
	p, _, _ = strings.Cut(p, ".")
	return p
}

// schedulingRendered is every pod field the settings land in, as JSON.
func schedulingRendered(o *kube.Objects) any {
	s := podSpec(o)
	raw, err := json.Marshal([]any{s.ImagePullSecrets, s.PriorityClassName, s.SchedulerName, s.TopologySpreadConstraints, s.Affinity, s.Volumes})
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// TestSchedulingLeavesHaveEffects: changing any one leaf of the pod-level
// settings from schedulingBase changes the rendered pod.
func TestSchedulingLeavesHaveEffects(t *testing.T) {
	base := withSpec(t, load(t, []byte(baseSpec)), schedulingBase)
	before := schedulingRendered(render(t, base))
	for _, p := range sortedKeys(schedulingEffects) {
		t.Run(p, func(t *testing.T) {
			after := schedulingRendered(render(t, withSpec(t, base, schedulingEffects[p])))
			if reflect.DeepEqual(before, after) {
				t.Errorf("changing %s leaves the rendered pod's %s unchanged", p, schedulingTarget(p))
			}
		})
	}
}
