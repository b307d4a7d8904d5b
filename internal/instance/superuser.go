package instance

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/pgsync/pgsync/internal/instance/role"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// The superuser (spec.enableSuperuserAccess, podcontract/superuser.go).
// The manager never needs its password: its own sessions come over the
// local socket by peer authentication (pg_ident map conffile.IdentMap).
// On, the primary's manager keeps the role's password equal to the
// projected Secret file, re-read every second, so a changed Secret is in
// force within about a minute (the kubelet's sync) without a restart; off,
// it sets the password NULL and pg_hba rejects remote superuser logins.

// superuserState is what the primary last applied to the role.
type superuserState struct {
	applied  [32]byte // sha256 of the wanted state last applied
	ok       bool
	nextRead time.Time
	missing  bool // access on and no password: said once
}

// superuserAccess is the cluster's setting as last read.
func (m *Manager) superuserAccess() bool { return !m.config.superuserOff }

// superuserPassword is the superuser's current password: the fixed one
// (PGSYNC_SUPERUSER_PASSWORD), else the projected file's; "" when neither
// exists (access off: no Secret). Only while access is on.
func (m *Manager) superuserPassword() (string, error) {
	if !m.superuserAccess() {
		return "", nil
	}
	if pw := m.cfg.Credentials.SuperuserPassword; pw != "" {
		return pw, nil
	}
	p := m.cfg.Credentials.SuperuserPasswordFile
	if p == "" {
		return "", nil
	}
	data, err := readTogether(p)
	if err != nil {
		return "", err
	}
	if !data[0].ok {
		return "", nil
	}
	return strings.TrimRight(string(data[0].b), "\r\n"), nil
}

// alignSuperuser keeps the superuser's password what the cluster says, on
// the primary (the role replicates): NULL with access off, the Secret's
// with access on. Applied once per change of what is wanted, and after
// every promotion (the state is reset when this instance is not primary).
func (m *Manager) alignSuperuser(ctx context.Context, in role.Input) {
	if in.Lease.Holder != m.cfg.Instance || !in.Local.Accepting || in.Local.InRecovery {
		m.su.ok = false
		return
	}
	if m.now().Before(m.su.nextRead) {
		return
	}
	m.su.nextRead = m.now().Add(time.Second)
	access := m.superuserAccess()
	pw, err := m.superuserPassword()
	if err != nil {
		m.log.Warn("read the superuser's password", "error", err.Error())
		return
	}
	if access && pw == "" {
		// Its Secret is not there (yet): leave the role as it is.
		if !m.su.missing {
			m.log.Warn("superuser access is on, but its password file is missing or empty: its password is left as it is",
				"file", m.cfg.Credentials.SuperuserPasswordFile)
			m.su.missing = true
		}
		return
	}
	m.su.missing = false
	want := sha256.Sum256([]byte(fmt.Sprintf("%v\x00%s", access, pw)))
	if m.su.ok && want == m.su.applied {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseDuration/4)
	defer cancel()
	if err := m.db.setSuperuserPassword(rctx, pw); err != nil {
		m.log.Error("superuser password not applied", "error", err.Error())
		return
	}
	m.su.applied, m.su.ok = want, true
	if access {
		m.log.Info("superuser password applied (enableSuperuserAccess: true)")
	} else {
		m.log.Info("superuser password removed (NULL): enableSuperuserAccess is off")
	}
}

// setSuperuserPassword sets the superuser's password (as a SCRAM verifier:
// no log shows it), or NULL for "".
func (d *localDB) setSuperuserPassword(ctx context.Context, password string) error {
	pw := "NULL"
	if password != "" {
		v, err := scramVerifier(password)
		if err != nil {
			return err
		}
		pw = quoteLiteral(v)
	}
	if err := d.exec(ctx, `ALTER ROLE `+quoteIdent(pc.SuperUser)+` PASSWORD `+pw); err != nil {
		return fmt.Errorf("alter role %s: %w", pc.SuperUser, err)
	}
	return nil
}

// osUserName is the OS user the manager (and so postgres) runs as, whose
// local sessions pg_ident maps to the superuser. Peer authentication
// needs the server to find the same name for the uid (in a pod, the
// image's /etc/passwd: the postgres user, uid 26).
func osUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return pc.SuperUser
}

// superuserStatus is what /status says of the superuser's access.
func (m *Manager) superuserStatus() string {
	if m.superuserAccess() {
		return pc.SuperuserAccessOn
	}
	return pc.SuperuserAccessOff
}
