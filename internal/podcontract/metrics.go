package podcontract

import "time"

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

// Custom queries (spec.monitoring.customQueriesConfigMap and
// customQueriesSecret): each {name, key} is projected, optional (a
// missing object or key is a missing file the manager reports, not a pod
// that cannot start), into the metrics-queries volume at
// MetricsQueriesDir/configmap/NAME/KEY or MetricsQueriesDir/secret/NAME/KEY.
// The manager re-reads the files at every scrape (the kubelet updates a
// projected volume in place), in the order of FlagMetricsQueries, which
// names them relative to MetricsQueriesDir: the ConfigMaps' first, then
// the Secrets', each list in the Cluster file's order (a query of a
// later file replaces one of the same name, as in CloudNativePG).
const (
	MetricsQueriesVolume    = "metrics-queries"
	MetricsQueriesDir       = "/etc/pgsync/metrics-queries"
	MetricsQueriesConfigMap = "configmap"
	MetricsQueriesSecret    = "secret"
	// FlagMetricsQueries, repeated: one projected file each.
	FlagMetricsQueries = "metrics-queries"
	// FlagMetricsTLS=true serves PathMetrics over TLS with the
	// instance's server certificate (spec.monitoring.tls.enabled).
	FlagMetricsTLS = "metrics-tls"
	// MetricsRole is the PostgreSQL role custom queries run as
	// (CloudNativePG's: a login member of pg_monitor, no superuser), so a
	// query in a ConfigMap never runs with the superuser's rights; the
	// primary's manager creates it.
	MetricsRole = "cnpg_metrics_exporter"
)

// MetricsQueriesPath is where a {name, key} of kind (MetricsQueriesConfigMap,
// MetricsQueriesSecret) is projected, relative to MetricsQueriesDir.
func MetricsQueriesPath(kind, name, key string) string { return kind + "/" + name + "/" + key }

// CustomQueriesStatus is Status.CustomQueries: when the last scrape ran
// the custom queries, how many of them it ran (skipped ones aside: on a
// standby, a primary-only query; another server version's), and each
// problem: a file missing or not valid, a query refused, or one that
// failed. The other queries are served all the same.
type CustomQueriesStatus struct {
	At     time.Time          `json:"at"`
	Ran    int                `json:"ran"`
	Errors []CustomQueryError `json:"errors,omitempty"`
}

// CustomQueryError is one problem: the file (relative to
// MetricsQueriesDir), the query's name ("" for the file's own) and the
// target database when it failed on one. From a Secret, PostgreSQL's
// message is left out (its SQLSTATE stays): it may quote the query.
type CustomQueryError struct {
	Source   string `json:"source"`
	Query    string `json:"query,omitempty"`
	Database string `json:"database,omitempty"`
	Error    string `json:"error"`
}
