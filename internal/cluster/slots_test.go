package cluster

import "testing"

// TestSlotsAndMonitoringFiles: CloudNativePG-style files with replication
// slots and monitoring validate as written, and the defaults are
// CloudNativePG's.
func TestSlotsAndMonitoringFiles(t *testing.T) {
	for p, c := range loadEach(t, "testdata/cnpg/slots-*.yaml", 1) {
		if s := &c.Spec; !s.HASlots() || s.SlotPrefix() != "_cnpg_" || s.SlotUpdateInterval() != 30 || !s.SynchronizeUserSlots() {
			t.Errorf("%s: slots %v %q %d %v", p, s.HASlots(), s.SlotPrefix(), s.SlotUpdateInterval(), s.SynchronizeUserSlots())
		}
	}
	for p, c := range loadEach(t, "testdata/cnpg/monitoring.yaml", 1) {
		if !c.Spec.MetricsOn() || !c.Spec.DefaultQueries() {
			t.Errorf("%s: metrics %v, default queries %v", p, c.Spec.MetricsOn(), c.Spec.DefaultQueries())
		}
	}
	var s Spec
	if !s.HASlots() || s.SlotPrefix() != DefaultSlotPrefix || !s.SynchronizeUserSlots() || s.MetricsOn() || s.DefaultQueries() {
		t.Error("defaults: HA slots on, prefix _cnpg_, user slots copied, no metrics")
	}
	off := false
	s.ReplicationSlots = &ReplicationSlotsConfiguration{HighAvailability: &ReplicationSlotsHAConfiguration{Enabled: &off},
		SynchronizeReplicas: &SynchronizeReplicasConfiguration{Enabled: &off}, UpdateInterval: 5}
	s.Monitoring = &MonitoringConfiguration{DisableDefaultQueries: ptrTo(true)}
	if s.HASlots() || s.SynchronizeUserSlots() || s.SlotUpdateInterval() != 5 || !s.MetricsOn() || s.DefaultQueries() {
		t.Error("explicit values not read")
	}
}

func ptrTo[T any](v T) *T { return &v }
