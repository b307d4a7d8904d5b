package podcontract

import (
	"encoding/json"
	"fmt"
)

// The replication settings of the NAME-params ConfigMap: what the renderer
// derives from spec.postgresql.synchronous (or the legacy
// spec.minSyncReplicas/maxSyncReplicas) and the manager of the primary
// turns into synchronous_standby_names from the standbys that stream.

const (
	// ReplicationKey holds Replication as JSON, in the same ConfigMap
	// version as ParamsKey (a ConfigMap volume swaps the keys together).
	ReplicationKey = "replication.json"
	// ReplicationFile is read from the same ConfigMap volume; the manager
	// finds it next to the parameters file.
	ReplicationFile = ParamsDir + "/" + ReplicationKey
)

// Synchronous methods and data durability levels (CloudNativePG's values).
const (
	SyncMethodAny       = "any"
	SyncMethodFirst     = "first"
	DurabilityRequired  = "required"
	DurabilityPreferred = "preferred"
)

// Replication is the content of ReplicationKey.
type Replication struct {
	// Instances are every instance of the cluster (NAME-0 … NAME-N-1 for
	// spec.instances = N): each standby's application_name is its
	// instance name.
	Instances []string `json:"instances"`
	// Synchronous is nil when synchronous replication is off.
	Synchronous *Synchronous `json:"synchronous,omitempty"`
	// Slots is nil for the defaults (SlotsOrDefault, slots.go).
	Slots *Slots `json:"slots,omitempty"`
}

// Synchronous is spec.postgresql.synchronous, or the legacy
// minSyncReplicas/maxSyncReplicas translated (Legacy set).
type Synchronous struct {
	Method                     string   `json:"method"`
	Number                     int      `json:"number"`
	MaxStandbyNamesFromCluster *int     `json:"maxStandbyNamesFromCluster,omitempty"`
	StandbyNamesPre            []string `json:"standbyNamesPre,omitempty"`
	StandbyNamesPost           []string `json:"standbyNamesPost,omitempty"`
	DataDurability             string   `json:"dataDurability"`
	// Legacy: Number is maxSyncReplicas and Min minSyncReplicas, with
	// CloudNativePG's legacy rule (number shrinks to Min, then to the
	// streaming standbys: writes never block).
	Legacy bool `json:"legacy,omitempty"`
	Min    int  `json:"min,omitempty"`
}

// AnnSyncSets, on the primary Lease, is what the holder's
// synchronous_standby_names made (or may have made) its commits wait for:
// a JSON list of SyncSet, oldest first. The holder appends a set before
// the setting that makes it take effect is reloaded, and drops the older
// ones once the newest is Settled, so an election that satisfies every
// listed set finds a standby holding every synchronously acknowledged
// commit (role.Elect). Taking the Lease (a switchover or a failover)
// removes it: the new holder's first set starts unsettled.
const AnnSyncSets = "pgsync.io/synchronous-sets"

// SyncSet is one synchronous_standby_names value as an election reads it.
type SyncSet struct {
	// Method is SyncMethodAny or SyncMethodFirst; Number the standbys a
	// commit waits for (0: asynchronous, nothing waits).
	Method string `json:"method,omitempty"`
	Number int    `json:"number"`
	// Standbys are the names listed, the primary's own left out (it never
	// streams from itself); names of no instance (standbyNamesPre/Post)
	// count as listed standbys that never answer an election.
	Standbys []string `json:"standbys,omitempty"`
	// Settled: Number of the listed standbys flushed WAL written after
	// the set took effect, so they hold every commit acknowledged under
	// the sets before it (which may be dropped).
	Settled bool `json:"settled,omitempty"`
}

// ParseSyncSets reads AnnSyncSets' value.
func ParseSyncSets(s string) ([]SyncSet, error) {
	var out []SyncSet
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("%s: %w", AnnSyncSets, err)
	}
	return out, nil
}

// FormatSyncSets is AnnSyncSets' value for sets.
func FormatSyncSets(sets []SyncSet) string {
	b, _ := json.Marshal(sets)
	return string(b)
}
