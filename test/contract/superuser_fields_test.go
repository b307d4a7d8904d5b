package contract

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// spec.enableSuperuserAccess reaches the managers as the params
// ConfigMap's superuser-access key (pg_hba's rejects, the superuser's
// password: internal/instance TestSuperuserAccessOff, TestSuperuserAccessOn);
// spec.superuserSecret is the Secret the pods project the superuser's
// password from.
func init() {
	effects["spec.enableSuperuserAccess"] = effect{
		where: "ConfigMap superuser-access → every manager's pg_hba and the primary's ALTER ROLE postgres PASSWORD (TestSuperuserAccessOff, TestSuperuserAccessOn)",
		set:   func(s *cluster.Spec) { s.EnableSuperuserAccess = ptr(true) },
		render: func(o *kube.Objects) any {
			return o.Params.Data[pc.SuperuserAccessKey]
		},
	}
	effects["spec.superuserSecret.name"] = effect{
		where: "the credentials volume's superuser-password projection (internal/kube TestRenderSuperuser), which the primary's manager applies (TestSuperuserAccessOn)",
		set:   func(s *cluster.Spec) { s.SuperuserSecret = &cluster.LocalObjectReference{Name: "my-superuser"} },
		render: func(o *kube.Objects) any {
			for _, v := range podSpec(o).Volumes {
				if v.Projected == nil {
					continue
				}
				for _, p := range v.Projected.Sources {
					if p.Secret != nil && len(p.Secret.Items) == 1 && p.Secret.Items[0].Path == "superuser-password" {
						return p.Secret.Name
					}
				}
			}
			return nil
		},
	}
}
