package podcontract

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
