package instance

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/instance/pgbin"
	"github.com/pgsync/pgsync/internal/instance/role"
)

// writeFileAtomic replaces path with data (mode 0600) by rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// passFile is the libpq password file the manager writes into the run
// directory for primary_conninfo, pg_basebackup and pg_rewind.
func (m *Manager) passFile() string { return filepath.Join(m.cfg.RunDir, "pgpass") }

// writePassFile names the one server the manager connects to, the
// primary at host:port (none: host ""), never any host: the superuser's
// password while it has access (pg_rewind against a primary whose manager
// predates the rejoin grants), and the replication password only where it
// is still how this standby logs in (a primary from before TLS; with TLS
// streaming_replica presents its certificate).
func (m *Manager) writePassFile(host string, port int) error {
	var entries []conffile.PassEntry
	if host != "" {
		p := strconv.Itoa(port)
		if pw := m.cfg.Credentials.ReplicationPassword; pw != "" && !m.upstreamTLS() {
			entries = append(entries, conffile.PassEntry{Host: host, Port: p, User: conffile.ReplicationUser, Password: pw})
		}
		pw, err := m.superuserPassword()
		if err != nil {
			return err
		}
		if pw != "" {
			entries = append(entries, conffile.PassEntry{Host: host, Port: p, User: "postgres", Password: pw})
		}
	}
	return writeFileAtomic(m.passFile(), []byte(conffile.PassFile(entries...)))
}

// upstreamClientTLS is the TLS of a connection to the primary (nil: the
// old way, libpq's default sslmode), with the streaming_replica
// certificate when cert.
func (m *Manager) upstreamClientTLS(cert bool) *conffile.ClientTLS {
	if !m.upstreamTLS() {
		return nil
	}
	return m.clientTLS(cert)
}

// splitAddress parses host:port.
func splitAddress(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	return h, port, nil
}

// writeConfig renders pgsync.conf and pg_hba.conf, makes postgresql.conf
// include pgsync.conf, and creates or removes standby.signal. upstream ""
// on a standby means "no primary to follow yet".
func (m *Manager) writeConfig(standby bool, upstream string) error {
	s := conffile.Settings{
		Port: m.cfg.Port, ListenAddresses: m.cfg.ListenAddresses, SocketDir: m.cfg.RunDir,
		Parameters: m.config.params,
		// Only a standby that is about to take over needs it; any other
		// configuration written drops it.
		TakeoverRetry: standby && m.takeover,
	}
	if !standby {
		m.takeover = false
	} else {
		m.sync.streaming = nil // nothing streams from a standby
	}
	// A standby ignores it but renders its own too: promoted, it has
	// the list from its first write (the loop refines it from
	// pg_stat_replication within a second; sync.go).
	// A primary whose names are on the Lease keeps them: only alignSync
	// changes them, publishing first (sync.go).
	if standby || !m.sync.published {
		m.sync.names = syncStandbyNames(m.config.rep, m.cfg.Instance, m.sync.streaming)
	}
	if standby {
		m.sync.published = false
	}
	s.SynchronousStandbyNames = m.sync.names
	if standby {
		s.PrimarySlotName = m.primarySlotName(upstream)
	}
	if standby && upstream != "" {
		h, p, err := splitAddress(upstream)
		if err != nil {
			return err
		}
		if err := m.writePassFile(h, p); err != nil {
			return err
		}
		tls := m.upstreamClientTLS(true)
		s.PrimaryConnInfo = conffile.ConnInfoTLS(h, p, conffile.ReplicationUser, m.cfg.Instance, m.passFile(), tls)
		m.upstreamTLSUsed = tls != nil
	}
	s.TLS = m.serverTLS()
	conf, rejected := conffile.Render(s)
	if len(rejected) > 0 {
		m.log.Warn("ignoring parameters that pgsync manages", "parameters", rejected)
	}
	if err := writeFileAtomic(filepath.Join(m.cfg.PGData, conffile.FileName), []byte(conf)); err != nil {
		return err
	}
	hba, hbaFirst := conffile.HBAFor(m.config.hba, conffile.HBAOptions{TLS: m.tls.on, SuperuserAccess: m.superuserAccess()})
	if err := writeFileAtomic(filepath.Join(m.cfg.PGData, "pg_hba.conf"), []byte(hba)); err != nil {
		return err
	}
	// The manager's own sessions: peer authentication, mapped here.
	if err := writeFileAtomic(filepath.Join(m.cfg.PGData, "pg_ident.conf"), []byte(conffile.Ident(osUserName()))); err != nil {
		return err
	}
	// Taken after both renames: a reload that starts later reads these
	// files (see loadedRevision).
	m.status.wrote(configWrite{revision: m.config.revision, at: m.now(), content: m.config.raw,
		refused: rejected, hbaFirst: hbaFirst, hba: m.config.hba})
	if err := ensureInclude(filepath.Join(m.cfg.PGData, "postgresql.conf")); err != nil {
		return err
	}
	sig := filepath.Join(m.cfg.PGData, "standby.signal")
	if standby {
		if err := os.WriteFile(sig, nil, 0o600); err != nil {
			return fmt.Errorf("write standby.signal: %w", err)
		}
	} else if err := os.Remove(sig); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove standby.signal: %w", err)
	}
	m.upstream = ""
	if standby {
		m.upstream = upstream
	}
	return nil
}

func ensureInclude(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	if strings.Contains(string(b), conffile.IncludeLine) {
		return nil
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	b = append(b, []byte(conffile.IncludeLine+"\n")...)
	return writeFileAtomic(path, b)
}

// hasData reports whether PGDATA holds a database cluster.
func (m *Manager) hasData() (bool, error) {
	_, err := pgbin.ReadVersion(m.cfg.PGData)
	if errors.Is(err, pgbin.ErrNoData) {
		return false, nil
	}
	return err == nil, err
}

// controlData is the part of pg_controldata's output the manager uses.
type controlData struct {
	State      string
	Checkpoint role.LSN
	TimeLineID uint32
	SystemID   string
}

// controlData reads global/pg_control directly when its layout is one this
// code knows (no fork/exec on the switchover's critical path), else asks
// pg_controldata.
func (m *Manager) controlData() (controlData, error) {
	if b, err := os.ReadFile(filepath.Join(m.cfg.PGData, "global", "pg_control")); err == nil {
		if cd, ok := parseControlFile(b); ok {
			return cd, nil
		}
	}
	out, err := m.output(m.bin.Path("pg_controldata"), "-D", m.cfg.PGData)
	if err != nil {
		return controlData{}, fmt.Errorf("pg_controldata: %w", err)
	}
	return parseControlData(out)
}

func parseControlData(out string) (controlData, error) {
	var cd controlData
	var haveCkpt bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Database cluster state":
			cd.State = v
		case "Latest checkpoint location":
			l, err := role.ParseLSN(v)
			if err != nil {
				return cd, err
			}
			cd.Checkpoint, haveCkpt = l, true
		case "Latest checkpoint's TimeLineID":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return cd, fmt.Errorf("pg_controldata TimeLineID %q: %w", v, err)
			}
			cd.TimeLineID = uint32(n)
		case "Database system identifier":
			cd.SystemID = v
		}
	}
	if !haveCkpt || cd.State == "" {
		return cd, fmt.Errorf("pg_controldata: unexpected output %q", out)
	}
	return cd, nil
}

// dbStates are PostgreSQL's DBState names as pg_controldata prints them.
var dbStates = []string{"starting up", "shut down", "shut down in recovery", "shutting down",
	"in crash recovery", "in archive recovery", "in production"}

// parseControlFile decodes the head of ControlFileData, whose layout has
// been the same from PostgreSQL 13 (pg_control_version 1300) to 19 (1905,
// checked against a 19rc1 data directory and its pg_controldata):
// system_identifier u64 @0, pg_control_version u32 @8, state i32 @16,
// checkPoint u64 @32, checkPointCopy.ThisTimeLineID u32 @48. ok is false
// for any other version, which then goes through pg_controldata.
func parseControlFile(b []byte) (controlData, bool) {
	if len(b) < 56 {
		return controlData{}, false
	}
	le := binary.NativeEndian
	switch le.Uint32(b[8:]) {
	case 1300, 1700, 1800, 1905:
	default:
		return controlData{}, false
	}
	state := le.Uint32(b[16:])
	if int(state) >= len(dbStates) {
		return controlData{}, false
	}
	return controlData{
		SystemID:   strconv.FormatUint(le.Uint64(b[0:]), 10),
		State:      dbStates[state],
		Checkpoint: role.LSN(le.Uint64(b[32:])),
		TimeLineID: le.Uint32(b[48:]),
	}, true
}

// isStandbyConfigured: PGDATA holds standby.signal.
func (m *Manager) isStandbyConfigured() bool {
	_, err := os.Stat(filepath.Join(m.cfg.PGData, "standby.signal"))
	return err == nil
}
