package plan

import (
	"fmt"
	"slices"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// superuserDriftWarning says what applying the cluster's objects does to
// the superuser when its params ConfigMap has no superuser-access key
// (the drift names it): a pgsync from before spec.enableSuperuserAccess
// rendered it, whose superuser always had access (its default was true),
// and the spec now says off — often only by not writing the field, whose
// default is false as CloudNativePG's. Nothing restarts for it (invariant
// 8): each instance's manager applies it once its pod is re-created with
// this pgsync's manager.
func superuserDriftWarning(d *cluster.Cluster, o *ObservedCluster) string {
	if d.Spec.SuperuserAccess() {
		return ""
	}
	cm := pc.Names{Cluster: d.Metadata.Name}.Params()
	if !slices.Contains(o.Drift, "ConfigMap "+cm+": data."+pc.SuperuserAccessKey) {
		return ""
	}
	why := "spec.enableSuperuserAccess is false"
	if d.Spec.EnableSuperuserAccess == nil {
		why = "spec.enableSuperuserAccess is not written, and its default is false (CloudNativePG's; pgsync's was true)"
	}
	return fmt.Sprintf("superuser access goes: ConfigMap %s was written by a pgsync whose superuser always had access, and %s. "+
		"Each instance whose pod is re-created from now on (a rolling restart, a pod deletion; nothing restarts for it) runs a manager that refuses the superuser's remote logins "+
		"in pg_hba, and the primary's sets its password to NULL; the managers themselves log in locally by peer authentication. "+
		"Write enableSuperuserAccess: true to keep the superuser's access (with NAME-superuser, which pgsync never deleted)", cm, why)
}
