package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Failover, the I/O side (the decision is role.Elect): a standby whose
// holder's Lease has expired (on its own clock, plus failoverDelay) asks
// the other managers for their /status, elects, and the winner takes the
// Lease over (lease.TakeOver: optimistic concurrency on the copy judged
// expired, so one taker at most), then promotes like a switchover target
// and records what the failover may have lost.

// peerTimeout bounds one round of /status requests to the other managers.
const peerTimeout = 800 * time.Millisecond

// peerSource returns the HTTP addresses (host:port) of the cluster's
// managers; this instance's own may be among them (it is skipped by name).
type peerSource func(ctx context.Context) ([]string, error)

// staticPeers is --peers.
func staticPeers(addrs []string) peerSource {
	return func(context.Context) ([]string, error) { return addrs, nil }
}

// headlessPeers resolves NAME-hl.NAMESPACE.svc: the headless Service of
// the StatefulSet publishes every pod's address, ready or not (a standby
// whose primary died is not ready), and the managers serve /status on the
// same port everywhere.
func headlessPeers(cluster, namespace string, port int) peerSource {
	host := pc.Names{Cluster: cluster}.Headless() + "." + namespace + ".svc"
	return func(ctx context.Context) ([]string, error) {
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("look up the other instances (%s): %w", host, err)
		}
		var out []string
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, strconv.Itoa(port)))
		}
		return out, nil
	}
}

// fetchPeers reads every peer's /status in parallel within peerTimeout;
// the ones that do not answer are left out (unreachable).
func (m *Manager) fetchPeers(ctx context.Context) []role.Candidate {
	if m.peers == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	addrs, err := m.peers(ctx)
	if err != nil {
		m.log.Warn("failover: cannot list the other instances; electing among those that answer", "error", err.Error())
		return nil
	}
	client := &http.Client{}
	var mu sync.Mutex
	var out []role.Candidate
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := getStatus(ctx, client, a)
			if err != nil || s.Cluster != m.cfg.Cluster || s.Instance == m.cfg.Instance {
				return
			}
			c := candidateOf(m.cfg.Cluster, s)
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func getStatus(ctx context.Context, client *http.Client, addr string) (Status, error) {
	var s Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+pc.PathStatus, nil)
	if err != nil {
		return s, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET %s: %s", addr, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// candidateOf is a peer's /status as an election candidate.
func candidateOf(cluster string, s Status) role.Candidate {
	ord, ok := pc.Names{Cluster: cluster}.Ordinal(s.Instance)
	if !ok {
		ord = int(^uint(0) >> 1)
	}
	recv, _ := role.ParseLSN(s.ReceivedLSN)
	if replayed, err := role.ParseLSN(s.ReplayedLSN); err == nil && replayed > recv {
		recv = replayed
	}
	return role.Candidate{Name: s.Instance, Ordinal: ord, Reachable: true,
		Standby: s.Role == pc.StatusStandby && s.Accepting, Received: recv, StreamedAt: s.LastStreamingAt}
}

// election is the verdict for this observation: a running standby of
// another holder asks its peers only once the Lease has expired.
func (m *Manager) election(ctx context.Context, in role.Input, received role.LSN) role.Verdict {
	holder, renewTime, seenAt, d := m.lease.Seen()
	if holder != in.Lease.Holder || renewTime.IsZero() {
		// The watch has not settled on this holder's renewal yet.
		return role.Verdict{}
	}
	if d <= 0 {
		d = m.cfg.LeaseDuration
	}
	ord, ok := pc.Names{Cluster: m.cfg.Cluster}.Ordinal(m.cfg.Instance)
	if !ok {
		ord = int(^uint(0) >> 1)
	}
	e := role.Election{
		Now: m.now(), Holder: holder, LeaseSeen: seenAt, LeaseDuration: d, FailoverDelay: m.cfg.FailoverDelay,
		RecentStreaming: d,
		Released:        holder == "", FinalLSN: in.Lease.FinalLSN,
		Self: role.Candidate{Name: m.cfg.Instance, Ordinal: ord, Reachable: true,
			Standby: in.Local.Up && in.Local.Accepting && in.Local.InRecovery, Received: received,
			StreamedAt: m.status.Get().LastStreamingAt},
		Synchronous: m.config.rep.Synchronous != nil,
		SyncSets:    in.Lease.SyncSets, HasSyncSets: in.Lease.HasSyncSets, SyncSetsInvalid: in.Lease.SyncSetsInvalid,
	}
	if e.Released {
		e.Holder = in.Lease.ReleasedBy
		if in.Lease.Abdicated {
			// Given up, not expiring: no Lease duration to wait out.
			e.LeaseDuration = 0
		}
	}
	m.failoverAt = role.FailoverAt(seenAt, e.LeaseDuration, m.cfg.FailoverDelay)
	v := role.Elect(e)
	if !v.Elected && !v.SyncRefused {
		return v
	}
	e.Peers = m.fetchPeers(ctx)
	e.Now = m.now()
	m.electedOn = renewTime
	v = role.Elect(e)
	if v.Reason != m.lastElection {
		m.lastElection = v.Reason
		m.log.Info("failover election", "elected", v.Elected, "reason", v.Reason, "peers", len(e.Peers),
			"receivedLSN", received.String(), "holder", e.Holder, "released", e.Released, "leaseSeen", seenAt.Format(time.RFC3339Nano))
		if v.SyncRefused {
			m.event(corev1.EventTypeWarning, pc.EventFailoverRefused, v.Reason)
		}
	}
	return v
}

// takeOver takes the expired Lease (role.TakeOver); the next decision
// promotes.
func (m *Manager) takeOver(ctx context.Context, in role.Input, act role.Action, received role.LSN) error {
	from := in.Lease.Holder
	rec := pc.Failover{ReceivedLSN: received.String(), Reason: act.Reason}
	// A standby cut off from the API server (its watch silent, so the
	// Lease looks expired) must not hang here: client-go sets no request
	// timeout. When the write gets through late it still carries the
	// resourceVersion judged expired, and fails if the holder renewed.
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseDuration/2)
	defer cancel()
	sent, rec, err := m.lease.TakeOver(ctx, m.cfg.Instance, from, m.electedOn, rec)
	if err != nil {
		return fmt.Errorf("failover: take over the primary Lease from %s: %w", from, err)
	}
	m.lastRenew = sent
	m.failover = &rec
	m.counters.failedOver()
	m.log.Warn("failover: took over the primary Lease", "from", rec.From, "oldPrimaryLastLSN", rec.FromLSN,
		"receivedLSN", rec.ReceivedLSN, "reason", act.Reason)
	return nil
}

// finishFailover runs right after the promotion that a take-over led to:
// where recovery ended, what that leaves out of the old primary's last
// published position, on the Lease, in /status, the log and an Event on
// this instance's pod.
func (m *Manager) finishFailover(ctx context.Context) {
	rec := *m.failover
	m.failover = nil
	var promoted string
	var tli int32
	if err := m.db.queryRow(ctx, `SELECT pg_last_wal_replay_lsn()::text, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`, &promoted, &tli); err != nil {
		m.log.Warn("failover: read the promotion LSN", "error", err.Error())
	}
	rec.PromotedLSN, rec.Timeline = promoted, uint32(tli)
	rec.LostBytesAtLeast = lostAtLeast(rec.FromLSN, promoted)
	if err := m.lease.RecordFailover(ctx, m.cfg.Instance, rec); err != nil {
		m.log.Warn("failover: record it on the Lease", "error", err.Error())
	}
	m.status.update(func(s *Status) { s.LastFailover = &rec })
	note := "asynchronous replication: commits the old primary made after the promoted LSN are lost; the exact range is logged when it rejoins"
	if m.config.rep.Synchronous != nil {
		note = "synchronous replication: elected as the most advanced of a quorum of synchronous standbys, so no synchronously acknowledged commit is lost; " +
			"what the old primary wrote past the promoted LSN was never acknowledged (or only while it ran asynchronously), and is logged when it rejoins"
	}
	m.log.Warn("failover: promoted", "from", rec.From, "to", rec.To, "at", rec.At.Format(time.RFC3339Nano),
		"oldPrimaryLastLSN", rec.FromLSN, "promotedLSN", rec.PromotedLSN, "timeline", rec.Timeline,
		"lostBytesAtLeast", rec.LostBytesAtLeast, "note", note)
	m.event(corev1.EventTypeWarning, pc.EventFailoverPromoted, failoverMessage(rec))
}

// failoverMessage is the FailoverPromoted Event's text.
func failoverMessage(rec pc.Failover) string {
	lost := fmt.Sprintf("the old primary's last published position (%s) was received; what it wrote after that, if anything, is lost", rec.FromLSN)
	if rec.LostBytesAtLeast > 0 {
		lost = fmt.Sprintf("at least %d bytes of WAL the old primary wrote (it had published up to %s) were never received and are lost", rec.LostBytesAtLeast, rec.FromLSN)
	}
	return fmt.Sprintf("took the primary Lease over from %s and promoted at %s (timeline %d): %s; the exact commits are counted when it rejoins",
		rec.From, rec.PromotedLSN, rec.Timeline, lost)
}

// event records an Event on this instance's pod in the background: the
// manager's loop never waits on it, and a failure is only logged.
func (m *Manager) event(eventType, reason, message string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.lease.Event(ctx, m.cfg.Instance, eventType, reason, message); err != nil {
			m.log.Warn("record event", "reason", reason, "error", err.Error())
		}
	}()
}

// lostAtLeast is from − promoted in bytes when positive (0 when either is
// unknown).
func lostAtLeast(from, promoted string) int64 {
	f, err1 := role.ParseLSN(from)
	p, err2 := role.ParseLSN(promoted)
	if err1 != nil || err2 != nil || f <= p {
		return 0
	}
	return int64(f - p)
}

// Abdication: a holder whose postgres keeps failing to start (a crash
// loop, its manager alive and renewing) would keep the cluster without a
// writable primary for as long as it renews. After abdicateCrashes failed
// starts and a Lease duration without accepting connections, it stops
// postgres and gives the Lease up (lease.Abdicate, no final LSN); the
// standbys elect at once (failoverDelay still applies). A long crash
// recovery is not a crash loop: the postmaster keeps running, the crash
// count does not grow.
const abdicateCrashes = 3

// postgresGone is that rule.
func postgresGone(crashes int, down, leaseDuration time.Duration) bool {
	return crashes >= abdicateCrashes && down >= leaseDuration
}

func (m *Manager) abdicate(ctx context.Context, act role.Action) error {
	down := m.now().Sub(m.lastAccepting)
	failed := m.owner.State().Crashes - m.crashBase
	m.log.Warn("postgres keeps failing: stopping it and giving the primary Lease up", "down", down.Round(time.Millisecond).String(),
		"failedStarts", failed, "lastExit", m.owner.State().LastExit, "reason", act.Reason)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.owner.Stop(sctx, postmaster.Immediate); err != nil {
		return fmt.Errorf("abdicate: stop postgres: %w", err)
	}
	reason := fmt.Sprintf("postgres failed %d starts and accepted no connection for %s", failed, down.Round(time.Second))
	if err := m.lease.Abdicate(ctx, m.cfg.Instance, reason); err != nil {
		return fmt.Errorf("abdicate: %w", err)
	}
	m.routed, m.upstream = false, ""
	m.abdicatedUntil = m.now().Add(2 * m.cfg.LeaseDuration)
	m.status.update(func(s *Status) { s.LastError, s.LastErrorTime = "gave the primary Lease up: "+reason, m.now() })
	return nil
}
