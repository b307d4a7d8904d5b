package role

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgsync/pgsync/internal/podcontract"
)

// Failover: when the primary Lease's holder stops renewing (its pod, node
// or manager died, or it is cut off from the API server and fenced
// itself), the standbys elect the most advanced one among themselves; it
// takes the expired Lease (an Update with the resourceVersion it judged
// expired, so exactly one taker succeeds), then promotes.
//
// Expiry is judged on the elector's own clock from when it *saw* the
// holder's last renewal (LeaseSeen), never from the renewTime the holder
// wrote: a renewal is seen no earlier than it was sent, so the holder,
// which stops writing at its send time + ¾ × duration, has stopped before
// any elector's LeaseSeen + duration, whatever the clocks' offsets.

// Candidate is one standby as an election sees it: the elector itself
// (observed locally) or a peer (its /status).
type Candidate struct {
	Name string
	// Ordinal breaks ties: the lower one wins (NAME-0 before NAME-1).
	Ordinal int
	// Reachable: its /status answered in this round (always for self).
	Reachable bool
	// Standby: a running PostgreSQL in recovery that accepts connections.
	Standby bool
	// Received is the end of the WAL it received and flushed (what a
	// promotion would replay up to).
	Received LSN
	// StreamedAt is the last time its WAL receiver was seen streaming.
	StreamedAt time.Time
}

// Election is everything Elect looks at.
type Election struct {
	Now time.Time
	// Holder is the Lease's holder whose renewals stopped; LeaseSeen is
	// when this elector saw its last renewal (or the Lease, at the
	// manager's start, whichever is later).
	Holder    string
	LeaseSeen time.Time
	// Released: the holder released the Lease for a switchover (Holder
	// is then who released it, LeaseSeen when the release was seen) and
	// its target has not taken it. FinalLSN is the released primary's
	// shutdown checkpoint: a candidate must have received it, so the
	// failover loses no commit.
	Released bool
	FinalLSN LSN
	// LeaseDuration as stored on the Lease; FailoverDelay is
	// spec.failoverDelay: how much longer to wait after the expiry.
	LeaseDuration time.Duration
	FailoverDelay time.Duration
	// RecentStreaming: a candidate must have streamed at or after
	// LeaseSeen − RecentStreaming (it was following the holder while the
	// holder was alive).
	RecentStreaming time.Duration
	Self            Candidate
	Peers           []Candidate
	// Synchronous: this instance's replication settings turn synchronous
	// replication on. Then, or when the Lease carries SyncSets at all
	// (HasSyncSets), the election is restricted (electSync).
	Synchronous     bool
	SyncSets        []podcontract.SyncSet
	HasSyncSets     bool
	SyncSetsInvalid bool
}

// Verdict is Elect's answer.
type Verdict struct {
	// Expired: the holder's Lease ran out (failover delay included).
	Expired bool
	// Elected: this instance should take the Lease and promote.
	Elected bool
	// Until: when not yet expired, the moment it will be.
	Until  time.Time
	Reason string
	// SyncRefused: expired, but synchronous replication forbids any
	// promotion now (too few synchronous standbys answer, or none is
	// known); the manager records it as an Event.
	SyncRefused bool
}

// FailoverAt is when a Lease seen renewed at seen may be taken over.
func FailoverAt(seen time.Time, duration, delay time.Duration) time.Time {
	return seen.Add(duration + delay)
}

// Elect decides whether this standby takes over the primary Lease. It
// never elects while the Lease is valid; it elects only a standby that is
// running, was streaming until recently, and whose received LSN is the
// highest among the reachable eligible standbys (equal LSNs: the lowest
// ordinal). Peers that do not answer cannot be compared and are left out;
// the Lease's optimistic concurrency still lets only one taker win.
//
// A Lease released for a switchover whose target never takes it (it died
// right after the release) is taken over the same way, a Lease duration
// after the release was seen, by a standby that has the final LSN.
func Elect(e Election) Verdict {
	if e.Holder == "" || e.Holder == e.Self.Name {
		return Verdict{Reason: "no other holder to take over from"}
	}
	at := FailoverAt(e.LeaseSeen, e.LeaseDuration, e.FailoverDelay)
	if e.LeaseSeen.IsZero() || e.Now.Before(at) {
		if e.Released {
			return Verdict{Until: at, Reason: fmt.Sprintf("primary Lease released by %s; its target may take it until %s", e.Holder, at.UTC().Format(time.RFC3339Nano))}
		}
		return Verdict{Until: at, Reason: fmt.Sprintf("primary Lease of %s valid until %s", e.Holder, at.UTC().Format(time.RFC3339Nano))}
	}
	v := Verdict{Expired: true}
	if why := e.ineligible(e.Self); why != "" {
		v.Reason = fmt.Sprintf("primary Lease of %s expired; not a candidate: %s", e.Holder, why)
		return v
	}
	patience := max(e.LeaseDuration, e.RecentStreaming)
	if e.Synchronous || e.HasSyncSets {
		return e.electSync(v, !e.Now.Before(at.Add(patience)))
	}
	// A more advanced standby that answers but has not taken over a
	// Lease duration after the expiry (its manager cannot reach the API
	// server, say) is not waited for any longer: any candidate may take
	// over then, the Lease write still lets only one win.
	if !e.Now.Before(at.Add(patience)) {
		v.Elected = true
		v.Reason = fmt.Sprintf("primary Lease of %s expired %s ago and no more advanced standby took over; taking over (received %s)",
			e.Holder, e.Now.Sub(at).Round(time.Millisecond), e.Self.Received)
		return v
	}
	for _, p := range e.Peers {
		if p.Name == e.Self.Name || p.Name == e.Holder || e.ineligible(p) != "" {
			continue
		}
		if p.Received > e.Self.Received || (p.Received == e.Self.Received && p.Ordinal < e.Self.Ordinal) {
			v.Reason = fmt.Sprintf("primary Lease of %s expired; %s is more advanced (received %s, here %s)", e.Holder, p.Name, p.Received, e.Self.Received)
			if p.Received == e.Self.Received {
				v.Reason = fmt.Sprintf("primary Lease of %s expired; %s received as much (%s) and has the lower ordinal", e.Holder, p.Name, p.Received)
			}
			return v
		}
	}
	v.Elected = true
	v.Reason = fmt.Sprintf("primary Lease of %s expired; most advanced reachable standby (received %s)", e.Holder, e.Self.Received)
	return v
}

// ineligible says why c cannot be elected ("" = it can).
func (e Election) ineligible(c Candidate) string {
	switch {
	case !c.Reachable:
		return "unreachable"
	case !c.Standby:
		return "not a running standby"
	case c.StreamedAt.IsZero() || c.StreamedAt.Before(e.LeaseSeen.Add(-e.RecentStreaming)):
		return "not streaming from the primary recently"
	case e.Released && c.Received < e.FinalLSN:
		return fmt.Sprintf("received %s, short of the released primary's final LSN %s", c.Received, e.FinalLSN)
	}
	return ""
}

// electSync is the election with synchronous replication. A commit was
// acknowledged once Number of a set's listed standbys flushed it (ANY; and
// FIRST too: PostgreSQL's FIRST n waits for the n highest-priority
// standbys *streaming at the time*, so when one of the first n is away
// another listed one stands in, and any n of the list may hold a commit).
// Among the answers of at least listed − Number + 1 listed standbys one
// is of every possible n, so the most advanced of them holds every
// acknowledged commit (WAL is one sequence: whoever flushed furthest has
// all that others flushed). The holder publishes every set that may have
// acknowledged a commit not yet known to be held under the newest one
// (podcontract.AnnSyncSets); each must be met. Only a listed standby is
// elected, and only the most advanced one: fewer answers, an unpublished
// or unsettled set, or a more advanced standby that cannot be elected
// mean no promotion (writes stay down rather than lose a commit).
// lateOK: the patience is over, so a standby as advanced as the best one
// (not only the best by ordinal) may take over.
func (e Election) electSync(v Verdict, lateOK bool) Verdict {
	refuse := func(format string, args ...any) Verdict {
		v.Reason = fmt.Sprintf("primary Lease of %s expired; synchronous replication: no failover: ", e.Holder) + fmt.Sprintf(format, args...)
		v.SyncRefused = true
		return v
	}
	switch {
	case e.SyncSetsInvalid:
		return refuse("the Lease's %s cannot be read, so which standbys hold the acknowledged commits is unknown", podcontract.AnnSyncSets)
	case !e.HasSyncSets || len(e.SyncSets) == 0:
		return refuse("%s published no synchronous standby set (%s), so which standbys hold the acknowledged commits is unknown", e.Holder, podcontract.AnnSyncSets)
	case !e.SyncSets[0].Settled:
		return refuse("%s's first synchronous standby set %s was not yet confirmed by its standbys, so commits acknowledged before it may be on no standby that answers", e.Holder, setText(e.SyncSets[0]))
	}
	answered := map[string]Candidate{e.Self.Name: e.Self}
	for _, p := range e.Peers {
		if p.Name == e.Holder || p.Name == e.Self.Name || !p.Reachable || !p.Standby {
			continue
		}
		answered[p.Name] = p
	}
	listed := map[string]bool{}
	for _, set := range e.SyncSets {
		if set.Number <= 0 {
			continue // asynchronous: it acknowledged nothing on a standby
		}
		n := 0
		for _, name := range set.Standbys {
			listed[name] = true
			if _, ok := answered[name]; ok {
				n++
			}
		}
		if need := len(set.Standbys) - set.Number + 1; n < need {
			return refuse("%d of the %d standbys of %s answered; %d must, to be sure one holds every commit acknowledged by %d of them",
				n, len(set.Standbys), setText(set), need, set.Number)
		}
	}
	if !listed[e.Self.Name] {
		return refuse("this instance is not a synchronous standby (%s)", setsText(e.SyncSets))
	}
	best := e.Self
	for _, c := range answered {
		if listed[c.Name] && (c.Received > best.Received || (c.Received == best.Received && c.Ordinal < best.Ordinal)) {
			best = c
		}
	}
	switch {
	case best.Name == e.Self.Name, best.Received == e.Self.Received && (lateOK || e.ineligible(best) != ""):
		v.Elected = true
		v.Reason = fmt.Sprintf("primary Lease of %s expired; most advanced synchronous standby among a quorum of %s (received %s)", e.Holder, setsText(e.SyncSets), e.Self.Received)
		return v
	case e.ineligible(best) != "":
		return refuse("the most advanced synchronous standby %s (received %s, here %s) cannot be elected: %s", best.Name, best.Received, e.Self.Received, e.ineligible(best))
	case best.Received == e.Self.Received:
		v.Reason = fmt.Sprintf("primary Lease of %s expired; %s received as much (%s) and has the lower ordinal", e.Holder, best.Name, best.Received)
	default:
		v.Reason = fmt.Sprintf("primary Lease of %s expired; %s is more advanced (received %s, here %s)", e.Holder, best.Name, best.Received, e.Self.Received)
	}
	return v
}

func setText(s podcontract.SyncSet) string {
	return fmt.Sprintf("%s %d (%s)", strings.ToUpper(s.Method), s.Number, strings.Join(s.Standbys, ","))
}

func setsText(sets []podcontract.SyncSet) string {
	var out []string
	for _, s := range sets {
		if s.Number > 0 && !slices.Contains(out, setText(s)) {
			out = append(out, setText(s))
		}
	}
	return strings.Join(out, " and ")
}
