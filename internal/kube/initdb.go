package kube

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// initDBEnv is the PGSYNC_INITDB variable of spec.bootstrap.initdb (false
// when the Cluster does not write it, so the pod template of other
// clusters is unchanged).
func initDBEnv(c *cluster.Cluster) (corev1.EnvVar, bool, error) {
	if c.Spec.Bootstrap == nil || c.Spec.Bootstrap.InitDB == nil {
		return corev1.EnvVar{}, false, nil
	}
	i := c.Spec.Bootstrap.InitDB
	v := pc.InitDB{
		Encoding: i.Encoding, LocaleCollate: i.LocaleCollate, LocaleCType: i.LocaleCType, Locale: i.Locale,
		LocaleProvider: i.LocaleProvider, ICULocale: i.ICULocale, ICURules: i.ICURules, BuiltinLocale: i.BuiltinLocale,
		NoDataChecksums: i.DataChecksums != nil && !*i.DataChecksums,
		WALSegmentSize:  i.WALSegmentSize,
		Major:           major(c),
		PostInitSQL:     i.PostInitSQL, PostInitTemplateSQL: i.PostInitTemplateSQL, PostInitApplicationSQL: i.PostInitApplicationSQL,
	}
	files := postInitSQLFiles(i)
	v.PostInitSQLRefs, v.PostInitTemplateSQLRefs, v.PostInitApplicationSQLRefs = files[0], files[1], files[2]
	b, err := json.Marshal(v)
	if err != nil {
		return corev1.EnvVar{}, false, fmt.Errorf("render %s: spec.bootstrap.initdb: %w", c.Key(), err)
	}
	return corev1.EnvVar{Name: pc.EnvInitDB, Value: string(b)}, true, nil
}

// major is the PostgreSQL major of c's image (0: unknown).
func major(c *cluster.Cluster) int {
	if v, err := cluster.ParseVersion(c.Spec.ImageName); err == nil && v.Known {
		return v.Major
	}
	return 0
}

// postInitSQLFiles are the files of i's three SQLRefs, in the order of
// cluster.PostInitPhases, each list in the order its files run: the
// Secrets' first, then the ConfigMaps' (CloudNativePG's).
func postInitSQLFiles(i *cluster.BootstrapInitDB) [3][]pc.SQLFile {
	var out [3][]pc.SQLFile
	for n, ph := range i.PostInitPhases() {
		if ph.Refs == nil {
			continue
		}
		field := ph.Field + "Refs"
		for _, r := range ph.Refs.SecretRefs {
			out[n] = append(out[n], pc.SQLFile{Path: pc.PostInitSQLPath(field, len(out[n])), Secret: true, Name: r.Name, Key: r.Key})
		}
		for _, r := range ph.Refs.ConfigMapRefs {
			out[n] = append(out[n], pc.SQLFile{Path: pc.PostInitSQLPath(field, len(out[n])), Name: r.Name, Key: r.Key})
		}
	}
	return out
}

// mountPostInitSQL projects the post-init SQL files into the postgres
// container (podcontract.PostInitSQLVolume), each optional: the
// bootstrapping manager names a missing one, and a ConfigMap or Secret
// deleted once the cluster is bootstrapped never keeps a pod from
// starting. Only the bootstrapping primary reads them, once; nothing is
// added without SQLRefs, so other clusters' pod template is unchanged
// (and the planner refuses SQLRefs changed on a running cluster).
func mountPostInitSQL(c *cluster.Cluster, spec *corev1.PodSpec) {
	i := c.Spec.Bootstrap
	if i == nil || i.InitDB == nil {
		return
	}
	var sources []corev1.VolumeProjection
	for _, files := range postInitSQLFiles(i.InitDB) {
		for _, f := range files {
			items := []corev1.KeyToPath{{Key: f.Key, Path: f.Path}}
			ref := corev1.LocalObjectReference{Name: f.Name}
			if f.Secret {
				sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: ref, Items: items, Optional: ptr(true)}})
			} else {
				sources = append(sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref, Items: items, Optional: ptr(true)}})
			}
		}
	}
	if len(sources) == 0 {
		return
	}
	// Group-readable only, as the credentials: a Secret's SQL may hold
	// a password.
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: pc.PostInitSQLVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr(int32(0o440)), Sources: sources}}})
	for n := range spec.Containers {
		if spec.Containers[n].Name == pc.ContainerPostgres {
			spec.Containers[n].VolumeMounts = append(spec.Containers[n].VolumeMounts,
				corev1.VolumeMount{Name: pc.PostInitSQLVolume, MountPath: pc.PostInitSQLDir, ReadOnly: true})
		}
	}
}
