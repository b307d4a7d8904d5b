package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// networkPolicy selects the cluster's pods and admits, on ingress only
// (egress stays open: the managers reach the API server and each other,
// postgres its standbys' upstream):
//   - 5432 and 8000 from the cluster's own pods (replication, pg_rewind,
//     the managers reading each other's /status);
//   - 5432 from the clients of pgsync.io/clients: every pod of the
//     namespace (the default), none beyond the cluster's own ("cluster"),
//     or the namespace's pods that a label selector picks;
//   - 8000 from every pod of pgsync's namespace (the daemon reads /status
//     there), from pgsync's own pods in the cluster's namespace (a daemon
//     run with --namespace beside its clusters) and from the
//     pgsync.io/status-from CIDRs;
//   - with spec.monitoring, the metrics port from anywhere.
//
// The kubelet's probes and the API server's pod proxy
// (--status-via=proxy) come from the node or the control plane, which a
// NetworkPolicy cannot name but by address: most network plugins let the
// node's own traffic in whatever the policy says; the control plane's
// addresses are pgsync.io/status-from's (docs/security.md).
func networkPolicy(c *cluster.Cluster) (*networkingv1.NetworkPolicy, error) {
	rollout, err := c.Rollout()
	if err != nil {
		return nil, fmt.Errorf("render %s NetworkPolicy: %w", c.Key(), err)
	}
	tcp := corev1.ProtocolTCP
	port := func(p int) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: ptr(intstr.FromInt32(int32(p)))}
	}
	own := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{pc.LabelCluster: c.Metadata.Name}}}
	ingress := []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{own},
		Ports: []networkingv1.NetworkPolicyPort{port(pc.PostgresPort), port(pc.HTTPPort)},
	}}
	switch clients := rollout.Clients; clients {
	case pc.ClientsCluster:
	case "", pc.ClientsNamespace:
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
			Ports: []networkingv1.NetworkPolicyPort{port(pc.PostgresPort)},
		})
	default:
		sel, err := cluster.ClientSelector(clients)
		if err != nil {
			return nil, fmt.Errorf("render %s NetworkPolicy: %s %q: %w", c.Key(), pc.AnnClients, clients, err)
		}
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: sel}},
			Ports: []networkingv1.NetworkPolicyPort{port(pc.PostgresPort)},
		})
	}
	status := []networkingv1.NetworkPolicyPeer{
		{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{pc.LabelNamespaceName: pc.PgsyncNamespace}}},
		{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{pc.LabelAppName: pc.AppNamePgsync}}},
	}
	for _, cidr := range rollout.StatusFrom {
		status = append(status, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr}})
	}
	ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
		From:  status,
		Ports: []networkingv1.NetworkPolicyPort{port(pc.HTTPPort)},
	})
	if c.Spec.MetricsOn() {
		// Prometheus runs wherever its operator put it, and /metrics
		// holds no credentials: the metrics port stays open to every
		// source, as it is without a policy.
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			Ports: []networkingv1.NetworkPolicyPort{port(pc.MetricsPort)},
		})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(c, NamesOf(c).NetworkPolicy()),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{pc.LabelCluster: c.Metadata.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     ingress,
		},
	}, nil
}
