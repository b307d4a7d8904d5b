package podcontract

// The metrics endpoint (spec.monitoring): CloudNativePG's port and name,
// so scrape configurations written for it find pgsync's instances too.
const (
	MetricsPort     = 9187
	PortNameMetrics = "metrics"
	PathMetrics     = "/metrics"

	// FlagMetricsAddr: where `pgsync instance run` serves PathMetrics
	// ("" : not at all).
	FlagMetricsAddr = "metrics-addr"
	// FlagMetricsDefaultQueries=false leaves the PostgreSQL metrics out
	// (spec.monitoring.disableDefaultQueries).
	FlagMetricsDefaultQueries = "metrics-default-queries"
)
