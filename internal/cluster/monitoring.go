package cluster

// MonitoringConfiguration is CloudNativePG's spec.monitoring, the part
// pgsync has: set (even empty), every instance manager serves /metrics
// on port 9187 (named metrics) in the Prometheus format. Custom queries,
// TLS, the PodMonitor's relabelings and the query TTL are refused by name
// (unsupported.go).
type MonitoringConfiguration struct {
	// DisableDefaultQueries leaves out the PostgreSQL metrics (the
	// manager's own stay): nil and false keep them.
	DisableDefaultQueries *bool `json:"disableDefaultQueries"`
	// EnablePodMonitor asks for a PodMonitor (the Prometheus Operator's
	// kind), which pgsync does not render: true is refused.
	EnablePodMonitor bool `json:"enablePodMonitor"`
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
	if m.EnablePodMonitor {
		bad("spec.monitoring.enablePodMonitor", "a PodMonitor is not supported by pgsync: it is a kind of the Prometheus Operator, whose CRD pgsync neither needs nor renders; "+
			"scrape port 9187 (named metrics) of the pods labelled pgsync.io/cluster with a PodMonitor of your own, or with Prometheus' pod discovery (docs/metrics.md)")
	}
}
