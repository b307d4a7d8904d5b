package cluster

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Pod-level settings CloudNativePG copies into every instance's pod:
// imagePullSecrets, priorityClassName, schedulerName,
// topologySpreadConstraints, the node and additional pod (anti-)affinity,
// and ephemeralVolumesSizeLimit. They are core/v1 shapes, checked here as
// the API server would check the pod, so that a mistake is reported at
// its line rather than by the StatefulSet controller failing to create
// pods.

// TopologySpreadConstraint is core/v1's.
type TopologySpreadConstraint struct {
	MaxSkew            int            `json:"maxSkew"`
	TopologyKey        string         `json:"topologyKey"`
	WhenUnsatisfiable  string         `json:"whenUnsatisfiable"`
	LabelSelector      *LabelSelector `json:"labelSelector"`
	MinDomains         *int           `json:"minDomains"`
	NodeAffinityPolicy *string        `json:"nodeAffinityPolicy"`
	NodeTaintsPolicy   *string        `json:"nodeTaintsPolicy"`
	MatchLabelKeys     []string       `json:"matchLabelKeys"`
}

// EphemeralVolumesSizeLimits is CloudNativePG's
// ephemeralVolumesSizeLimit. Its shm is refused (unsupported.go): the
// pods have no shared-memory volume.
type EphemeralVolumesSizeLimits struct {
	// TemporaryData limits each of the pod's scratch emptyDirs (/controller,
	// /tmp, /run), as CloudNativePG's scratch-data volume.
	TemporaryData *Quantity `json:"temporaryData"`
}

// NodeAffinity is core/v1's.
type NodeAffinity struct {
	Required  *NodeSelector             `json:"requiredDuringSchedulingIgnoredDuringExecution"`
	Preferred []PreferredSchedulingTerm `json:"preferredDuringSchedulingIgnoredDuringExecution"`
}

// NodeSelector is core/v1's: the terms are ORed.
type NodeSelector struct {
	NodeSelectorTerms []NodeSelectorTerm `json:"nodeSelectorTerms"`
}

// NodeSelectorTerm is core/v1's: the requirements are ANDed.
type NodeSelectorTerm struct {
	MatchExpressions []NodeSelectorRequirement `json:"matchExpressions"`
	MatchFields      []NodeSelectorRequirement `json:"matchFields"`
}

// NodeSelectorRequirement is core/v1's.
type NodeSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

// PreferredSchedulingTerm is core/v1's.
type PreferredSchedulingTerm struct {
	Weight     int              `json:"weight"`
	Preference NodeSelectorTerm `json:"preference"`
}

// PodAffinity is core/v1's PodAffinity and PodAntiAffinity (one shape).
type PodAffinity struct {
	Required  []PodAffinityTerm         `json:"requiredDuringSchedulingIgnoredDuringExecution"`
	Preferred []WeightedPodAffinityTerm `json:"preferredDuringSchedulingIgnoredDuringExecution"`
}

// PodAffinityTerm is core/v1's.
type PodAffinityTerm struct {
	LabelSelector     *LabelSelector `json:"labelSelector"`
	Namespaces        []string       `json:"namespaces"`
	TopologyKey       string         `json:"topologyKey"`
	NamespaceSelector *LabelSelector `json:"namespaceSelector"`
	MatchLabelKeys    []string       `json:"matchLabelKeys"`
	MismatchLabelKeys []string       `json:"mismatchLabelKeys"`
}

// WeightedPodAffinityTerm is core/v1's.
type WeightedPodAffinityTerm struct {
	Weight          int             `json:"weight"`
	PodAffinityTerm PodAffinityTerm `json:"podAffinityTerm"`
}

// validateScheduling checks the pod-level settings above, each problem at
// its field.
func validateScheduling(s *Spec, bad func(field, format string, args ...any)) {
	for i, r := range s.ImagePullSecrets {
		f := fmt.Sprintf("spec.imagePullSecrets[%d].name", i)
		switch {
		case r.Name == "":
			bad(f, "required: the name of a Secret of type kubernetes.io/dockerconfigjson in the cluster's namespace")
		case !dns1123Subdomain(r.Name):
			bad(f, "%q is not a valid Secret name", r.Name)
		}
	}
	if n := s.PriorityClassName; n != "" && !dns1123Subdomain(n) {
		bad("spec.priorityClassName", "%q is not a valid PriorityClass name", n)
	}
	if n := s.SchedulerName; n != "" && !dns1123Subdomain(n) {
		bad("spec.schedulerName", "%q is not a valid scheduler name (a DNS subdomain, as Kubernetes requires)", n)
	}
	type pair struct{ key, when string }
	seen := map[pair]int{}
	for i, t := range s.TopologySpreadConstraints {
		f := fmt.Sprintf("spec.topologySpreadConstraints[%d]", i)
		if t.MaxSkew < 1 {
			bad(f+".maxSkew", "must be at least 1 (got %d)", t.MaxSkew)
		}
		if t.TopologyKey == "" {
			bad(f+".topologyKey", "required: the node label whose values are the domains to spread over (e.g. topology.kubernetes.io/zone)")
		} else if !labelKey(t.TopologyKey) {
			bad(f+".topologyKey", "%q is not a valid label key", t.TopologyKey)
		}
		switch t.WhenUnsatisfiable {
		case "DoNotSchedule", "ScheduleAnyway":
		case "":
			bad(f+".whenUnsatisfiable", "required (allowed: DoNotSchedule, ScheduleAnyway)")
		default:
			bad(f+".whenUnsatisfiable", "invalid value %q (allowed: DoNotSchedule, ScheduleAnyway)", t.WhenUnsatisfiable)
		}
		if t.MinDomains != nil {
			if *t.MinDomains < 1 {
				bad(f+".minDomains", "must be at least 1 (got %d)", *t.MinDomains)
			} else if t.WhenUnsatisfiable != "DoNotSchedule" {
				bad(f+".minDomains", "only allowed with whenUnsatisfiable DoNotSchedule")
			}
		}
		for _, p := range []struct {
			name string
			v    *string
		}{{"nodeAffinityPolicy", t.NodeAffinityPolicy}, {"nodeTaintsPolicy", t.NodeTaintsPolicy}} {
			if p.v != nil && *p.v != "Honor" && *p.v != "Ignore" {
				bad(f+"."+p.name, "invalid value %q (allowed: Honor, Ignore)", *p.v)
			}
		}
		// Without a labelSelector the constraint counts no pod (as in
		// Kubernetes); the usual one selects the cluster's own pods
		// (docs/compat.md).
		if t.LabelSelector != nil {
			validateLabelSelector(f+".labelSelector", t.LabelSelector, bad)
		}
		matchLabelKeys(f+".matchLabelKeys", t.MatchLabelKeys, t.LabelSelector, bad)
		k := pair{t.TopologyKey, t.WhenUnsatisfiable}
		if j, dup := seen[k]; dup && t.TopologyKey != "" {
			bad(f, "duplicate of topologySpreadConstraints[%d]: the same topologyKey and whenUnsatisfiable (Kubernetes refuses the pod)", j)
		} else {
			seen[k] = i
		}
	}
	if l := s.EphemeralVolumesSizeLimit; l != nil && l.TemporaryData != nil {
		if q, err := l.TemporaryData.Parse(); err == nil && q.Sign() <= 0 {
			bad("spec.ephemeralVolumesSizeLimit.temporaryData", "must be greater than zero (got %s)", *l.TemporaryData)
		}
	}
	a := &s.Affinity
	if n := a.NodeAffinity; n != nil {
		const f = "spec.affinity.nodeAffinity"
		if r := n.Required; r != nil {
			if len(r.NodeSelectorTerms) == 0 {
				bad(f+".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "required: at least one term (the terms are ORed)")
			}
			for i, t := range r.NodeSelectorTerms {
				nodeSelectorTerm(fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[%d]", f, i), t, bad)
			}
		}
		for i, p := range n.Preferred {
			g := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", f, i)
			weight(g+".weight", p.Weight, bad)
			nodeSelectorTerm(g+".preference", p.Preference, bad)
		}
	}
	for _, pa := range []struct {
		field string
		p     *PodAffinity
	}{{"spec.affinity.additionalPodAffinity", a.AdditionalPodAffinity}, {"spec.affinity.additionalPodAntiAffinity", a.AdditionalPodAntiAffinity}} {
		if pa.p == nil {
			continue
		}
		for i, t := range pa.p.Required {
			podAffinityTerm(fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d]", pa.field, i), t, bad)
		}
		for i, w := range pa.p.Preferred {
			g := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", pa.field, i)
			weight(g+".weight", w.Weight, bad)
			podAffinityTerm(g+".podAffinityTerm", w.PodAffinityTerm, bad)
		}
	}
}

func weight(field string, w int, bad func(field, format string, args ...any)) {
	if w < 1 || w > 100 {
		bad(field, "must be between 1 and 100 (got %d)", w)
	}
}

func nodeSelectorTerm(field string, t NodeSelectorTerm, bad func(field, format string, args ...any)) {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		bad(field, "an empty term matches no node: give matchExpressions or matchFields")
	}
	req := func(f string, r NodeSelectorRequirement, fields bool) {
		if r.Key == "" {
			bad(f+".key", "required")
		} else if !fields && !labelKey(r.Key) {
			bad(f+".key", "%q is not a valid label key", r.Key)
		}
		switch r.Operator {
		case "In", "NotIn":
			if len(r.Values) == 0 {
				bad(f+".values", "required with operator %s", r.Operator)
			}
			if fields && len(r.Values) != 1 {
				bad(f+".values", "a field is matched against exactly one value (got %d)", len(r.Values))
			}
		case "Exists", "DoesNotExist", "Gt", "Lt":
			if fields {
				bad(f+".operator", "invalid value %q for a field (allowed: In, NotIn)", r.Operator)
				return
			}
			if r.Operator == "Exists" || r.Operator == "DoesNotExist" {
				if len(r.Values) > 0 {
					bad(f+".values", "must be empty with operator %s", r.Operator)
				}
				return
			}
			if len(r.Values) != 1 {
				bad(f+".values", "operator %s takes exactly one value, an integer (got %d)", r.Operator, len(r.Values))
			} else if !integer(r.Values[0]) {
				bad(f+".values[0]", "operator %s takes an integer (got %q)", r.Operator, r.Values[0])
			}
		default:
			allowed := "In, NotIn, Exists, DoesNotExist, Gt, Lt"
			if fields {
				allowed = "In, NotIn"
			}
			bad(f+".operator", "invalid value %q (allowed: %s)", r.Operator, allowed)
		}
	}
	for i, r := range t.MatchExpressions {
		req(fmt.Sprintf("%s.matchExpressions[%d]", field, i), r, false)
	}
	for i, r := range t.MatchFields {
		f := fmt.Sprintf("%s.matchFields[%d]", field, i)
		if r.Key != "" && r.Key != "metadata.name" {
			bad(f+".key", "invalid field %q (allowed: metadata.name)", r.Key)
		}
		req(f, r, true)
	}
}

func podAffinityTerm(field string, t PodAffinityTerm, bad func(field, format string, args ...any)) {
	if t.TopologyKey == "" {
		bad(field+".topologyKey", "required: the node label whose values are the domains (e.g. kubernetes.io/hostname)")
	} else if !labelKey(t.TopologyKey) {
		bad(field+".topologyKey", "%q is not a valid label key", t.TopologyKey)
	}
	if t.LabelSelector != nil {
		validateLabelSelector(field+".labelSelector", t.LabelSelector, bad)
	}
	if t.NamespaceSelector != nil {
		validateLabelSelector(field+".namespaceSelector", t.NamespaceSelector, bad)
	}
	for i, ns := range t.Namespaces {
		if len(ns) > 63 || !dns1123Label.MatchString(ns) {
			bad(fmt.Sprintf("%s.namespaces[%d]", field, i), "%q is not a valid namespace", ns)
		}
	}
	matchLabelKeys(field+".matchLabelKeys", t.MatchLabelKeys, t.LabelSelector, bad)
	matchLabelKeys(field+".mismatchLabelKeys", t.MismatchLabelKeys, t.LabelSelector, bad)
	for i, k := range t.MismatchLabelKeys {
		if slices.Contains(t.MatchLabelKeys, k) {
			bad(fmt.Sprintf("%s.mismatchLabelKeys[%d]", field, i), "%q is also in matchLabelKeys", k)
		}
	}
}

// matchLabelKeys checks a matchLabelKeys or mismatchLabelKeys list: label
// keys, each also absent from the selector (Kubernetes' rule), and only
// with a selector.
func matchLabelKeys(field string, keys []string, sel *LabelSelector, bad func(field, format string, args ...any)) {
	for i, k := range keys {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !labelKey(k):
			bad(f, "%q is not a valid label key", k)
		case sel == nil:
			bad(f, "needs labelSelector: the keys add to it")
		default:
			_, inLabels := sel.MatchLabels[k]
			inExpr := slices.ContainsFunc(sel.MatchExpressions, func(e LabelSelectorRequirement) bool { return e.Key == k })
			if inLabels || inExpr {
				bad(f, "%q is also in labelSelector (Kubernetes refuses the pod)", k)
			}
		}
	}
}

// validateLabelSelector checks a metav1.LabelSelector.
func validateLabelSelector(field string, sel *LabelSelector, bad func(field, format string, args ...any)) {
	for _, k := range sortedKeys(sel.MatchLabels) {
		if !labelKey(k) {
			bad(field+".matchLabels."+k, "%q is not a valid label key", k)
		} else if !labelValue(sel.MatchLabels[k]) {
			bad(field+".matchLabels."+k, "%q is not a valid label value", sel.MatchLabels[k])
		}
	}
	for i, e := range sel.MatchExpressions {
		f := fmt.Sprintf("%s.matchExpressions[%d]", field, i)
		if e.Key == "" {
			bad(f+".key", "required")
		} else if !labelKey(e.Key) {
			bad(f+".key", "%q is not a valid label key", e.Key)
		}
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				bad(f+".values", "required with operator %s", e.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				bad(f+".values", "must be empty with operator %s", e.Operator)
			}
		default:
			bad(f+".operator", "invalid value %q (allowed: In, NotIn, Exists, DoesNotExist)", e.Operator)
		}
	}
}

func integer(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func labelKey(k string) bool   { return len(validation.IsQualifiedName(k)) == 0 }
func labelValue(v string) bool { return len(validation.IsValidLabelValue(v)) == 0 }

// schedulingWarnings warns of a selector of the pods' placement that
// names one of CloudNativePG's pod labels (cnpg.io/cluster,
// cnpg.io/instanceRole, …): a file moved over from CloudNativePG selects
// its pods so, but pgsync's pods carry pgsync.io/ labels, so the term
// matches none of them — valid, and silently not what was meant.
func schedulingWarnings(c *Cluster) []Diagnostic {
	var out []Diagnostic
	check := func(field string, sel *LabelSelector) {
		if sel == nil {
			return
		}
		warn := func(f, key string) {
			out = append(out, Diagnostic{Pos: c.Pos(f), Field: f, Message: fmt.Sprintf(
				"%q is a label of CloudNativePG's pods, which pgsync's pods do not carry: this selects none of them (the cluster's pods carry pgsync.io/cluster: %s)", key, c.Metadata.Name)})
		}
		for _, k := range sortedKeys(sel.MatchLabels) {
			if cnpgLabel(k) {
				warn(field+".matchLabels."+k, k)
			}
		}
		for i, e := range sel.MatchExpressions {
			if cnpgLabel(e.Key) {
				warn(fmt.Sprintf("%s.matchExpressions[%d].key", field, i), e.Key)
			}
		}
	}
	s := &c.Spec
	for i, t := range s.TopologySpreadConstraints {
		check(fmt.Sprintf("spec.topologySpreadConstraints[%d].labelSelector", i), t.LabelSelector)
	}
	for _, pa := range []struct {
		field string
		p     *PodAffinity
	}{{"spec.affinity.additionalPodAffinity", s.Affinity.AdditionalPodAffinity}, {"spec.affinity.additionalPodAntiAffinity", s.Affinity.AdditionalPodAntiAffinity}} {
		if pa.p == nil {
			continue
		}
		for i, t := range pa.p.Required {
			check(fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d].labelSelector", pa.field, i), t.LabelSelector)
		}
		for i, w := range pa.p.Preferred {
			check(fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d].podAffinityTerm.labelSelector", pa.field, i), w.PodAffinityTerm.LabelSelector)
		}
	}
	return out
}

func cnpgLabel(k string) bool {
	return strings.HasPrefix(k, "cnpg.io/") || strings.HasPrefix(k, "k8s.enterprisedb.io/")
}
