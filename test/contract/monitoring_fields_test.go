package contract

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
)

// spec.monitoring's custom queries and TLS land in the manager's flags
// (--metrics-queries names each projected file, --metrics-tls) and the
// metrics-queries volume; instance TestMetricsCustomQueries serves them.
func init() {
	args := func(o *kube.Objects) any { return postgres(o).Args }
	for path, set := range map[string]func(m *cluster.MonitoringConfiguration){
		"spec.monitoring.customQueriesConfigMap[].name": func(m *cluster.MonitoringConfiguration) {
			m.CustomQueriesConfigMap = []cluster.KeySelector{{Name: "queries", Key: "custom-queries"}}
		},
		"spec.monitoring.customQueriesConfigMap[].key": func(m *cluster.MonitoringConfiguration) {
			m.CustomQueriesConfigMap = []cluster.KeySelector{{Name: "q", Key: "queries.yaml"}}
		},
		"spec.monitoring.customQueriesSecret[].name": func(m *cluster.MonitoringConfiguration) {
			m.CustomQueriesSecret = []cluster.KeySelector{{Name: "secret-queries", Key: "q"}}
		},
		"spec.monitoring.customQueriesSecret[].key": func(m *cluster.MonitoringConfiguration) {
			m.CustomQueriesSecret = []cluster.KeySelector{{Name: "s", Key: "queries.yaml"}}
		},
		"spec.monitoring.tls.enabled": func(m *cluster.MonitoringConfiguration) { m.TLS = &cluster.MonitoringTLS{Enabled: true} },
	} {
		effects[path] = effect{
			where: "the manager's --metrics-queries and --metrics-tls (instance TestMetricsCustomQueries)",
			set: func(s *cluster.Spec) {
				s.Monitoring = &cluster.MonitoringConfiguration{}
				set(s.Monitoring)
			},
			render: args,
		}
	}
}
