package contract

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// spec.bootstrap.initdb's SQLRefs land in the post-init SQL volume's
// projections (internal/kube TestRenderPostInitSQLRefs; run in order by the
// bootstrapping manager, internal/instance TestBootstrapSQLRefs).
func init() {
	postInitSources := func(o *kube.Objects) any {
		for _, v := range podSpec(o).Volumes {
			if v.Name == pc.PostInitSQLVolume {
				return v.Projected.Sources
			}
		}
		return nil
	}
	for _, phase := range []struct {
		field string
		set   func(i *cluster.BootstrapInitDB, r *cluster.SQLRefs)
	}{
		{"postInitSQLRefs", func(i *cluster.BootstrapInitDB, r *cluster.SQLRefs) { i.PostInitSQLRefs = r }},
		{"postInitApplicationSQLRefs", func(i *cluster.BootstrapInitDB, r *cluster.SQLRefs) { i.PostInitApplicationSQLRefs = r }},
		{"postInitTemplateSQLRefs", func(i *cluster.BootstrapInitDB, r *cluster.SQLRefs) { i.PostInitTemplateSQLRefs = r }},
	} {
		for _, kind := range []string{"secretRefs", "configMapRefs"} {
			for field, ref := range map[string]cluster.SQLRef{"name": {Name: "other", Key: "a.sql"}, "key": {Name: "sql", Key: "other.sql"}} {
				effects["spec.bootstrap.initdb."+phase.field+"."+kind+"[]."+field] = effect{
					where: "the post-init SQL volume's projection, run once by the bootstrapping primary (internal/kube TestRenderPostInitSQLRefs, internal/instance TestBootstrapSQLRefs)",
					set: func(s *cluster.Spec) {
						refs := &cluster.SQLRefs{}
						if kind == "secretRefs" {
							refs.SecretRefs = []cluster.SQLRef{ref}
						} else {
							refs.ConfigMapRefs = []cluster.SQLRef{ref}
						}
						i := &cluster.BootstrapInitDB{}
						phase.set(i, refs)
						s.Bootstrap = &cluster.BootstrapConfiguration{InitDB: i}
					},
					render: postInitSources,
				}
			}
		}
	}
}

// spec.managed.services: the default Services rendered or not, and each
// field of an additional Service in the Service pgsync renders
// (internal/kube TestRenderAdditionalServices; applied, replaced and pruned
// by internal/apply TestManagedServicesAPI).
func init() {
	effects["spec.managed.services.disabledDefaultServices"] = effect{
		where: "NAME-ro and NAME-r rendered or not (internal/kube TestRenderAdditionalServices)",
		set: func(s *cluster.Spec) {
			s.Managed = &cluster.ManagedConfiguration{Services: &cluster.ManagedServices{DisabledDefaultServices: []string{"ro"}}}
		},
		render: func(o *kube.Objects) any { return o.RO != nil },
	}
	additional := func(f func(m *cluster.ManagedService)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) {
			m := cluster.ManagedService{SelectorType: "rw", ServiceTemplate: cluster.ServiceTemplateSpec{
				Metadata: cluster.ServiceMetadata{Name: "extra"}, Spec: cluster.ServiceSpec{Type: "LoadBalancer"}}}
			f(&m)
			s.Managed = &cluster.ManagedConfiguration{Services: &cluster.ManagedServices{Additional: []cluster.ManagedService{m}}}
		}
	}
	service := func(o *kube.Objects) *corev1.Service {
		if len(o.Additional) == 0 {
			return nil
		}
		return o.Additional[0]
	}
	rendered := func(get func(s *corev1.Service) any) func(o *kube.Objects) any {
		return func(o *kube.Objects) any {
			if s := service(o); s != nil {
				return get(s)
			}
			return nil
		}
	}
	where := "the additional Service pgsync renders (internal/kube TestRenderAdditionalServices)"
	for path, e := range map[string]effect{
		"selectorType": {set: additional(func(m *cluster.ManagedService) { m.SelectorType = "ro" }),
			render: rendered(func(s *corev1.Service) any { return s.Spec.Selector })},
		"serviceTemplate.metadata.name": {set: additional(func(m *cluster.ManagedService) { m.ServiceTemplate.Metadata.Name = "other" }),
			render: rendered(func(s *corev1.Service) any { return s.Name })},
		"serviceTemplate.metadata.labels": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Metadata.Labels = map[string]string{"team": "web"}
		}), render: rendered(func(s *corev1.Service) any { return s.Labels })},
		"serviceTemplate.metadata.annotations": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Metadata.Annotations = map[string]string{"note": "x"}
		}), render: rendered(func(s *corev1.Service) any { return s.Annotations })},
		"serviceTemplate.spec.type": {set: additional(func(m *cluster.ManagedService) { m.ServiceTemplate.Spec.Type = "NodePort" }),
			render: rendered(func(s *corev1.Service) any { return s.Spec.Type })},
		"serviceTemplate.spec.ports[].name": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.Ports = []cluster.ServicePort{{Name: "postgres", Port: 6432}}
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.Ports })},
		"serviceTemplate.spec.ports[].protocol": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.Ports = []cluster.ServicePort{{Protocol: "TCP", Port: 6432}}
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.Ports })},
		"serviceTemplate.spec.ports[].port": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.Ports = []cluster.ServicePort{{Port: 6432}}
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.Ports })},
		"serviceTemplate.spec.ports[].nodePort": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.Ports = []cluster.ServicePort{{NodePort: 30432}}
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.Ports })},
		"serviceTemplate.spec.loadBalancerSourceRanges": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.LoadBalancerSourceRanges })},
		"serviceTemplate.spec.loadBalancerClass": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.LoadBalancerClass = ptr("example.com/lb")
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.LoadBalancerClass })},
		"serviceTemplate.spec.allocateLoadBalancerNodePorts": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.AllocateLoadBalancerNodePorts = ptr(false)
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.AllocateLoadBalancerNodePorts })},
		"serviceTemplate.spec.externalTrafficPolicy": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.ExternalTrafficPolicy = "Local"
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.ExternalTrafficPolicy })},
		"serviceTemplate.spec.internalTrafficPolicy": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.InternalTrafficPolicy = "Local"
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.InternalTrafficPolicy })},
		"serviceTemplate.spec.sessionAffinity": {set: additional(func(m *cluster.ManagedService) {
			m.ServiceTemplate.Spec.SessionAffinity = "ClientIP"
		}), render: rendered(func(s *corev1.Service) any { return s.Spec.SessionAffinity })},
	} {
		e.where = where
		effects["spec.managed.services.additional[]."+path] = e
	}
	effects["spec.managed.services.additional[].updateStrategy"] = effect{
		where: "an additional Service re-created on a change instead of patched (kube.ReplaceOnChange; internal/apply TestManagedServicesAPI)",
		set:   additional(func(m *cluster.ManagedService) { m.UpdateStrategy = "replace" }),
		planned: func(c *cluster.Cluster) any {
			return kube.ReplaceOnChange(c, "extra")
		},
	}
}
