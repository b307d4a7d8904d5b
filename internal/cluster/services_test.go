package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestServicesCorpus: CloudNativePG's documented managed Services load,
// with what they say.
func TestServicesCorpus(t *testing.T) {
	for p, c := range loadEach(t, "testdata/cnpg/services.yaml", 1) {
		s := &c.Spec
		if s.DefaultServiceOn(SelectorRO) || !s.DefaultServiceOn(SelectorR) || !s.DefaultServiceOn(SelectorRW) {
			t.Errorf("%s: default Services on: rw %v ro %v r %v, want rw and r", p, s.DefaultServiceOn(SelectorRW), s.DefaultServiceOn(SelectorRO), s.DefaultServiceOn(SelectorR))
		}
		add := s.AdditionalServices()
		if len(add) != 2 || add[0].ServiceTemplate.Metadata.Name != "mying-service" || add[0].Strategy() != ServiceUpdatePatch ||
			add[1].Strategy() != ServiceUpdateReplace || add[1].ServiceTemplate.Spec.Ports[0].Port != 6432 {
			t.Errorf("%s: additional %+v", p, add)
		}
		if got := c.Pos("spec.managed.services.additional[1].serviceTemplate.metadata.name").String(); got != "services.yaml:35:21" {
			t.Errorf("%s: position of the second name = %s", p, got)
		}
	}
	// Without the field every default Service is on and there is no other.
	c := &Cluster{}
	if !c.Spec.DefaultServiceOn(SelectorRO) || !c.Spec.DefaultServiceOn(SelectorR) || c.Spec.AdditionalServices() != nil {
		t.Error("a cluster without spec.managed.services has other Services than the defaults")
	}
}

// TestServicesValidation: every problem of spec.managed.services at its
// field, in one pass; ServiceSpec fields pgsync does not have are refused
// by name.
func TestServicesValidation(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 1\n  storage:\n    size: 1Gi\n  managed:\n    services:\n"
	svc := func(lines ...string) string {
		return "      additional:\n" + strings.Join(lines, "\n") + "\n"
	}
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"fine", "      disabledDefaultServices: [ro, r]\n" + svc(
			"      - selectorType: rw",
			"        updateStrategy: replace",
			"        serviceTemplate:",
			"          metadata: {name: pg-lb, labels: {app.kubernetes.io/part-of: shop}, annotations: {example.com/lb: internal}}",
			"          spec: {type: LoadBalancer, loadBalancerClass: example.com/vip, allocateLoadBalancerNodePorts: false, loadBalancerSourceRanges: [10.0.0.0/8], externalTrafficPolicy: Local, internalTrafficPolicy: Cluster, sessionAffinity: ClientIP, ports: [{name: postgres, protocol: TCP, port: 5433, nodePort: 30432}]}",
			"      - selectorType: r",
			"        serviceTemplate: {metadata: {name: pg-any}}",
		), nil},
		{"disabled defaults", "      disabledDefaultServices: [rw, ro, ro, any]\n", []string{
			`c.yaml:13:33: spec.managed.services.disabledDefaultServices[0]: the rw Service (pg-rw) cannot be disabled: it is how clients reach the primary`,
			`c.yaml:13:41: spec.managed.services.disabledDefaultServices[2]: "ro" is listed twice`,
			`c.yaml:13:45: spec.managed.services.disabledDefaultServices[3]: invalid value "any" (allowed: ro, r)`,
		}},
		{"names and kinds", svc(
			"      - serviceTemplate: {metadata: {name: pg-rw}}",
			"      - selectorType: primary",
			"        updateStrategy: recreate",
			"        serviceTemplate: {metadata: {name: pg-hl}}",
			"      - selectorType: ro",
			"        serviceTemplate: {metadata: {labels: {a: b}}}",
			"      - selectorType: ro",
			"        serviceTemplate: {metadata: {name: Bad_Name}}",
			"      - selectorType: r",
			"        serviceTemplate: {metadata: {name: extra}}",
			"      - selectorType: r",
			"        serviceTemplate: {metadata: {name: extra, labels: {pgsync.io/role: primary, ok: 'not valid!'}, annotations: {'bad key!': x}}}",
		), []string{
			`c.yaml:14:44: spec.managed.services.additional[0].serviceTemplate.metadata.name: "pg-rw" is the name of the cluster's default rw Service, which pgsync renders`,
			`c.yaml:14:9: spec.managed.services.additional[0].selectorType: required (rw: the primary, ro: the standbys, r: every instance)`,
			`c.yaml:15:23: spec.managed.services.additional[1].selectorType: invalid value "primary" (allowed: rw, ro, r)`,
			`c.yaml:16:25: spec.managed.services.additional[1].updateStrategy: invalid value "recreate" (allowed: patch, replace)`,
			`c.yaml:17:44: spec.managed.services.additional[1].serviceTemplate.metadata.name: "pg-hl" is the name of the cluster's default headless Service, which pgsync renders`,
			`c.yaml:19:37: spec.managed.services.additional[2].serviceTemplate.metadata.name: required: the Service's name`,
			`c.yaml:21:44: spec.managed.services.additional[3].serviceTemplate.metadata.name: "Bad_Name" is not a valid Service name: at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit`,
			`c.yaml:25:130: spec.managed.services.additional[5].serviceTemplate.metadata.annotations.bad key!: "bad key!" is not a valid key: an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
			`c.yaml:25:44: spec.managed.services.additional[5].serviceTemplate.metadata.name: "extra" is already the name of spec.managed.services.additional[4]`,
			`c.yaml:25:76: spec.managed.services.additional[5].serviceTemplate.metadata.labels.pgsync.io/role: "pgsync.io/role": the pgsync.io/ keys are pgsync's own (pgsync.io/cluster selects the cluster's objects)`,
			`c.yaml:25:89: spec.managed.services.additional[5].serviceTemplate.metadata.labels.ok: "not valid!" is not a valid label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (or empty)`,
		}},
		{"spec", svc(
			"      - selectorType: rw",
			"        serviceTemplate:",
			"          metadata: {name: a}",
			"          spec: {type: ClusterIP, loadBalancerSourceRanges: [10.0.0.1], loadBalancerClass: nope, allocateLoadBalancerNodePorts: true, externalTrafficPolicy: Local, internalTrafficPolicy: Far, sessionAffinity: Sticky, ports: [{name: pg, protocol: UDP, port: 70000, nodePort: 30000}, {port: 1}]}",
			"      - selectorType: rw",
			"        serviceTemplate:",
			"          metadata: {name: b}",
			"          spec: {type: ExternalName}",
			"      - selectorType: rw",
			"        serviceTemplate:",
			"          metadata: {name: c}",
			"          spec: {type: NodePort, externalTrafficPolicy: Nearest, ports: [{nodePort: -1}]}",
		), []string{
			`c.yaml:17:129: spec.managed.services.additional[0].serviceTemplate.spec.allocateLoadBalancerNodePorts: only a LoadBalancer Service has it (type is ClusterIP)`,
			`c.yaml:17:158: spec.managed.services.additional[0].serviceTemplate.spec.externalTrafficPolicy: only a NodePort or LoadBalancer Service has it (type is ClusterIP)`,
			`c.yaml:17:188: spec.managed.services.additional[0].serviceTemplate.spec.internalTrafficPolicy: invalid value "Far" (allowed: Cluster, Local)`,
			`c.yaml:17:210: spec.managed.services.additional[0].serviceTemplate.spec.sessionAffinity: invalid value "Sticky" (allowed: None, ClientIP)`,
			`c.yaml:17:233: spec.managed.services.additional[0].serviceTemplate.spec.ports[0].name: invalid value "pg" (allowed: postgres, PostgreSQL's port)`,
			`c.yaml:17:247: spec.managed.services.additional[0].serviceTemplate.spec.ports[0].protocol: invalid value "UDP" (allowed: TCP)`,
			`c.yaml:17:258: spec.managed.services.additional[0].serviceTemplate.spec.ports[0].port: 70000 is not a port: 1 to 65535 (default 5432)`,
			`c.yaml:17:275: spec.managed.services.additional[0].serviceTemplate.spec.ports[0].nodePort: only a NodePort or LoadBalancer Service has a node port (type is ClusterIP)`,
			`c.yaml:17:283: spec.managed.services.additional[0].serviceTemplate.spec.ports[1]: an additional Service has one port, PostgreSQL's (the instances' 5432)`,
			`c.yaml:17:61: spec.managed.services.additional[0].serviceTemplate.spec.loadBalancerSourceRanges: only a LoadBalancer Service has it (type is ClusterIP)`,
			`c.yaml:17:62: spec.managed.services.additional[0].serviceTemplate.spec.loadBalancerSourceRanges[0]: "10.0.0.1" is not a CIDR such as 203.0.113.0/24`,
			`c.yaml:17:92: spec.managed.services.additional[0].serviceTemplate.spec.loadBalancerClass: "nope" is not a load balancer class: a label-style name with a prefix, such as example.com/internal-vip`,
			`c.yaml:17:92: spec.managed.services.additional[0].serviceTemplate.spec.loadBalancerClass: only a LoadBalancer Service has it (type is ClusterIP)`,
			`c.yaml:21:24: spec.managed.services.additional[1].serviceTemplate.spec.type: ExternalName is not supported by pgsync: an additional Service routes to the cluster's instances (allowed: ClusterIP, NodePort, LoadBalancer)`,
			`c.yaml:25:57: spec.managed.services.additional[2].serviceTemplate.spec.externalTrafficPolicy: invalid value "Nearest" (allowed: Cluster, Local)`,
			`c.yaml:25:85: spec.managed.services.additional[2].serviceTemplate.spec.ports[0].nodePort: -1 is not a port: 1 to 65535 (the API server's node port range; 0 or unset: allocated)`,
		}},
		{"refused by name", svc(
			"      - selectorType: ro",
			"        serviceTemplate:",
			"          metadata: {name: a}",
			"          spec:",
			"            selector: {app: x}",
			"            externalIPs: [192.0.2.1]",
			"            clusterIP: None",
			"            ports: [{targetPort: 5433}]",
			"            sessionAfinity: ClientIP",
		), []string{
			`c.yaml:18:13: spec.managed.services.additional[0].serviceTemplate.spec.selector: a selector of your own is not supported by pgsync: an additional Service selects the instances of its selectorType (rw: the primary, ro: the standbys, r: every instance)`,
			`c.yaml:19:13: spec.managed.services.additional[0].serviceTemplate.spec.externalIPs: external IPs are not supported by pgsync: expose the cluster with type LoadBalancer or NodePort`,
			`c.yaml:20:13: spec.managed.services.additional[0].serviceTemplate.spec.clusterIP: a fixed cluster IP is not supported by pgsync: the API server allocates it`,
			`c.yaml:21:22: spec.managed.services.additional[0].serviceTemplate.spec.ports[0].targetPort: a target port of your own is not supported by pgsync: an additional Service reaches the instances' PostgreSQL port, 5432`,
			`c.yaml:22:13: spec.managed.services.additional[0].serviceTemplate.spec.sessionAfinity: unknown field "sessionAfinity" (did you mean sessionAffinity?)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]File{{Path: "c.yaml", Data: []byte(head + tc.body)}})
			errs, _ := err.(Errors)
			if err != nil && errs == nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.String())
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !cmp.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
