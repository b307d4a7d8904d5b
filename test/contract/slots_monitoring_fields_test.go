package contract

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
)

// spec.replicationSlots' effects land in the params ConfigMap's
// replication.json, which the managers carry out (instance
// TestReplicationSlots); spec.monitoring's in the manager's flags and the
// metrics container port (instance TestMetrics scrapes them).
func init() {
	slots := func(f func(r *cluster.ReplicationSlotsConfiguration)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) {
			r := &cluster.ReplicationSlotsConfiguration{}
			f(r)
			s.ReplicationSlots = r
		}
	}
	const where = "ConfigMap replication.json → the managers' slots and primary_slot_name (instance TestReplicationSlots)"
	for path, set := range map[string]func(s *cluster.Spec){
		"spec.replicationSlots.highAvailability.enabled": slots(func(r *cluster.ReplicationSlotsConfiguration) {
			r.HighAvailability = &cluster.ReplicationSlotsHAConfiguration{Enabled: ptr(false)}
		}),
		"spec.replicationSlots.highAvailability.slotPrefix": slots(func(r *cluster.ReplicationSlotsConfiguration) {
			r.HighAvailability = &cluster.ReplicationSlotsHAConfiguration{SlotPrefix: "_ha_"}
		}),
		"spec.replicationSlots.updateInterval": slots(func(r *cluster.ReplicationSlotsConfiguration) { r.UpdateInterval = 5 }),
		"spec.replicationSlots.synchronizeReplicas.enabled": slots(func(r *cluster.ReplicationSlotsConfiguration) {
			r.SynchronizeReplicas = &cluster.SynchronizeReplicasConfiguration{Enabled: ptr(false)}
		}),
		"spec.replicationSlots.synchronizeReplicas.excludePatterns": slots(func(r *cluster.ReplicationSlotsConfiguration) {
			r.SynchronizeReplicas = &cluster.SynchronizeReplicasConfiguration{ExcludePatterns: []string{"^tmp_"}}
		}),
	} {
		effects[path] = effect{where: where, set: set, render: replicationKey}
	}
	effects["spec.monitoring.disableDefaultQueries"] = effect{
		where: "the manager's --metrics-default-queries=false (instance TestMetrics: no pg_ metrics then)",
		set: func(s *cluster.Spec) {
			s.Monitoring = &cluster.MonitoringConfiguration{DisableDefaultQueries: ptr(true)}
		},
		render: func(o *kube.Objects) any { return postgres(o).Args },
	}
}
