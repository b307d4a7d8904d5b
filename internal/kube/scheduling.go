package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
)

// applyScheduling copies the pod-level settings CloudNativePG passes to
// its pods into spec: imagePullSecrets, priorityClassName, schedulerName,
// topologySpreadConstraints, the node and additional pod (anti-)affinity
// merged into pgsync's own anti-affinity, and the scratch emptyDirs' size
// limit. A cluster setting none of them gets spec unchanged (invariant 8:
// an upgrade re-creates no pod). Validation has checked every value.
func applyScheduling(c *cluster.Cluster, spec *corev1.PodSpec) {
	s := &c.Spec
	for _, r := range s.ImagePullSecrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: r.Name})
	}
	spec.PriorityClassName = s.PriorityClassName
	spec.SchedulerName = s.SchedulerName
	for _, t := range s.TopologySpreadConstraints {
		ct := corev1.TopologySpreadConstraint{
			MaxSkew:           int32(t.MaxSkew),
			TopologyKey:       t.TopologyKey,
			WhenUnsatisfiable: corev1.UnsatisfiableConstraintAction(t.WhenUnsatisfiable),
			LabelSelector:     labelSelector(t.LabelSelector),
			MatchLabelKeys:    t.MatchLabelKeys,
		}
		if t.MinDomains != nil {
			ct.MinDomains = ptr(int32(*t.MinDomains))
		}
		if p := t.NodeAffinityPolicy; p != nil {
			ct.NodeAffinityPolicy = ptr(corev1.NodeInclusionPolicy(*p))
		}
		if p := t.NodeTaintsPolicy; p != nil {
			ct.NodeTaintsPolicy = ptr(corev1.NodeInclusionPolicy(*p))
		}
		spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, ct)
	}
	spec.Affinity = mergeAffinity(s.Affinity, spec.Affinity)
	if l := s.EphemeralVolumesSizeLimit; l != nil && l.TemporaryData != nil {
		q, _ := l.TemporaryData.Parse() // decoding checked it
		for i := range spec.Volumes {
			switch v := &spec.Volumes[i]; v.Name {
			case volController, volTmp, volRun:
				v.EmptyDir.SizeLimit = &q
			}
		}
	}
}

// mergeAffinity adds the user's node affinity, pod affinity and
// additional anti-affinity terms to pgsync's (own, nil when
// enablePodAntiAffinity is false), as CloudNativePG: pgsync's terms stay
// first.
func mergeAffinity(a cluster.AffinityConfiguration, own *corev1.Affinity) *corev1.Affinity {
	if a.NodeAffinity == nil && a.AdditionalPodAffinity == nil && a.AdditionalPodAntiAffinity == nil {
		return own
	}
	out := &corev1.Affinity{}
	if own != nil {
		out = own.DeepCopy()
	}
	if n := a.NodeAffinity; n != nil {
		na := &corev1.NodeAffinity{}
		if r := n.Required; r != nil {
			na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
			for _, t := range r.NodeSelectorTerms {
				na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(
					na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, nodeSelectorTerm(t))
			}
		}
		for _, p := range n.Preferred {
			na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
				corev1.PreferredSchedulingTerm{Weight: int32(p.Weight), Preference: nodeSelectorTerm(p.Preference)})
		}
		out.NodeAffinity = na
	}
	if p := a.AdditionalPodAffinity; p != nil {
		req, pref := podAffinityTerms(p)
		out.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: req,
			PreferredDuringSchedulingIgnoredDuringExecution: pref}
	}
	if p := a.AdditionalPodAntiAffinity; p != nil {
		req, pref := podAffinityTerms(p)
		if out.PodAntiAffinity == nil {
			out.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		anti := out.PodAntiAffinity
		anti.RequiredDuringSchedulingIgnoredDuringExecution = append(anti.RequiredDuringSchedulingIgnoredDuringExecution, req...)
		anti.PreferredDuringSchedulingIgnoredDuringExecution = append(anti.PreferredDuringSchedulingIgnoredDuringExecution, pref...)
	}
	return out
}

func nodeSelectorTerm(t cluster.NodeSelectorTerm) corev1.NodeSelectorTerm {
	reqs := func(rs []cluster.NodeSelectorRequirement) []corev1.NodeSelectorRequirement {
		var out []corev1.NodeSelectorRequirement
		for _, r := range rs {
			out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOperator(r.Operator), Values: r.Values})
		}
		return out
	}
	return corev1.NodeSelectorTerm{MatchExpressions: reqs(t.MatchExpressions), MatchFields: reqs(t.MatchFields)}
}

func podAffinityTerms(p *cluster.PodAffinity) ([]corev1.PodAffinityTerm, []corev1.WeightedPodAffinityTerm) {
	term := func(t cluster.PodAffinityTerm) corev1.PodAffinityTerm {
		return corev1.PodAffinityTerm{
			LabelSelector:     labelSelector(t.LabelSelector),
			Namespaces:        t.Namespaces,
			TopologyKey:       t.TopologyKey,
			NamespaceSelector: labelSelector(t.NamespaceSelector),
			MatchLabelKeys:    t.MatchLabelKeys,
			MismatchLabelKeys: t.MismatchLabelKeys,
		}
	}
	var req []corev1.PodAffinityTerm
	var pref []corev1.WeightedPodAffinityTerm
	for _, t := range p.Required {
		req = append(req, term(t))
	}
	for _, w := range p.Preferred {
		pref = append(pref, corev1.WeightedPodAffinityTerm{Weight: int32(w.Weight), PodAffinityTerm: term(w.PodAffinityTerm)})
	}
	return req, pref
}

func labelSelector(s *cluster.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: e.Key,
			Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	return out
}
