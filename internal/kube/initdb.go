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
