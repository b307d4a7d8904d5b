package instance

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// TLS (docs/security.md, "TLS"). The pod mounts the cluster's CA (the
// NAME-ca Secret, and its later generations: carotation.go) at
// Config.CADir; the manager issues from it its own
// server certificate — naming the Services, its pod's DNS names, its
// advertised address and pod IP — and the streaming_replica client
// certificate it replicates with, into RunDir/tls (0600, as postgres and
// libpq require of a key). It checks them every few seconds: a CA that
// changed (the Secret updated, which the kubelet brings into the volume),
// a leaf due for renewal (tlscert.NeedsRenewal) or a new address issues
// them again, and a running postgres reloads (ssl and its files are
// reloadable): no restart.

const (
	tlsCAFile     = "ca.crt"
	tlsServerCert = "server.crt"
	tlsServerKey  = "server.key"
	tlsClientCert = "replica.crt"
	tlsClientKey  = "replica.key"
)

// tlsState is what the loop knows of the TLS files (only the loop
// goroutine, and Run before it, touch it).
type tlsState struct {
	on     bool
	caRaw  []byte
	bundle []byte
	ca     *x509.Certificate
	server *x509.Certificate
	client *x509.Certificate
}

func (m *Manager) tlsDir() string { return filepath.Join(m.cfg.RunDir, "tls") }

func (m *Manager) tlsPath(name string) string { return filepath.Join(m.tlsDir(), name) }

// serverTLS is the server's ssl files, nil without TLS.
func (m *Manager) serverTLS() *conffile.ServerTLS {
	if !m.tls.on {
		return nil
	}
	return m.withUserServer(&conffile.ServerTLS{CertFile: m.tlsPath(tlsServerCert), KeyFile: m.tlsPath(tlsServerKey), CAFile: m.tlsPath(tlsCAFile)})
}

// clientTLS is how this manager's connections to another instance verify
// it (and, with cert, present the streaming_replica certificate); nil
// when this instance has no TLS.
func (m *Manager) clientTLS(cert bool) *conffile.ClientTLS {
	if !m.tls.on {
		return nil
	}
	t := &conffile.ClientTLS{RootCert: m.tlsPath(tlsCAFile)}
	if cert {
		t.CertFile, t.KeyFile = m.tlsPath(tlsClientCert), m.tlsPath(tlsClientKey)
	}
	m.withUserClient(t, cert)
	if m.libpqMajor >= 16 {
		// libpq 16+: accept no authentication request the method does
		// not call for (a fake server asking for a cleartext password
		// gets nothing).
		t.RequireAuth = "scram-sha-256"
		if cert {
			t.RequireAuth = "none"
		}
	}
	return t
}

// upstreamTLS: a connection to the primary at upstream uses TLS. An
// instance with TLS does, unless the Lease's holder runs a manager from
// before TLS and this instance has the replication password to follow it
// the old way (a cluster whose pods are not all re-created yet).
func (m *Manager) upstreamTLS() bool {
	if !m.tls.on {
		return false
	}
	l := m.lease.Current()
	return l.PrimaryTLS || m.cfg.Credentials.ReplicationPassword == ""
}

// serverRequest is what this instance's server certificate must name.
func (m *Manager) serverRequest() tlscert.Request {
	n := pc.Names{Cluster: m.cfg.Cluster}
	req := tlscert.Request{CommonName: m.cfg.Instance,
		DNSNames: append(n.ServerDNSNames(m.cfg.Instance, m.cfg.Namespace), m.cfg.ServerAltDNSNames...)}
	add := func(host string) {
		if host == "" {
			return
		}
		if ip := net.ParseIP(host); ip != nil {
			req.IPs = append(req.IPs, ip)
		} else {
			req.DNSNames = append(req.DNSNames, host)
		}
	}
	if h, _, err := net.SplitHostPort(m.cfg.AdvertiseAddress); err == nil {
		add(h)
	}
	add(m.cfg.PodIP)
	return req
}

var clientRequest = tlscert.Request{CommonName: pc.ReplicationUser, Client: true}

// refreshTLS reads the CA and issues this instance's certificates when
// they are missing, due or no longer what they must be. changed: files
// were rewritten (a running server must reload). Without a CA (none
// configured, or a pod created before pgsync's TLS) TLS stays off; a CA
// that disappears after TLS was on leaves the last files in force.
func (m *Manager) refreshTLS() (changed bool, err error) {
	if m.cfg.CADir == "" {
		return false, nil
	}
	cas, err := m.readCAs()
	if err != nil {
		return false, err
	}
	if len(cas.gens) == 0 {
		if m.tls.on {
			return false, errors.New("the CA files are gone from " + m.cfg.CADir + "; keeping the certificates in force")
		}
		return false, nil
	}
	raw := cas.raw
	newCA := !bytes.Equal(raw, m.tls.caRaw)
	now := m.now()
	at, err := cas.issuer(now)
	if err != nil {
		return false, err
	}
	ca, caCert := cas.pairs[at], cas.certs[at]
	bundle := tlscert.Bundle(cas.certs, now)
	m.status.update(func(s *Status) { s.CA = cas.status(m.cfg.CAGenerations, at, now) })
	req := m.serverRequest()
	// NeedsRenewal also reissues when the generation to issue from
	// changed: a new CA's NotBefore passed.
	due := func(leaf *x509.Certificate, r tlscert.Request) bool {
		return leaf == nil || newCA || tlscert.NeedsRenewal(leaf, caCert, now) || !tlscert.Covers(leaf, r)
	}
	if err := os.MkdirAll(m.tlsDir(), 0o700); err != nil {
		return false, fmt.Errorf("TLS directory: %w", err)
	}
	if newCA || !bytes.Equal(bundle, m.tls.bundle) {
		// Every unexpired generation: the server verifies client
		// certificates, and this instance its peers, against them all.
		if err := writeFileAtomic(m.tlsPath(tlsCAFile), bundle); err != nil {
			return false, err
		}
		changed = true
	}
	issue := func(r tlscert.Request, certFile, keyFile string) (*x509.Certificate, error) {
		p, err := tlscert.Issue(ca, r, now, m.random)
		if err != nil {
			return nil, err
		}
		// The key first: a reader that sees the new certificate finds
		// its key.
		if err := writeFileAtomic(m.tlsPath(keyFile), p.KeyPEM); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(m.tlsPath(certFile), p.CertPEM); err != nil {
			return nil, err
		}
		c, _, err := tlscert.Parse(p)
		return c, err
	}
	server, client := m.tls.server, m.tls.client
	if due(server, req) {
		if server, err = issue(req, tlsServerCert, tlsServerKey); err != nil {
			return changed, fmt.Errorf("server certificate: %w", err)
		}
		m.log.Info("TLS: server certificate issued", "notAfter", server.NotAfter.UTC().Format("2006-01-02T15:04:05Z"),
			"dnsNames", server.DNSNames, "ips", fmt.Sprint(server.IPAddresses))
		changed = true
	}
	if due(client, clientRequest) {
		if client, err = issue(clientRequest, tlsClientCert, tlsClientKey); err != nil {
			return changed, fmt.Errorf("client certificate: %w", err)
		}
		m.log.Info("TLS: " + pc.ReplicationUser + " client certificate issued")
		changed = true
	}
	m.tls = tlsState{on: true, caRaw: raw, bundle: bundle, ca: caCert, server: server, client: client}
	return changed, nil
}

// reloadTLS is refreshTLS in the loop: at most every tlsCheckEvery; when
// files changed, a running postgres reloads them.
func (m *Manager) reloadTLS(ctx context.Context) {
	if m.cfg.CADir == "" || m.now().Before(m.nextTLSCheck) {
		return
	}
	m.nextTLSCheck = m.now().Add(tlsCheckEvery)
	wasOn := m.tls.on
	changed, err := m.refreshTLS()
	if m.refreshUserTLS() {
		changed = true
	}
	if err != nil {
		m.log.Error("TLS", "error", err.Error())
		m.status.update(func(s *Status) { s.LastError, s.LastErrorTime = err.Error(), m.now() })
	}
	if m.upstream != "" && m.upstreamTLS() != m.upstreamTLSUsed && m.owner.State().Running {
		// The primary followed turned TLS on (or off) at the same
		// address: primary_conninfo changes.
		changed, wasOn = true, false
	}
	if !changed || !m.owner.State().Running {
		return
	}
	if !wasOn && m.status.lastWrite().gen != 0 {
		// The CA came after the start (ssl on, hostssl rules), or the
		// upstream's TLS changed.
		if err := m.writeConfig(m.upstream != "" || m.isStandbyConfigured(), m.upstream); err != nil {
			m.log.Error("write configuration", "error", err.Error())
			return
		}
	}
	if err := m.owner.Signal(ctx, syscall.SIGHUP); err != nil {
		m.log.Warn("reload after a certificate change", "error", err.Error())
		return
	}
	m.log.Info("TLS: certificates changed: reloaded")
}

// tlsCheckEvery: how often the loop looks at the CA files and the
// certificates' dates (a renewal is due weeks ahead; a replaced CA is
// picked up within this long of reaching the volume).
const tlsCheckEvery = 2 * time.Second

var toolVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// libpqMajor is the major version of the PostgreSQL tools (and so of the
// libpq that pg_basebackup, pg_rewind and the WAL receiver use), 0 when
// it cannot be told.
func libpqMajor(versionOutput string) int {
	mm := toolVersion.FindStringSubmatch(versionOutput)
	if mm == nil {
		return 0
	}
	n, _ := strconv.Atoi(mm[1])
	return n
}
