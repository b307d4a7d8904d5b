package cluster

import "regexp"

// ReplicationSlotsConfiguration is CloudNativePG's spec.replicationSlots:
// physical replication slots the primary's manager keeps for every
// standby (highAvailability), copied onto the standbys so that a promoted
// one has them for everybody, and the user's own physical slots copied to
// the standbys (synchronizeReplicas). Omitted, pgsync applies
// CloudNativePG's defaults: HA slots on, prefix _cnpg_, every 30 s.
type ReplicationSlotsConfiguration struct {
	HighAvailability *ReplicationSlotsHAConfiguration `json:"highAvailability"`
	// UpdateInterval is how often, in seconds, a standby copies the
	// primary's slot positions (0: the default, 30).
	UpdateInterval      int                               `json:"updateInterval"`
	SynchronizeReplicas *SynchronizeReplicasConfiguration `json:"synchronizeReplicas"`
}

// ReplicationSlotsHAConfiguration is spec.replicationSlots.highAvailability.
type ReplicationSlotsHAConfiguration struct {
	// Enabled: nil is true (CloudNativePG's default).
	Enabled *bool `json:"enabled"`
	// SlotPrefix: "" is DefaultSlotPrefix.
	SlotPrefix string `json:"slotPrefix"`
}

// SynchronizeReplicasConfiguration is
// spec.replicationSlots.synchronizeReplicas: the user's physical slots on
// the primary, copied to the standbys unless a pattern excludes them.
type SynchronizeReplicasConfiguration struct {
	// Enabled: nil is true (CloudNativePG's default).
	Enabled         *bool    `json:"enabled"`
	ExcludePatterns []string `json:"excludePatterns"`
}

// CloudNativePG's defaults for spec.replicationSlots.
const (
	DefaultSlotPrefix             = "_cnpg_"
	DefaultSlotUpdateIntervalSecs = 30
	maxSlotNameLen                = 63 // NAMEDATALEN - 1
	slotPrefixPattern             = `^[0-9a-z_]*$`
)

var slotPrefixRe = regexp.MustCompile(slotPrefixPattern)

// HASlots says whether the HA slots are on (the default).
func (s *Spec) HASlots() bool {
	r := s.ReplicationSlots
	return r == nil || r.HighAvailability == nil || r.HighAvailability.Enabled == nil || *r.HighAvailability.Enabled
}

// SlotPrefix is the HA slots' prefix.
func (s *Spec) SlotPrefix() string {
	if r := s.ReplicationSlots; r != nil && r.HighAvailability != nil && r.HighAvailability.SlotPrefix != "" {
		return r.HighAvailability.SlotPrefix
	}
	return DefaultSlotPrefix
}

// SlotUpdateInterval is spec.replicationSlots.updateInterval in seconds.
func (s *Spec) SlotUpdateInterval() int {
	if r := s.ReplicationSlots; r != nil && r.UpdateInterval > 0 {
		return r.UpdateInterval
	}
	return DefaultSlotUpdateIntervalSecs
}

// SynchronizeUserSlots says whether the user's physical slots are copied
// to the standbys (the default).
func (s *Spec) SynchronizeUserSlots() bool {
	r := s.ReplicationSlots
	return r == nil || r.SynchronizeReplicas == nil || r.SynchronizeReplicas.Enabled == nil || *r.SynchronizeReplicas.Enabled
}

// validateSlots checks spec.replicationSlots with CloudNativePG's rules.
func validateSlots(c *Cluster, bad func(field, format string, args ...any)) {
	r := c.Spec.ReplicationSlots
	if r == nil {
		return
	}
	const p = "spec.replicationSlots"
	if r.UpdateInterval < 0 {
		bad(p+".updateInterval", "must be at least 1 second (got %d)", r.UpdateInterval)
	}
	if h := r.HighAvailability; h != nil {
		if !slotPrefixRe.MatchString(h.SlotPrefix) {
			bad(p+".highAvailability.slotPrefix", "%q may only hold lower case letters, digits and '_' (a slot name's characters)", h.SlotPrefix)
		} else if longest := len(h.SlotPrefix) + len(c.Metadata.Name) + 1 + len(itoa(max(c.Spec.Instances-1, 0))); longest > maxSlotNameLen {
			bad(p+".highAvailability.slotPrefix", "%q makes the slot names up to %d characters long, more than PostgreSQL's %d", h.SlotPrefix, longest, maxSlotNameLen)
		}
	}
	if y := r.SynchronizeReplicas; y != nil {
		for i, pat := range y.ExcludePatterns {
			if _, err := regexp.Compile(pat); err != nil {
				bad(p+".synchronizeReplicas.excludePatterns["+itoa(i)+"]", "not a regular expression: %v", err)
			}
		}
	}
}
