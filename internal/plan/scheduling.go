package plan

import "github.com/pgsync/pgsync/internal/cluster"

// schedulingChanges names the pod-level settings (imagePullSecrets,
// priorityClassName, schedulerName, topologySpreadConstraints, node and
// additional pod (anti-)affinity, ephemeralVolumesSizeLimit) that differ:
// each is a field of the pod template, which the instances take only by
// being re-created, so a restart's reason names it.
func schedulingChanges(before, after *cluster.Cluster) []string {
	b, a := &before.Spec, &after.Spec
	var what []string
	for _, f := range []struct {
		name string
		b, a any
	}{
		{"imagePullSecrets", b.ImagePullSecrets, a.ImagePullSecrets},
		{"priorityClassName", b.PriorityClassName, a.PriorityClassName},
		{"schedulerName", b.SchedulerName, a.SchedulerName},
		{"topologySpreadConstraints", b.TopologySpreadConstraints, a.TopologySpreadConstraints},
		{"affinity.nodeAffinity", b.Affinity.NodeAffinity, a.Affinity.NodeAffinity},
		{"affinity.additionalPodAffinity", b.Affinity.AdditionalPodAffinity, a.Affinity.AdditionalPodAffinity},
		{"affinity.additionalPodAntiAffinity", b.Affinity.AdditionalPodAntiAffinity, a.Affinity.AdditionalPodAntiAffinity},
		{"ephemeralVolumesSizeLimit", b.EphemeralVolumesSizeLimit, a.EphemeralVolumesSizeLimit},
	} {
		if !jsonEqual(f.b, f.a) {
			what = append(what, f.name)
		}
	}
	return what
}

// ownAffinity is spec.affinity without the fields schedulingChanges
// names, so that "affinity" in a reason means pgsync's own placement
// settings (anti-affinity, nodeSelector, tolerations).
func ownAffinity(c *cluster.Cluster) cluster.AffinityConfiguration {
	a := c.Spec.Affinity
	a.NodeAffinity, a.AdditionalPodAffinity, a.AdditionalPodAntiAffinity = nil, nil, nil
	return a
}
