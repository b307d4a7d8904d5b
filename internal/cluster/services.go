package cluster

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// ManagedServices is CloudNativePG's spec.managed.services: default
// Services left out, and Services of the user's beside them
// (docs/objects.md, "Additional Services").
type ManagedServices struct {
	// DisabledDefaultServices: ro and r (NAME-ro, NAME-r) are not
	// rendered, and deleted when they exist. rw cannot be disabled.
	DisabledDefaultServices []string `json:"disabledDefaultServices"`
	// Additional Services, each selecting the instances of its
	// selectorType.
	Additional []ManagedService `json:"additional"`
}

// ManagedService is one additional Service.
type ManagedService struct {
	// SelectorType: rw (the primary), ro (the standbys) or r (every
	// instance). Required.
	SelectorType string `json:"selectorType"`
	// UpdateStrategy: patch (default: a server-side apply of what
	// changed) or replace (a Service that differs from what pgsync
	// renders is deleted and created anew).
	UpdateStrategy  string              `json:"updateStrategy"`
	ServiceTemplate ServiceTemplateSpec `json:"serviceTemplate"`
}

// ServiceTemplateSpec is the Service's metadata and the part of its spec
// pgsync has; the rest of a ServiceSpec is refused by name (serviceRefusals).
type ServiceTemplateSpec struct {
	Metadata ServiceMetadata `json:"metadata"`
	Spec     ServiceSpec     `json:"spec"`
}

// ServiceMetadata is CloudNativePG's Metadata of a template.
type ServiceMetadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// ServiceSpec is the subset of a Kubernetes ServiceSpec an additional
// Service may set. The selector and the target port are pgsync's.
type ServiceSpec struct {
	// Type: ClusterIP (default), NodePort or LoadBalancer.
	Type  string        `json:"type"`
	Ports []ServicePort `json:"ports"`
	// LoadBalancer only.
	LoadBalancerSourceRanges      []string `json:"loadBalancerSourceRanges"`
	LoadBalancerClass             *string  `json:"loadBalancerClass"`
	AllocateLoadBalancerNodePorts *bool    `json:"allocateLoadBalancerNodePorts"`
	// NodePort and LoadBalancer only: Cluster or Local.
	ExternalTrafficPolicy string `json:"externalTrafficPolicy"`
	// Cluster or Local.
	InternalTrafficPolicy string `json:"internalTrafficPolicy"`
	// None or ClientIP.
	SessionAffinity string `json:"sessionAffinity"`
}

// ServicePort is the one port of an additional Service: PostgreSQL's.
type ServicePort struct {
	// Name: postgres, the only one.
	Name string `json:"name"`
	// Protocol: TCP, the only one.
	Protocol string `json:"protocol"`
	// Port is the Service's port (default 5432); it always reaches the
	// instances' 5432.
	Port int `json:"port"`
	// NodePort: NodePort and LoadBalancer only; 0 lets the API server
	// allocate one.
	NodePort int `json:"nodePort"`
}

// Selector types of a Service.
const (
	SelectorRW = "rw"
	SelectorRO = "ro"
	SelectorR  = "r"
)

// Update strategies of an additional Service.
const (
	ServiceUpdatePatch   = "patch"
	ServiceUpdateReplace = "replace"
)

// Service types an additional Service may have.
const (
	ServiceClusterIP    = "ClusterIP"
	ServiceNodePort     = "NodePort"
	ServiceLoadBalancer = "LoadBalancer"
)

// DefaultServiceOn says whether the default Service of selector type kind
// (NAME-rw, NAME-ro, NAME-r) is rendered: all are unless
// disabledDefaultServices lists them.
func (s *Spec) DefaultServiceOn(kind string) bool {
	if s.Managed == nil || s.Managed.Services == nil {
		return true
	}
	return !slices.Contains(s.Managed.Services.DisabledDefaultServices, kind)
}

// AdditionalServices returns spec.managed.services.additional.
func (s *Spec) AdditionalServices() []ManagedService {
	if s.Managed == nil || s.Managed.Services == nil {
		return nil
	}
	return s.Managed.Services.Additional
}

// ServiceNames are the names of every Service pgsync renders for c, in
// apply order: the default ones spec.managed.services leaves on and the
// additional ones. Any other Service labelled as the cluster's is
// pgsync's to delete.
func (c *Cluster) ServiceNames() []string {
	n := pc.Names{Cluster: c.Metadata.Name}
	out := []string{n.RW()}
	if c.Spec.DefaultServiceOn(SelectorRO) {
		out = append(out, n.RO())
	}
	if c.Spec.DefaultServiceOn(SelectorR) {
		out = append(out, n.R())
	}
	out = append(out, n.Headless())
	for _, ms := range c.Spec.AdditionalServices() {
		out = append(out, ms.ServiceTemplate.Metadata.Name)
	}
	return out
}

// Strategy is the service's update strategy, defaulted.
func (m *ManagedService) Strategy() string {
	if m.UpdateStrategy == "" {
		return ServiceUpdatePatch
	}
	return m.UpdateStrategy
}

// serviceRefusals are the fields of a Kubernetes ServiceSpec (and of a
// ServicePort) an additional Service may not set, by path. They join
// unsupported.go's table (init), kept here beside the type they complete.
var serviceRefusals = func() map[string]string {
	const spec = "spec.managed.services.additional[].serviceTemplate.spec."
	m := map[string]string{
		"selector":                 "a selector of your own is not supported by pgsync: an additional Service selects the instances of its selectorType (rw: the primary, ro: the standbys, r: every instance)",
		"clusterIP":                "a fixed cluster IP is not supported by pgsync: the API server allocates it",
		"clusterIPs":               "fixed cluster IPs are not supported by pgsync: the API server allocates them",
		"externalIPs":              "external IPs are not supported by pgsync: expose the cluster with type LoadBalancer or NodePort",
		"externalName":             "ExternalName Services are not supported by pgsync: an additional Service routes to the cluster's instances",
		"loadBalancerIP":           "loadBalancerIP (deprecated by Kubernetes) is not supported by pgsync: ask your load balancer for an address with its own annotation",
		"healthCheckNodePort":      "a fixed health check node port is not supported by pgsync: the API server allocates it",
		"publishNotReadyAddresses": "publishNotReadyAddresses is not supported by pgsync: clients would reach instances that are not ready",
		"sessionAffinityConfig":    "sessionAffinityConfig is not supported by pgsync: sessionAffinity ClientIP keeps Kubernetes' default timeout",
		"ipFamilies":               "IP families are not supported by pgsync: the Service takes the cluster's default",
		"ipFamilyPolicy":           "an IP family policy is not supported by pgsync: the Service takes the cluster's default",
		"trafficDistribution":      "trafficDistribution is not supported by pgsync",
		"ports[].targetPort":       "a target port of your own is not supported by pgsync: an additional Service reaches the instances' PostgreSQL port, 5432",
		"ports[].appProtocol":      "an application protocol is not supported by pgsync",
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[spec+k] = v
	}
	return out
}()

func init() {
	for k, v := range serviceRefusals {
		unsupported[k] = v
	}
}

// validateServices checks spec.managed.services with CloudNativePG's rules
// (rw cannot be disabled; every additional Service has a name, none is a
// default Service's or another's) and what pgsync renders (the part of a
// ServiceSpec it has, each field for the types it applies to), each
// problem at its field, in one pass.
func validateServices(c *Cluster, bad func(field, format string, args ...any)) {
	if c.Spec.Managed == nil || c.Spec.Managed.Services == nil {
		return
	}
	ms := c.Spec.Managed.Services
	const base = "spec.managed.services"
	n := pc.Names{Cluster: c.Metadata.Name}
	seenKind := map[string]bool{}
	for i, k := range ms.DisabledDefaultServices {
		f := fmt.Sprintf("%s.disabledDefaultServices[%d]", base, i)
		switch {
		case k == SelectorRW:
			bad(f, "the rw Service (%s) cannot be disabled: it is how clients reach the primary", n.RW())
		case k != SelectorRO && k != SelectorR:
			bad(f, "invalid value %q (allowed: ro, r)", k)
		case seenKind[k]:
			bad(f, "%q is listed twice", k)
		}
		seenKind[k] = true
	}
	reserved := map[string]string{n.RW(): "rw", n.RO(): "ro", n.R(): "r", n.Headless(): "headless"}
	seen := map[string]int{}
	for i, s := range ms.Additional {
		p := fmt.Sprintf("%s.additional[%d]", base, i)
		switch s.SelectorType {
		case "":
			bad(p+".selectorType", "required (rw: the primary, ro: the standbys, r: every instance)")
		case SelectorRW, SelectorRO, SelectorR:
		default:
			bad(p+".selectorType", "invalid value %q (allowed: rw, ro, r)", s.SelectorType)
		}
		switch s.UpdateStrategy {
		case "", ServiceUpdatePatch, ServiceUpdateReplace:
		default:
			bad(p+".updateStrategy", "invalid value %q (allowed: patch, replace)", s.UpdateStrategy)
		}
		md := s.ServiceTemplate.Metadata
		name := p + ".serviceTemplate.metadata.name"
		switch {
		case md.Name == "":
			bad(name, "required: the Service's name")
		case len(md.Name) > 63 || !dns1035Label.MatchString(md.Name):
			bad(name, "%q is not a valid Service name: at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit", md.Name)
		case reserved[md.Name] != "":
			bad(name, "%q is the name of the cluster's default %s Service, which pgsync renders", md.Name, reserved[md.Name])
		default:
			if first, dup := seen[md.Name]; dup {
				bad(name, "%q is already the name of %s.additional[%d]", md.Name, base, first)
			} else {
				seen[md.Name] = i
			}
		}
		validateServiceMeta(p+".serviceTemplate.metadata.labels", md.Labels, true, bad)
		validateServiceMeta(p+".serviceTemplate.metadata.annotations", md.Annotations, false, bad)
		validateServiceSpec(p+".serviceTemplate.spec", &s.ServiceTemplate.Spec, bad)
	}
}

// validateServiceMeta checks label (or annotation) keys and label values
// as the API server would; pgsync.io/ keys are pgsync's own.
func validateServiceMeta(field string, m map[string]string, isLabel bool, bad func(field, format string, args ...any)) {
	for _, k := range sortedKeys(m) {
		f := field + "." + k
		if strings.HasPrefix(k, pc.AnnPrefix) {
			bad(f, "%q: the %s keys are pgsync's own (pgsync.io/cluster selects the cluster's objects)", k, pc.AnnPrefix)
			continue
		}
		if len(validation.IsQualifiedName(k)) > 0 {
			bad(f, "%q is not a valid key: an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", k)
			continue
		}
		if isLabel && len(validation.IsValidLabelValue(m[k])) > 0 {
			bad(f, "%q is not a valid label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (or empty)", m[k])
		}
	}
}

func validateServiceSpec(p string, s *ServiceSpec, bad func(field, format string, args ...any)) {
	typ := s.Type
	switch typ {
	case "", ServiceClusterIP, ServiceNodePort, ServiceLoadBalancer:
	case "ExternalName":
		bad(p+".type", "ExternalName is not supported by pgsync: an additional Service routes to the cluster's instances (allowed: ClusterIP, NodePort, LoadBalancer)")
	default:
		bad(p+".type", "invalid value %q (allowed: ClusterIP, NodePort, LoadBalancer)", typ)
	}
	external := typ == ServiceNodePort || typ == ServiceLoadBalancer
	lb := typ == ServiceLoadBalancer
	if len(s.Ports) > 1 {
		bad(p+".ports[1]", "an additional Service has one port, PostgreSQL's (the instances' 5432)")
	}
	for i, port := range s.Ports {
		f := fmt.Sprintf("%s.ports[%d]", p, i)
		if port.Name != "" && port.Name != pc.PortNamePG {
			bad(f+".name", "invalid value %q (allowed: %s, PostgreSQL's port)", port.Name, pc.PortNamePG)
		}
		if port.Protocol != "" && port.Protocol != "TCP" {
			bad(f+".protocol", "invalid value %q (allowed: TCP)", port.Protocol)
		}
		if port.Port < 0 || port.Port > 65535 {
			bad(f+".port", "%d is not a port: 1 to 65535 (default %d)", port.Port, pc.PostgresPort)
		}
		switch {
		case port.NodePort != 0 && !external:
			bad(f+".nodePort", "only a NodePort or LoadBalancer Service has a node port (type is %s)", orClusterIP(typ))
		case port.NodePort < 0 || port.NodePort > 65535:
			bad(f+".nodePort", "%d is not a port: 1 to 65535 (the API server's node port range; 0 or unset: allocated)", port.NodePort)
		}
	}
	for i, r := range s.LoadBalancerSourceRanges {
		f := fmt.Sprintf("%s.loadBalancerSourceRanges[%d]", p, i)
		if _, _, err := net.ParseCIDR(strings.TrimSpace(r)); err != nil {
			bad(f, "%q is not a CIDR such as 203.0.113.0/24", r)
		}
	}
	lbOnly := func(field string, set bool) {
		if set && !lb {
			bad(p+"."+field, "only a LoadBalancer Service has it (type is %s)", orClusterIP(typ))
		}
	}
	lbOnly("loadBalancerSourceRanges", len(s.LoadBalancerSourceRanges) > 0)
	lbOnly("loadBalancerClass", s.LoadBalancerClass != nil)
	lbOnly("allocateLoadBalancerNodePorts", s.AllocateLoadBalancerNodePorts != nil)
	if s.LoadBalancerClass != nil {
		if errs := validation.IsQualifiedName(*s.LoadBalancerClass); len(errs) > 0 || !strings.Contains(*s.LoadBalancerClass, "/") {
			bad(p+".loadBalancerClass", "%q is not a load balancer class: a label-style name with a prefix, such as example.com/internal-vip", *s.LoadBalancerClass)
		}
	}
	if v := s.ExternalTrafficPolicy; v != "" {
		switch {
		case v != "Cluster" && v != "Local":
			bad(p+".externalTrafficPolicy", "invalid value %q (allowed: Cluster, Local)", v)
		case !external:
			bad(p+".externalTrafficPolicy", "only a NodePort or LoadBalancer Service has it (type is %s)", orClusterIP(typ))
		}
	}
	if v := s.InternalTrafficPolicy; v != "" && v != "Cluster" && v != "Local" {
		bad(p+".internalTrafficPolicy", "invalid value %q (allowed: Cluster, Local)", v)
	}
	if v := s.SessionAffinity; v != "" && v != "None" && v != "ClientIP" {
		bad(p+".sessionAffinity", "invalid value %q (allowed: None, ClientIP)", v)
	}
}

func orClusterIP(typ string) string {
	if typ == "" {
		return ServiceClusterIP
	}
	return typ
}
