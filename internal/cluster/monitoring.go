package cluster

import (
	"fmt"
)

// MonitoringConfiguration is CloudNativePG's spec.monitoring, the part
// pgsync has: set (even empty), every instance manager serves /metrics
// on port 9187 (named metrics) in the Prometheus format, with the custom
// queries of the ConfigMaps and Secrets named, over TLS if asked, and
// pgsync renders a PodMonitor when asked. The query TTL is refused by
// name (unsupported.go).
type MonitoringConfiguration struct {
	// DisableDefaultQueries leaves out the PostgreSQL metrics (the
	// manager's own stay): nil and false keep them.
	DisableDefaultQueries *bool `json:"disableDefaultQueries"`
	// EnablePodMonitor: pgsync renders a PodMonitor NAME (the Prometheus
	// Operator's kind, monitoring.coreos.com/v1) scraping the instances'
	// metrics port, with the relabelings below (podmonitor.go).
	EnablePodMonitor bool `json:"enablePodMonitor"`
	// PodMonitorRelabelings (before the scrape) and
	// PodMonitorMetricRelabelings (of the samples scraped) go into the
	// PodMonitor's endpoint as written. omitempty: a cluster without them
	// keeps the applied-spec annotation an older pgsync wrote (a new null
	// field would be drift of every cluster with spec.monitoring).
	PodMonitorRelabelings       []RelabelConfig `json:"podMonitorRelabelings,omitempty"`
	PodMonitorMetricRelabelings []RelabelConfig `json:"podMonitorMetricRelabelings,omitempty"`
	// CustomQueriesConfigMap and CustomQueriesSecret name the keys holding
	// custom queries in CloudNativePG's format; the pods project them and
	// the managers read them at every scrape (docs/metrics.md). omitempty,
	// as the relabelings: no drift of clusters without them.
	CustomQueriesConfigMap []KeySelector `json:"customQueriesConfigMap,omitempty"`
	CustomQueriesSecret    []KeySelector `json:"customQueriesSecret,omitempty"`
	// TLS: enabled serves /metrics over TLS with the instance's server
	// certificate.
	TLS *MonitoringTLS `json:"tls,omitempty"`
}

// KeySelector is a key of a ConfigMap or Secret of the cluster's
// namespace (CloudNativePG's ConfigMapKeySelector, SecretKeySelector).
type KeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// MonitoringTLS is spec.monitoring.tls.
type MonitoringTLS struct {
	Enabled bool `json:"enabled"`
}

// MetricsTLS says whether /metrics is served over TLS.
func (s *Spec) MetricsTLS() bool {
	return s.Monitoring != nil && s.Monitoring.TLS != nil && s.Monitoring.TLS.Enabled
}

// MetricsOn says whether the instances serve /metrics.
func (s *Spec) MetricsOn() bool { return s.Monitoring != nil }

// DefaultQueries says whether /metrics holds the PostgreSQL metrics.
func (s *Spec) DefaultQueries() bool {
	m := s.Monitoring
	return m != nil && (m.DisableDefaultQueries == nil || !*m.DisableDefaultQueries)
}

func validateMonitoring(c *Cluster, bad func(field, format string, args ...any)) {
	m := c.Spec.Monitoring
	if m == nil {
		return
	}
	for _, l := range []struct {
		field, kind string
		refs        []KeySelector
	}{{"spec.monitoring.customQueriesConfigMap", "ConfigMap", m.CustomQueriesConfigMap}, {"spec.monitoring.customQueriesSecret", "Secret", m.CustomQueriesSecret}} {
		seen := map[KeySelector]int{}
		for i, r := range l.refs {
			p := fmt.Sprintf("%s[%d]", l.field, i)
			switch {
			case r.Name == "":
				bad(p+".name", "required: the %s holding the queries", l.kind)
			case !dns1123Subdomain(r.Name):
				bad(p+".name", "%q is not a valid %s name", r.Name, l.kind)
			}
			switch {
			case r.Key == "":
				bad(p+".key", "required: the key of %s holding the queries", r.Name)
			case !validObjectKey(r.Key):
				bad(p+".key", "%q is not a valid %s key (letters, digits, '-', '_', '.')", r.Key, l.kind)
			}
			if j, dup := seen[r]; dup && r.Name != "" {
				bad(p, "%s %s key %s is listed already at %s[%d]", l.kind, r.Name, r.Key, l.field, j)
			} else if !dup {
				seen[r] = i
			}
		}
	}
}
