package podcontract

import "time"

// Status is the JSON document an instance manager serves at PathStatus,
// and what observation reads. Fields are only ever added. It never carries
// a credential.
type Status struct {
	Cluster  string `json:"cluster"`
	Instance string `json:"instance"`
	// Role: primary, standby, stopped, fenced or bootstrapping.
	Role string `json:"role"`

	Action       string `json:"action"`
	ActionReason string `json:"actionReason,omitempty"`
	LeaseHolder  string `json:"leaseHolder"`
	Target       string `json:"targetPrimary"`
	Upstream     string `json:"upstream,omitempty"`

	// Fenced: postgres was stopped because the Lease could not be renewed.
	Fenced          bool `json:"fenced"`
	PostgresWanted  bool `json:"postgresWanted"`
	PostgresRunning bool `json:"postgresRunning"`
	PostmasterPID   int  `json:"postmasterPID,omitempty"`
	PostgresStarts  int  `json:"postgresStarts"`
	PostgresCrashes int  `json:"postgresCrashes"`
	Accepting       bool `json:"acceptingConnections"`
	Streaming       bool `json:"streaming"`

	Timeline         uint32  `json:"timeline,omitempty"`
	CurrentLSN       string  `json:"currentLSN,omitempty"`
	ReceivedLSN      string  `json:"receivedLSN,omitempty"`
	ReplayedLSN      string  `json:"replayedLSN,omitempty"`
	FlushedLSN       string  `json:"flushedLSN,omitempty"`
	LagBytes         int64   `json:"replayLagBytes"`
	ReplayLagSeconds float64 `json:"replayLagSeconds"`
	ServerVersion    string  `json:"serverVersion,omitempty"`

	// ConfigRevision is the config revision (ConfigRevisionKey of the
	// params ConfigMap) whose parameters postgres has loaded: set after
	// the reload that applied them succeeded, empty before the first.
	ConfigRevision string `json:"configRevision,omitempty"`

	PendingRestart     []string `json:"pendingRestart"`
	RejectedParameters []string `json:"rejectedParameters,omitempty"`

	LastError     string    `json:"lastError,omitempty"`
	LastErrorTime time.Time `json:"lastErrorTime,omitzero"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Roles in Status.Role.
const (
	StatusPrimary       = "primary"
	StatusStandby       = "standby"
	StatusStopped       = "stopped"
	StatusFenced        = "fenced"
	StatusBootstrapping = "bootstrapping"
)
