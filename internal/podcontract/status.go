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

	// RouteHeld: this instance handed the primary over moments ago and
	// keeps postgres down until NAME-rw no longer routes here (so -rw
	// clients are refused, not answered read-only); a few seconds at most.
	RouteHeld bool `json:"routeHeld,omitempty"`
	// (The hold lasts at most RouteHoldMax.)
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
	// params ConfigMap) whose parameters and pg_hba lines postgres has
	// loaded: set after the reload (or start) that applied all of them,
	// empty before the first, while postgres is not accepting
	// connections, and after a reload that applied only part of them.
	ConfigRevision string `json:"configRevision,omitempty"`

	PendingRestart []string `json:"pendingRestart"`
	// RejectedParameters are parameters of the ConfigMap that are not in
	// effect: refused by pgsync (it sets them itself), or by postgres (an
	// invalid value or name; postgres's log says why), or overridden by
	// postgresql.auto.conf. While there is one, ConfigRevision is not the
	// ConfigMap's.
	RejectedParameters []string `json:"rejectedParameters,omitempty"`
	// RejectedHBA are the ConfigMap's pg_hba lines postgres refused, as
	// "pg_hba[i]: error"; postgres then keeps its previous pg_hba.conf.
	RejectedHBA []string `json:"rejectedHBA,omitempty"`

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

// RouteHoldMax bounds how long a former primary keeps postgres down after
// handing over, waiting for NAME-rw to stop routing to it (RouteHeld).
const RouteHoldMax = 3 * time.Second
