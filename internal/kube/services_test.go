package kube

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pgsync/pgsync/internal/cluster"
)

const servicesYAML = `  managed:
    services:
      disabledDefaultServices: [ro]
      additional:
      - selectorType: rw
        serviceTemplate:
          metadata: {name: web-lb, labels: {team: shop}, annotations: {example.com/lb: internal}}
          spec: {type: LoadBalancer, loadBalancerSourceRanges: [203.0.113.0/24], externalTrafficPolicy: Local, loadBalancerClass: example.com/vip, allocateLoadBalancerNodePorts: false, ports: [{port: 6432, nodePort: 30432}]}
      - selectorType: ro
        updateStrategy: replace
        serviceTemplate:
          metadata: {name: web-standbys}
          spec: {internalTrafficPolicy: Local, sessionAffinity: ClientIP}
      - selectorType: r
        serviceTemplate: {metadata: {name: web-any}}
`

func withServices(y string) string { return y + servicesYAML }

// TestRenderAdditionalServices: what spec.managed.services renders, field
// by field; without it the objects are the same as before pgsync read it.
func TestRenderAdditionalServices(t *testing.T) {
	o := render(t, loadCluster(t, withServices))
	if len(o.Additional) != 3 {
		t.Fatalf("additional Services: %d, want 3", len(o.Additional))
	}
	lb, standbys, every := o.Additional[0], o.Additional[1], o.Additional[2]
	port := func(p, node int32) []corev1.ServicePort {
		return []corev1.ServicePort{{Name: "postgres", Protocol: "TCP", Port: p, NodePort: node, TargetPort: intstr.FromInt32(5432)}}
	}
	local := corev1.ServiceInternalTrafficPolicyLocal
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"ro disabled", o.RO == nil, true},
		{"r kept", o.R.Name, "web-r"},
		{"lb name", lb.Name, "web-lb"},
		{"lb labels: the user's and pgsync's", lb.Labels, map[string]string{"team": "shop", "pgsync.io/cluster": "web", "app.kubernetes.io/managed-by": "pgsync"}},
		{"lb annotations", lb.Annotations, map[string]string{"example.com/lb": "internal"}},
		{"lb selects the primary", lb.Spec.Selector, map[string]string{"pgsync.io/cluster": "web", "pgsync.io/role": "primary"}},
		{"lb type", lb.Spec.Type, corev1.ServiceTypeLoadBalancer},
		{"lb port", lb.Spec.Ports, port(6432, 30432)},
		{"lb source ranges", lb.Spec.LoadBalancerSourceRanges, []string{"203.0.113.0/24"}},
		{"lb external policy", lb.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyLocal},
		{"lb class", *lb.Spec.LoadBalancerClass, "example.com/vip"},
		{"lb node ports", *lb.Spec.AllocateLoadBalancerNodePorts, false},
		{"standbys selector", standbys.Spec.Selector, map[string]string{"pgsync.io/cluster": "web", "pgsync.io/role": "replica"}},
		{"standbys type defaults to ClusterIP", standbys.Spec.Type, corev1.ServiceTypeClusterIP},
		{"standbys port defaults to 5432", standbys.Spec.Ports, port(5432, 0)},
		{"standbys internal policy", standbys.Spec.InternalTrafficPolicy, &local},
		{"standbys affinity", standbys.Spec.SessionAffinity, corev1.ServiceAffinityClientIP},
		{"standbys no annotations", standbys.Annotations == nil, true},
		{"any selector", every.Spec.Selector, map[string]string{"pgsync.io/cluster": "web"}},
		{"names", loadCluster(t, withServices).ServiceNames(), []string{"web-rw", "web-r", "web-hl", "web-lb", "web-standbys", "web-any"}},
		{"replace", []bool{ReplaceOnChange(loadCluster(t, withServices), "web-standbys"), ReplaceOnChange(loadCluster(t, withServices), "web-lb"), ReplaceOnChange(loadCluster(t, withServices), "web-rw")}, []bool{true, false, false}},
		{"owned-Service selector", ServiceSelector("web"), "app.kubernetes.io/managed-by=pgsync,pgsync.io/cluster=web"},
	} {
		t.Run(tc.field, func(t *testing.T) { same(t, tc.got, tc.want) })
	}

	// Each is in the apply order, after the defaults and before the
	// NetworkPolicy; its labels match ServiceSelector (the prune); the
	// pods it selects are the NetworkPolicy's and its target port is one
	// the policy admits clients on.
	var names []string
	for _, obj := range o.List() {
		if s, ok := obj.(*corev1.Service); ok {
			names = append(names, s.Name)
		}
	}
	same(t, names, []string{"web-rw", "web-r", "web-hl", "web-lb", "web-standbys", "web-any"})
	owned, err := klabels.Parse(ServiceSelector("web"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := metav1.LabelSelectorAsSelector(&o.NetworkPolicy.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range o.Additional {
		if !owned.Matches(klabels.Set(s.Labels)) {
			t.Errorf("%s: labels %v not selected by %s", s.Name, s.Labels, ServiceSelector("web"))
		}
		if !policy.Matches(klabels.Set(s.Spec.Selector)) {
			t.Errorf("%s: selects %v, pods the NetworkPolicy does not select", s.Name, s.Spec.Selector)
		}
		admitted := false
		for _, rule := range o.NetworkPolicy.Spec.Ingress[1:] {
			for _, p := range rule.Ports {
				if p.Port.IntValue() == s.Spec.Ports[0].TargetPort.IntValue() && len(rule.From) > 0 {
					admitted = true
				}
			}
		}
		if !admitted {
			t.Errorf("%s: target port %v is not a client port of the NetworkPolicy", s.Name, s.Spec.Ports[0].TargetPort)
		}
	}

	// Invariant 8: without spec.managed.services every object renders as
	// before (the default Services, nothing else), and the applied spec
	// does not name the field.
	plain := render(t, loadCluster(t, nil))
	if plain.RO == nil || plain.R == nil || plain.Additional != nil || len(plain.List()) != 14 {
		t.Errorf("without managed.services: ro %v r %v additional %v, %d objects (want 14)", plain.RO, plain.R, plain.Additional, len(plain.List()))
	}
	roles := render(t, loadCluster(t, func(y string) string { return y + "  managed:\n    roles: [{name: alice}]\n" }))
	raw := roles.StatefulSet.Annotations["pgsync.io/applied-spec"]
	if strings.Contains(raw, "services") {
		t.Errorf("applied spec of a cluster without managed.services names them: %s", raw)
	}
	var back cluster.Spec
	if err := json.Unmarshal([]byte(render(t, loadCluster(t, withServices)).StatefulSet.Annotations["pgsync.io/applied-spec"]), &back); err != nil ||
		len(back.AdditionalServices()) != 3 || back.DefaultServiceOn(cluster.SelectorRO) {
		t.Errorf("applied spec does not keep managed.services: %v %+v", err, back.Managed)
	}
}
