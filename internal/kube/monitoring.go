package kube

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// metricsQuerySources are spec.monitoring's custom queries as projected
// files: the ConfigMaps' first, then the Secrets', each in the Cluster
// file's order (the order the manager reads them in).
type metricsQuerySource struct {
	kind, name, key string
}

func metricsQuerySources(c *cluster.Cluster) []metricsQuerySource {
	m := c.Spec.Monitoring
	if m == nil {
		return nil
	}
	var out []metricsQuerySource
	for _, r := range m.CustomQueriesConfigMap {
		out = append(out, metricsQuerySource{pc.MetricsQueriesConfigMap, r.Name, r.Key})
	}
	for _, r := range m.CustomQueriesSecret {
		out = append(out, metricsQuerySource{pc.MetricsQueriesSecret, r.Name, r.Key})
	}
	return out
}

// metricsQueryFiles are the manager's --metrics-queries.
func metricsQueryFiles(c *cluster.Cluster) []string {
	var out []string
	for _, s := range metricsQuerySources(c) {
		out = append(out, pc.MetricsQueriesPath(s.kind, s.name, s.key))
	}
	return out
}

// mountMetricsQueries projects the custom queries' keys into one volume
// at pc.MetricsQueriesDir, optional each (a missing ConfigMap, Secret or
// key is a missing file the manager reports at every scrape, not a pod
// that cannot start). The kubelet updates the files in place when an
// object changes; the manager re-reads them at every scrape. Group
// readable only (fsGroup), as the credentials: a Secret's queries may
// hold what its owner keeps out of ConfigMaps. Nothing is added without
// custom queries, so other clusters keep their pod template.
func mountMetricsQueries(c *cluster.Cluster, spec *corev1.PodSpec) {
	sources := metricsQuerySources(c)
	if len(sources) == 0 {
		return
	}
	var proj []corev1.VolumeProjection
	for _, s := range sources {
		items := []corev1.KeyToPath{{Key: s.key, Path: pc.MetricsQueriesPath(s.kind, s.name, s.key)}}
		ref := corev1.LocalObjectReference{Name: s.name}
		if s.kind == pc.MetricsQueriesSecret {
			proj = append(proj, corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: ref, Items: items, Optional: ptr(true)}})
		} else {
			proj = append(proj, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref, Items: items, Optional: ptr(true)}})
		}
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: pc.MetricsQueriesVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr(int32(0o440)), Sources: proj}}})
	for i := range spec.Containers {
		if spec.Containers[i].Name == pc.ContainerPostgres {
			spec.Containers[i].VolumeMounts = append(spec.Containers[i].VolumeMounts,
				corev1.VolumeMount{Name: pc.MetricsQueriesVolume, MountPath: pc.MetricsQueriesDir, ReadOnly: true})
		}
	}
}
