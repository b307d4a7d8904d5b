package cluster

// MonitoringConfiguration is CloudNativePG's spec.monitoring, the part
// pgsync has: set (even empty), every instance manager serves /metrics
// on port 9187 (named metrics) in the Prometheus format, and pgsync
// renders a PodMonitor when asked. Custom queries, TLS and the query TTL
// are refused by name (unsupported.go).
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
}
