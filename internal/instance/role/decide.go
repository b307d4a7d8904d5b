// Package role holds the pure core of the instance manager's role alignment:
// given what the primary Lease says and what the local PostgreSQL is doing,
// Decide names the one next action. It has no side effects, reads no clock
// and performs no I/O; the caller (internal/instance) observes, asks, and
// carries the action out.
//
// Besides the pod contract's types (LSN, SyncSet) it is a leaf: it must not import
// `k8s.io/client-go/...`, `github.com/jackc/pgx/...`, `os/exec`,
// `internal/instance`, `internal/instance/lease`, `internal/instance/postmaster`,
// `internal/instance/conffile`, `internal/plan`, `internal/kube` or
// `internal/observe`.
package role

import (
	"fmt"

	"github.com/pgsync/pgsync/internal/podcontract"
)

// Lease is the part of the cluster's `NAME-primary` Lease the decision needs.
type Lease struct {
	// Exists is false while the Lease object is missing or not yet seen.
	Exists bool
	// Holder is spec.holderIdentity: the instance running as primary; empty
	// when released (or never held).
	Holder string
	// Target is the pgsync.io/target-primary annotation.
	Target string
	// FinalLSN is the released primary's shutdown checkpoint location
	// (pgsync.io/final-lsn); HasFinalLSN says whether it is set.
	FinalLSN    LSN
	HasFinalLSN bool
	// ReleasedBy names the instance that published FinalLSN.
	ReleasedBy string
	// PrimaryAddress is host:port of the holder (pgsync.io/primary-address).
	PrimaryAddress string
	// PrimaryTLS: the holder serves TLS (pgsync.io/primary-tls names it).
	PrimaryTLS bool
	// Initialized is true once a primary has been bootstrapped for this
	// cluster (pgsync.io/system-identifier is set): no second initdb.
	Initialized bool
	// Abdicated: ReleasedBy gave the Lease up because its postgres kept
	// failing (pgsync.io/abdicated), without a final LSN.
	Abdicated bool
	// SyncSets is the holder's pgsync.io/synchronous-sets (podcontract.
	// AnnSyncSets); HasSyncSets says whether the annotation is there
	// (SyncSetsInvalid: there but unreadable).
	SyncSets        []podcontract.SyncSet
	HasSyncSets     bool
	SyncSetsInvalid bool
}

// Local is what the instance manager knows about its own PostgreSQL.
type Local struct {
	// HasData: PGDATA holds a database cluster.
	HasData bool
	// Up: the postmaster is meant to run (the owner keeps restarting it).
	Up bool
	// Accepting: a SQL connection succeeded in this observation; InRecovery
	// and ReplayLSN are only meaningful then.
	Accepting  bool
	InRecovery bool
	ReplayLSN  LSN
	// Upstream is the primary address in the running configuration.
	Upstream string
	// CheckpointLSN is the latest checkpoint location of a stopped cluster
	// (pg_controldata).
	CheckpointLSN LSN
	// Routed: the -rw EndpointSlice and pod labels were last written for
	// this instance as primary.
	Routed bool
	// Prepared: the running standby's configuration is the switchover
	// target's (a short WAL retry interval).
	Prepared bool
}

// Input is everything Decide looks at.
type Input struct {
	Self  string
	Lease Lease
	Local Local
	// RenewDue: the holder should (try to) renew now.
	RenewDue bool
	// RenewOverdue: the holder could not renew in time; the Lease may
	// expire before the next successful renewal.
	RenewOverdue bool
	// DemoteHeld: an attempt to hand the Lease to its target failed (the
	// shutdown outlasted the switchover delay, so there was no final
	// LSN); the holder serves as primary until the next attempt is due.
	DemoteHeld bool
	// RouteHeld: this instance handed the primary over moments ago and
	// NAME-rw may still route here; it stays down meanwhile.
	RouteHeld bool
	// PostgresGone: this holder's postgres keeps failing to start (a
	// crash loop): it gives the Lease up so that a standby can take over.
	PostgresGone bool
	// AbdicateHeld: this instance gave the Lease up moments ago; it stays
	// down while a standby takes over.
	AbdicateHeld bool
	// Failover is the election's verdict (failover.go) when another
	// instance holds the Lease and this one is a running standby; zero
	// otherwise.
	Failover Verdict
}

// Kind names an action.
type Kind int

const (
	// Wait: nothing to do until something changes.
	Wait Kind = iota
	// InitPrimary: initdb, start as primary, take the Lease.
	InitPrimary
	// Clone: base backup from Upstream, then start as its standby.
	Clone
	// StartPrimary: start the existing data as primary (Lease already ours,
	// or taken back first when TakeLease is set).
	StartPrimary
	// StartStandby: start as a standby of Upstream ("" = none yet).
	StartStandby
	// Rejoin: the stopped instance checks timelines against Upstream
	// (pg_rewind if they diverged), then starts as its standby.
	Rejoin
	// Follow: a running standby switches primary_conninfo to Upstream
	// (and drops the target's configuration if it has it).
	Follow
	// Prepare: the switchover target, still streaming from the old
	// primary, reloads with a short WAL retry interval so that its
	// promotion cannot wait out a WAL receiver restart.
	Prepare
	// Renew the Lease.
	Renew
	// Demote: CHECKPOINT, fast stop, publish the final LSN, release.
	Demote
	// Promote: take the Lease, promote, route -rw here.
	Promote
	// Route: point -rw and the role labels at this instance.
	Route
	// Fence: stop PostgreSQL, it must not accept writes.
	Fence
	// TakeOver: the holder's Lease expired and this standby was elected:
	// take the Lease from the silent holder (failover); the next decision
	// promotes.
	TakeOver
	// Abdicate: stop postgres, which keeps failing, and give the Lease up
	// (no final LSN) so that a standby takes over.
	Abdicate
)

var kindNames = [...]string{"wait", "init-primary", "clone", "start-primary", "start-standby", "rejoin", "follow", "prepare", "renew", "demote", "promote", "route", "fence", "take-over", "abdicate"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Action is Decide's answer.
type Action struct {
	Kind Kind
	// Upstream is the primary address for Clone, StartStandby, Rejoin,
	// Follow.
	Upstream string
	// TakeLease: StartPrimary must acquire the Lease first.
	TakeLease bool
	// Reason says why, for logs and /status.
	Reason string
}

func wait(format string, a ...any) Action {
	return Action{Kind: Wait, Reason: fmt.Sprintf(format, a...)}
}

// Decide returns the next action. It never returns an action that would
// leave two writable primaries: an instance writes only while it holds the
// Lease and can renew it.
func Decide(in Input) Action {
	l, pg := in.Lease, in.Local
	writable := pg.Up && pg.Accepting && !pg.InRecovery

	if !l.Exists {
		if writable {
			return Action{Kind: Fence, Reason: "primary Lease is missing"}
		}
		return wait("primary Lease not found")
	}
	if !pg.HasData {
		return decideEmpty(in)
	}

	switch l.Holder {
	case in.Self:
		return decideHolder(in)
	case "":
		return decideReleased(in)
	default:
		if writable {
			return Action{Kind: Fence, Reason: fmt.Sprintf("writable while %s holds the Lease", l.Holder)}
		}
		if in.Failover.Elected && pg.Up && pg.Accepting && pg.InRecovery {
			return Action{Kind: TakeOver, Reason: in.Failover.Reason}
		}
		if l.PrimaryAddress == "" {
			return wait("primary %s has not published its address", l.Holder)
		}
		if !pg.Up && in.RouteHeld {
			return wait("handed over to %s: down until NAME-rw no longer routes here", l.Holder)
		}
		if !pg.Up {
			return Action{Kind: Rejoin, Upstream: l.PrimaryAddress, Reason: fmt.Sprintf("follow primary %s", l.Holder)}
		}
		if pg.Upstream != l.PrimaryAddress {
			return Action{Kind: Follow, Upstream: l.PrimaryAddress, Reason: fmt.Sprintf("primary is now %s", l.Holder)}
		}
		if l.Target == in.Self && pg.Accepting && pg.InRecovery && !pg.Prepared {
			return Action{Kind: Prepare, Upstream: l.PrimaryAddress, Reason: "switchover target: prepare to take over"}
		}
		if l.Target != in.Self && pg.Prepared {
			return Action{Kind: Follow, Upstream: l.PrimaryAddress, Reason: "no longer the switchover target"}
		}
		if in.Failover.Expired {
			return wait("%s", in.Failover.Reason)
		}
		return wait("standby of %s", l.Holder)
	}
}

func decideEmpty(in Input) Action {
	l := in.Lease
	switch {
	case l.Holder == "" && l.Target == in.Self && !l.Initialized:
		return Action{Kind: InitPrimary, Reason: "designated primary with empty PGDATA"}
	case l.Holder == in.Self:
		return wait("Lease names this instance as primary but PGDATA is empty; refusing to initdb over a running cluster")
	case l.Holder != "" && l.PrimaryAddress != "":
		return Action{Kind: Clone, Upstream: l.PrimaryAddress, Reason: fmt.Sprintf("empty PGDATA, clone from %s", l.Holder)}
	default:
		return wait("empty PGDATA and no primary to clone from")
	}
}

func decideHolder(in Input) Action {
	l, pg := in.Lease, in.Local
	moving := l.Target != "" && l.Target != in.Self
	if in.RenewOverdue && pg.Up {
		return Action{Kind: Fence, Reason: "cannot renew the primary Lease before it expires"}
	}
	if in.PostgresGone && !pg.Accepting {
		return Action{Kind: Abdicate, Reason: "postgres keeps failing to start: give the primary Lease up to a standby"}
	}
	if moving && !in.DemoteHeld {
		if in.RenewDue && !in.RenewOverdue {
			// Keep holding while the switchover waits for its
			// preconditions (the executor refuses to demote towards a
			// target that does not stream from here).
			return Action{Kind: Renew, Reason: "renew while a switchover is pending"}
		}
		return Action{Kind: Demote, Reason: fmt.Sprintf("switchover to %s", l.Target)}
	}
	if in.RenewOverdue {
		if in.RenewDue {
			return Action{Kind: Renew, Reason: "renew the primary Lease before starting as primary"}
		}
		return wait("fenced until the primary Lease can be renewed")
	}
	if !pg.Up {
		return Action{Kind: StartPrimary, Reason: "this instance holds the primary Lease"}
	}
	if !pg.Accepting {
		return wait("waiting for PostgreSQL to accept connections")
	}
	if pg.InRecovery {
		return Action{Kind: Promote, Reason: "holds the Lease but is still in recovery"}
	}
	if !pg.Routed {
		return Action{Kind: Route, Reason: "route -rw to this primary"}
	}
	if in.RenewDue {
		return Action{Kind: Renew}
	}
	if moving {
		return wait("primary: the switchover to %s failed, the next attempt is not due yet", l.Target)
	}
	return wait("primary")
}

func decideReleased(in Input) Action {
	l, pg := in.Lease, in.Local
	writable := pg.Up && pg.Accepting && !pg.InRecovery
	if writable {
		return Action{Kind: Fence, Reason: "writable without holding the Lease"}
	}
	if l.ReleasedBy == in.Self && l.Abdicated && !pg.Up {
		if in.AbdicateHeld {
			return wait("gave the primary Lease up (postgres kept failing); waiting for a standby to take it")
		}
		return Action{Kind: StartPrimary, TakeLease: true, Reason: "gave the primary Lease up but no standby took it: take it back"}
	}
	if l.Target != in.Self {
		if in.Failover.Elected && pg.Up && pg.Accepting && pg.InRecovery {
			return Action{Kind: TakeOver, Reason: in.Failover.Reason}
		}
		if in.Failover.Expired {
			return wait("%s", in.Failover.Reason)
		}
		if pg.Up || l.ReleasedBy == in.Self {
			return wait("primary Lease released; waiting for %s to take it", l.Target)
		}
		return Action{Kind: StartStandby, Reason: "no primary yet"}
	}
	// This instance is the target.
	if !l.Initialized {
		// initdb ran here but the Lease was never taken: finish bootstrap.
		if pg.Up {
			return wait("bootstrap: waiting for PostgreSQL")
		}
		return Action{Kind: StartPrimary, TakeLease: true, Reason: "finish bootstrap"}
	}
	if !pg.Up {
		if l.ReleasedBy == in.Self && l.HasFinalLSN && pg.CheckpointLSN == l.FinalLSN {
			return Action{Kind: StartPrimary, TakeLease: true, Reason: "switchover cancelled: take the Lease back"}
		}
		return Action{Kind: StartStandby, Reason: "start in recovery to replay up to the final LSN"}
	}
	if !pg.Accepting {
		return wait("waiting for PostgreSQL to accept connections")
	}
	if !l.HasFinalLSN {
		return wait("primary Lease released without a final LSN; promotion needs one (failover is not automatic)")
	}
	if pg.ReplayLSN < l.FinalLSN {
		return wait("replayed %s, waiting for %s", pg.ReplayLSN, l.FinalLSN)
	}
	return Action{Kind: Promote, Reason: fmt.Sprintf("replayed %s ≥ final LSN %s", pg.ReplayLSN, l.FinalLSN)}
}
