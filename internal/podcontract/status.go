package podcontract

import (
	"encoding/json"
	"time"
)

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

	// LastStreamingAt is the last time this standby's WAL receiver was
	// seen streaming (the failover election wants it recent).
	LastStreamingAt time.Time `json:"lastStreamingAt,omitzero"`
	// LastFailover is the cluster's last failover as this instance knows
	// it (the Lease's record; on the new primary with the promotion LSN).
	LastFailover *Failover `json:"lastFailover,omitempty"`
	// LastRejoin is this instance's last return as a standby after it
	// lost the primary Lease in a failover: what of its WAL was discarded.
	LastRejoin *Rejoin `json:"lastRejoin,omitempty"`
	// ManagedRoles is the primary's last reconciliation of
	// spec.managed.roles (roles.go); nil on standbys and without roles.
	ManagedRoles *ManagedRolesStatus `json:"managedRoles,omitempty"`
	// CustomQueries is the last scrape's run of the custom metrics
	// queries (spec.monitoring.customQueriesConfigMap, customQueriesSecret);
	// nil without them, and before the first scrape.
	CustomQueries *CustomQueriesStatus `json:"customQueries,omitempty"`
	// CA is the cluster CA as this instance sees it (carotation.go); nil
	// without TLS.
	CA *CAStatus `json:"ca,omitempty"`

	// TLSProblem says what is wrong with spec.certificates' Secrets of
	// the user's as this instance sees them (a certificate not naming the
	// address the instances connect to, not signed by its CA, expiring,
	// unparsable); "" when nothing is.
	TLSProblem string `json:"tlsProblem,omitempty"`

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

// Failover records one failover: the Lease taken over From a holder that
// stopped renewing, To the elected standby, At (the take-over time).
//
// The lost window with asynchronous replication: FromLSN is the old
// primary's WAL position at its last renewal (pgsync.io/primary-lsn, up
// to a third of the Lease duration old), PromotedLSN where the new primary
// ended recovery; LostBytesAtLeast = FromLSN − PromotedLSN when positive.
// It is a lower bound: the old primary may have written more after its
// last renewal. The exact discarded range is known only when the old
// primary rejoins (its Rejoin).
type Failover struct {
	From             string    `json:"from"`
	To               string    `json:"to"`
	At               time.Time `json:"at"`
	FromLSN          string    `json:"fromLSN,omitempty"`
	ReceivedLSN      string    `json:"receivedLSN,omitempty"`
	PromotedLSN      string    `json:"promotedLSN,omitempty"`
	LostBytesAtLeast int64     `json:"lostBytesAtLeast"`
	// Timeline is the new primary's timeline.
	Timeline uint32 `json:"timeline,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Event reasons the instance manager records on its own Pod, so that a
// failover and what it cost are seen where Kubernetes users look
// (kubectl describe pod, kubectl get events) and not only in /status.
const (
	// EventFailoverPromoted: this instance took the expired primary Lease
	// over and promoted; the message says from whom and the lost window.
	EventFailoverPromoted = "FailoverPromoted"
	// EventRejoinDiscardedWAL: a former primary discarded the WAL the new
	// primary never received, to rejoin as its standby (Rejoin).
	EventRejoinDiscardedWAL = "RejoinDiscardedWAL"
	// EventFailoverRefused: the primary Lease expired but this standby
	// will not take it over, because with synchronous replication too few
	// synchronous standbys answer to be sure of every acknowledged commit
	// (the message says which set and who answered).
	EventFailoverRefused = "FailoverRefused"
)

// ParseFailover reads AnnLastFailover's value.
func ParseFailover(s string) (Failover, bool) {
	if s == "" {
		return Failover{}, false
	}
	var f Failover
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		return Failover{}, false
	}
	return f, true
}

// Rejoin records how a former primary came back as a standby after a
// failover: the WAL it had beyond the point where the new primary's
// timeline forked ([DiscardedFrom, DiscardedTo), DiscardedBytes and the
// commits in it) was thrown away by pg_rewind, or with the whole data
// directory when a new base backup replaced it.
type Rejoin struct {
	At               time.Time `json:"at"`
	Primary          string    `json:"primary"`
	Method           string    `json:"method"` // "none", "pg_rewind" or "base backup"
	DiscardedFrom    string    `json:"discardedFrom,omitempty"`
	DiscardedTo      string    `json:"discardedTo,omitempty"`
	DiscardedBytes   int64     `json:"discardedBytes"`
	DiscardedCommits int       `json:"discardedCommits"`
	CommitsCounted   bool      `json:"commitsCounted"`
	FallbackReason   string    `json:"fallbackReason,omitempty"`
}
