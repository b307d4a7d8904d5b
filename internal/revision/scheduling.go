package revision

import (
	"encoding/json"
	"strconv"

	"github.com/pgsync/pgsync/internal/cluster"
)

// addScheduling encodes the pod-level settings CloudNativePG copies into
// the pods (imagePullSecrets, priorityClassName, schedulerName,
// topologySpreadConstraints, node and additional pod (anti-)affinity,
// ephemeralVolumesSizeLimit) into the restart revision: they are fields of
// the pod template, which an OnDelete StatefulSet gives a pod only when it
// is re-created. Each is omitted when not set (invariant 8); the
// structured ones are one line of JSON each (struct fields in order, map
// keys sorted: deterministic), lists by index (Kubernetes keeps them in
// order).
func addScheduling(f *fields, s *cluster.Spec) {
	for i, r := range s.ImagePullSecrets {
		f.add("imagePullSecrets["+strconv.Itoa(i)+"]", r.Name)
	}
	f.addUnlessDefault("priorityClassName", s.PriorityClassName, "")
	f.addUnlessDefault("schedulerName", s.SchedulerName, "")
	for i, t := range s.TopologySpreadConstraints {
		f.add("topologySpreadConstraints["+strconv.Itoa(i)+"]", jsonLine(t))
	}
	a := s.Affinity
	if a.NodeAffinity != nil {
		f.add("affinity.nodeAffinity", jsonLine(a.NodeAffinity))
	}
	if a.AdditionalPodAffinity != nil {
		f.add("affinity.additionalPodAffinity", jsonLine(a.AdditionalPodAffinity))
	}
	if a.AdditionalPodAntiAffinity != nil {
		f.add("affinity.additionalPodAntiAffinity", jsonLine(a.AdditionalPodAntiAffinity))
	}
	if l := s.EphemeralVolumesSizeLimit; l != nil && l.TemporaryData != nil {
		f.add("ephemeralVolumesSizeLimit.temporaryData", canonical(*l.TemporaryData))
	}
}

func jsonLine(v any) string {
	raw, _ := json.Marshal(v) // strings, ints, maps of strings: cannot fail
	return string(raw)
}
