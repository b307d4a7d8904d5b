package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// selectorOf is what a Service of selector type kind selects: the
// primary (the role label its manager sets once it routes NAME-rw), the
// standbys, or every instance; the same pods the NetworkPolicy selects.
func selectorOf(c *cluster.Cluster, kind string) map[string]string {
	switch kind {
	case cluster.SelectorRW:
		return map[string]string{pc.LabelCluster: c.Metadata.Name, pc.LabelRole: pc.RolePrimary}
	case cluster.SelectorRO:
		return map[string]string{pc.LabelCluster: c.Metadata.Name, pc.LabelRole: pc.RoleReplica}
	}
	return map[string]string{pc.LabelCluster: c.Metadata.Name}
}

// additionalServices renders spec.managed.services.additional in their
// order: the user's name, labels, annotations and the ServiceSpec fields
// pgsync has; pgsync's labels (which prune them once removed from Git),
// its selector and one port reaching the instances' 5432, the port the
// NetworkPolicy governs.
func additionalServices(c *cluster.Cluster) []*corev1.Service {
	var out []*corev1.Service
	for _, ms := range c.Spec.AdditionalServices() {
		t := ms.ServiceTemplate
		m := meta(c, t.Metadata.Name)
		l := make(map[string]string, len(t.Metadata.Labels)+len(m.Labels))
		for k, v := range t.Metadata.Labels {
			l[k] = v
		}
		for k, v := range m.Labels {
			l[k] = v
		}
		m.Labels = l
		if len(t.Metadata.Annotations) > 0 {
			m.Annotations = with(t.Metadata.Annotations)
		}
		s := t.Spec
		port := corev1.ServicePort{Name: pc.PortNamePG, Protocol: corev1.ProtocolTCP, Port: pc.PostgresPort,
			TargetPort: intstr.FromInt32(pc.PostgresPort)}
		if len(s.Ports) == 1 {
			if p := s.Ports[0]; p.Port != 0 {
				port.Port = int32(p.Port)
			}
			port.NodePort = int32(s.Ports[0].NodePort)
		}
		spec := corev1.ServiceSpec{
			Type:                          corev1.ServiceType(s.Type),
			Selector:                      selectorOf(c, ms.SelectorType),
			Ports:                         []corev1.ServicePort{port},
			LoadBalancerSourceRanges:      s.LoadBalancerSourceRanges,
			LoadBalancerClass:             s.LoadBalancerClass,
			AllocateLoadBalancerNodePorts: s.AllocateLoadBalancerNodePorts,
			ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicy(s.ExternalTrafficPolicy),
			SessionAffinity:               corev1.ServiceAffinity(s.SessionAffinity),
		}
		if spec.Type == "" {
			spec.Type = corev1.ServiceTypeClusterIP
		}
		if s.InternalTrafficPolicy != "" {
			p := corev1.ServiceInternalTrafficPolicy(s.InternalTrafficPolicy)
			spec.InternalTrafficPolicy = &p
		}
		out = append(out, &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: m,
			Spec:       spec,
		})
	}
	return out
}

// ReplaceOnChange says whether the Service name of c is re-created rather
// than patched when it differs from what pgsync renders (an additional
// Service of updateStrategy replace).
func ReplaceOnChange(c *cluster.Cluster, name string) bool {
	for _, ms := range c.Spec.AdditionalServices() {
		if ms.ServiceTemplate.Metadata.Name == name {
			return ms.Strategy() == cluster.ServiceUpdateReplace
		}
	}
	return false
}

// ServiceSelector is the label selector of the Services pgsync owns for
// cluster name (default and additional alike).
func ServiceSelector(name string) string {
	return pc.LabelManagedBy + "=" + pc.ManagedBy + "," + pc.LabelCluster + "=" + name
}
