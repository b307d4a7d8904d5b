package instance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// refreshStatus keeps /status current; it has its own connection.
func (m *Manager) refreshStatus(ctx context.Context, db *localDB) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer db.close()
	for {
		st := m.owner.State()
		w := m.status.lastWrite()
		var fs fullStatus
		var err error
		if st.Running {
			fs, err = db.fullStatus(ctx)
		} else {
			db.close()
			err = errors.New("not running")
		}
		var loaded, was string
		var rejected, wasRejected []string
		m.status.updateWith(func(s *Status, now configWrite) {
			was, wasRejected = s.ConfigRevision, slices.Concat(s.RejectedParameters, s.RejectedHBA)
			defer func() { loaded, rejected = s.ConfigRevision, slices.Concat(s.RejectedParameters, s.RejectedHBA) }()
			s.PostgresWanted, s.PostgresRunning, s.PostmasterPID = st.Wanted, st.Running, st.PID
			s.PostgresStarts, s.PostgresCrashes = st.Starts, st.Crashes
			s.Accepting = err == nil
			s.UpdatedAt = m.now()
			switch {
			case now.gen != w.gen:
				// Rewritten during the query: judged at the next refresh.
			case err != nil:
				s.ConfigRevision, s.RejectedParameters, s.RejectedHBA = "", w.refused, nil
			default:
				s.ConfigRevision = loadedRevision(w, fs)
				s.RejectedParameters = union(w.refused, fs.Refused, fs.NotInEffect)
				s.RejectedHBA = rejectedHBA(w, fs)
			}
			if err != nil {
				s.Streaming = false
				switch {
				case s.Role == "bootstrapping":
				case s.Fenced:
					s.Role = "fenced"
				default:
					s.Role = "stopped"
				}
				return
			}
			s.Role = "primary"
			if fs.InRecovery {
				s.Role = "standby"
			}
			s.Timeline, s.CurrentLSN, s.ReceivedLSN, s.ReplayedLSN, s.FlushedLSN = fs.Timeline, fs.CurrentLSN, fs.ReceivedLSN, fs.ReplayedLSN, fs.FlushedLSN
			s.Streaming, s.ReplayLagSeconds, s.LagBytes = fs.Streaming, fs.ReplayLagSecs, fs.LagBytes
			if fs.Streaming {
				s.LastStreamingAt = s.UpdatedAt
			}
			s.ServerVersion, s.PendingRestart = fs.ServerVersion, fs.PendingRestart
		})
		if loaded != was && loaded != "" {
			m.log.Info("postgres loaded the configuration", "configRevision", loaded)
		}
		if len(rejected) > 0 && !slices.Equal(rejected, wasRejected) {
			m.log.Warn("configuration not in effect: postgres runs without these settings or pg_hba lines", "rejected", rejected)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// loadedRevision is the config revision postgres has loaded, given the
// last configuration write w and what postgres says now (fs): w's, once
// postgres has read the files of w's version (its load time is at or after
// the first write of that version; a start counts, since postgres reads
// them then) and applies every setting and pg_hba line of it. Otherwise
// "": postgres runs an older version, or only part of this one.
//
// The load time is the status session's own: each backend rereads the
// files when the postmaster passes the reload on, before its next query.
func loadedRevision(w configWrite, fs fullStatus) string {
	if w.revision == "" || fs.ConfLoadTime.Before(w.since.Truncate(time.Microsecond)) {
		return ""
	}
	if len(w.refused) > 0 || len(fs.NotInEffect) > 0 || len(fs.HBAErrorLines) > 0 {
		return ""
	}
	return w.revision
}

// rejectedHBA names the refused pg_hba.conf lines by their index in the
// Cluster's pg_hba list (or their line, for one of pgsync's own).
func rejectedHBA(w configWrite, fs fullStatus) []string {
	var out []string
	for i, line := range fs.HBAErrorLines {
		msg := ""
		if i < len(fs.HBAErrors) {
			msg = fs.HBAErrors[i]
		}
		if u := int(line) - w.hbaFirst; u >= 0 && u < len(w.hba) {
			out = append(out, fmt.Sprintf("pg_hba[%d]: %s", u, msg))
		} else {
			out = append(out, fmt.Sprintf("pg_hba.conf line %d: %s", line, msg))
		}
	}
	return out
}

// union returns the sorted, distinct strings of lists; nil when empty.
func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Ready implements httpapi.Snapshot: accepting connections, and a standby
// must also be streaming.
func (m *Manager) Ready() (bool, string) {
	s := m.status.Get()
	switch {
	case !s.Accepting:
		return false, "postgres is not accepting connections"
	case s.Role == "standby" && !s.Streaming:
		return false, "standby is not streaming"
	}
	return true, ""
}

// Status implements httpapi.Snapshot.
func (m *Manager) Status() any { return m.status.Get() }
