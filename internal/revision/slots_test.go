package revision

import "testing"

// TestSlotsDefaultsEncodeAsUnset: replicationSlots written at
// CloudNativePG's defaults hashes as a cluster without it (so writing the
// defaults out triggers no reload), and monitoring is off unless written.
func TestSlotsDefaultsEncodeAsUnset(t *testing.T) {
	base := load(t, minimal())
	written := load(t, minimal("  replicationSlots:\n    highAvailability: {enabled: true, slotPrefix: _cnpg_}\n    updateInterval: 30\n    synchronizeReplicas: {enabled: true}\n"))
	if Config(written) != Config(base) || Restart(written) != Restart(base) {
		t.Errorf("defaults written out change the revisions: %q", configFields(written))
	}
	if mon := load(t, minimal("  monitoring: {}\n")); Restart(mon) == Restart(base) {
		t.Error("monitoring: {} does not change the restart revision, though it adds the metrics port and flag")
	}
}
