package kube

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// PodMonitorKind is the Prometheus Operator's PodMonitor, which pgsync
// renders for a cluster with spec.monitoring.enablePodMonitor. Its CRD is
// the operator's, not pgsync's: the kind is served only where the
// operator's CRDs are installed (observe asks the API server's
// discovery), so it is not among Resources, which every cluster's drift
// and the daemon's watches read.
var PodMonitorKind = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PodMonitor"}

// PodMonitorResource is PodMonitorKind's API resource.
var PodMonitorResource = PodMonitorKind.GroupVersion().WithResource("podmonitors")

// podMonitor is CloudNativePG's PodMonitor for the cluster: the cluster's
// pods (pgsync.io/cluster, which only the instances' pods carry), their
// metrics port (the manager's /metrics, 9187) and the relabelings of
// spec.monitoring as written; with monitoring.tls, over HTTPS verified
// with the server CA — the NAME-ca ConfigMap's, or the ca.crt of
// spec.certificates.serverCASecret, which clients use instead — and the
// name NAME-rw.NS.svc, which every certificate pgsync issues carries and
// one of the user's should (docs/security.md; CloudNativePG skips the
// verification). nil without enablePodMonitor. Unstructured:
// k8s.io/api has no type for it, and pgsync needs no module of the
// operator's for one object.
func podMonitor(c *cluster.Cluster) *unstructured.Unstructured {
	if !c.Spec.PodMonitorOn() {
		return nil
	}
	m := c.Spec.Monitoring
	n := NamesOf(c)
	endpoint := map[string]any{"port": pc.PortNameMetrics}
	if c.Spec.MetricsTLS() {
		endpoint["scheme"] = "https"
		ca := map[string]any{"configMap": map[string]any{"name": n.CAConfigMap(), "key": pc.CACertKey}}
		if s := c.UserCertificates().ServerCASecret; s != "" {
			ca = map[string]any{"secret": map[string]any{"name": s, "key": pc.CACertKey}}
		}
		endpoint["tlsConfig"] = map[string]any{"ca": ca, "serverName": n.RW() + "." + c.Metadata.Namespace + ".svc"}
	}
	if r := relabelings(m.PodMonitorRelabelings); r != nil {
		endpoint["relabelings"] = r
	}
	if r := relabelings(m.PodMonitorMetricRelabelings); r != nil {
		endpoint["metricRelabelings"] = r
	}
	lbls := map[string]any{}
	for k, v := range labels(c) {
		lbls[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": n.PodMonitor(), "namespace": c.Metadata.Namespace, "labels": lbls},
		"spec": map[string]any{
			"selector":            map[string]any{"matchLabels": map[string]any{pc.LabelCluster: c.Metadata.Name}},
			"podMetricsEndpoints": []any{endpoint},
		},
	}}
	u.SetGroupVersionKind(PodMonitorKind)
	return u
}

// relabelings are RelabelConfigs in the operator's JSON, with only the
// fields written (the CRD defaults the action to replace).
func relabelings(rcs []cluster.RelabelConfig) []any {
	if len(rcs) == 0 {
		return nil
	}
	out := make([]any, 0, len(rcs))
	for _, rc := range rcs {
		r := map[string]any{}
		if len(rc.SourceLabels) > 0 {
			l := make([]any, len(rc.SourceLabels))
			for i, s := range rc.SourceLabels {
				l[i] = s
			}
			r["sourceLabels"] = l
		}
		if rc.Separator != nil {
			r["separator"] = *rc.Separator
		}
		if rc.TargetLabel != "" {
			r["targetLabel"] = rc.TargetLabel
		}
		if rc.Regex != "" {
			r["regex"] = rc.Regex
		}
		if rc.Modulus != 0 {
			r["modulus"] = int64(rc.Modulus)
		}
		if rc.Replacement != nil {
			r["replacement"] = *rc.Replacement
		}
		if rc.Action != "" {
			r["action"] = rc.Action
		}
		out = append(out, r)
	}
	return out
}
