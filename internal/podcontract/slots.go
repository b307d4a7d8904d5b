package podcontract

import "strings"

// Slots is the replication slot settings of ReplicationKey
// (spec.replicationSlots). Replication.Slots nil means CloudNativePG's
// defaults (DefaultSlots): a pgsync upgrade then changes no ConfigMap, and
// a manager reading an older ConfigMap applies the same defaults.
type Slots struct {
	// HA: the primary keeps a physical slot per standby (named by
	// SlotName) that the standby streams through; the standbys keep
	// copies of the others' slots.
	HA     bool   `json:"highAvailability"`
	Prefix string `json:"slotPrefix"`
	// UpdateIntervalSeconds: how often a standby copies the primary's
	// slot positions.
	UpdateIntervalSeconds int `json:"updateInterval"`
	// SynchronizeUser: the primary's other physical slots are copied to
	// the standbys too, unless a pattern of Exclude (Go regular
	// expressions, as CloudNativePG) matches the slot's name.
	SynchronizeUser bool     `json:"synchronizeReplicas"`
	Exclude         []string `json:"excludePatterns,omitempty"`
}

// DefaultSlots are CloudNativePG's defaults for spec.replicationSlots.
var DefaultSlots = Slots{HA: true, Prefix: "_cnpg_", UpdateIntervalSeconds: 30, SynchronizeUser: true}

// SlotsOrDefault is r's slot settings.
func (r Replication) SlotsOrDefault() Slots {
	if r.Slots == nil {
		return DefaultSlots
	}
	return *r.Slots
}

// SlotName is the HA slot of instance: prefix and instance name, lower
// case, each run of characters other than [a-z0-9_] written as one '_'
// (CloudNativePG's naming, so NAME-1 with the default prefix streams
// through _cnpg_name_1).
func SlotName(prefix, instance string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(prefix + instance) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under {
			b.WriteByte('_')
		}
		under = true
	}
	return b.String()
}
