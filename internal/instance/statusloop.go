package instance

import (
	"context"
	"errors"
	"time"
)

// refreshStatus keeps /status current; it has its own connection.
func (m *Manager) refreshStatus(ctx context.Context, db *localDB) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer db.close()
	for {
		st := m.owner.State()
		var fs fullStatus
		var err error
		if st.Running {
			fs, err = db.fullStatus(ctx)
		} else {
			db.close()
			err = errors.New("not running")
		}
		m.status.update(func(s *Status) {
			s.PostgresWanted, s.PostgresRunning, s.PostmasterPID = st.Wanted, st.Running, st.PID
			s.PostgresStarts, s.PostgresCrashes = st.Starts, st.Crashes
			s.Accepting = err == nil
			s.UpdatedAt = m.now()
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
			s.ServerVersion, s.PendingRestart = fs.ServerVersion, fs.PendingRestart
		})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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
