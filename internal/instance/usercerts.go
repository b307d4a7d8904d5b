package instance

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgsync/pgsync/internal/instance/conffile"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// Certificates of the user's own (spec.certificates, docs/security.md,
// "Certificates of your own"). The pod projects the user's Secrets into
// the directories Config.ServerCADir, ServerTLSDir, ClientCADir and
// ReplicationTLSDir (each "" when not given). The manager copies what they
// hold into its run directory (keys 0600, as postgres and libpq require)
// and issues, from a CA of the user's whose key is given, what the user
// did not provide; the files pgsync's own CA gives (tls.go) stay in force
// for the rest. Checked with pgsync's own every tlsCheckEvery: a Secret the
// kubelet updated (a renewed certificate) is taken by reload.
//
// Trust during a change: sslrootcert (verifying the other instances) and
// ssl_ca_file (verifying client certificates) hold the user's CA and
// pgsync's, so that while a rolling restart brings the user's Secrets in
// one instance at a time, an instance already on them and one not yet
// still verify each other (pgsync's CA key is in the cluster's pods only,
// so this trusts nothing the cluster did not already trust).

const (
	userServerCAFile   = "user-server-ca.crt"
	userClientCAFile   = "user-client-ca.crt"
	userServerCertFile = "user-server.crt"
	userServerKeyFile  = "user-server.key"
	userClientCertFile = "user-replica.crt"
	userClientKeyFile  = "user-replica.key"
)

// userTLSState is what the loop installed of the user's certificates.
// A file set is used once it was installed (a later bad version leaves
// the last good one in force).
type userTLSState struct {
	serverCA, clientCA bool
	server, client     bool
	// The leaves issued from a CA of the user's (nil when the user gave
	// the certificate), for renewal.
	issuedServer, issuedClient *x509.Certificate
	// caRaw: the CA files (certificate and key) last issued from.
	serverCARaw, clientCARaw []byte
	// problem is the last check's findings ("" when none); evented the
	// one last recorded as an Event (recorded once per distinct problem).
	problem, evented string
}

// userCertsConfigured: any of the four directories is given.
func (c Config) userCertsConfigured() bool {
	return c.ServerCADir != "" || c.ServerTLSDir != "" || c.ClientCADir != "" || c.ReplicationTLSDir != ""
}

// withUserServer points the server's ssl files at the user's where they
// are installed.
func (m *Manager) withUserServer(t *conffile.ServerTLS) *conffile.ServerTLS {
	u := &m.userTLS
	if u.server {
		t.CertFile, t.KeyFile = m.tlsPath(userServerCertFile), m.tlsPath(userServerKeyFile)
	}
	if u.clientCA {
		t.CAFile = m.tlsPath(userClientCAFile)
	}
	return t
}

// withUserClient points a connection to another instance at the user's
// server CA and streaming_replica certificate where they are installed.
func (m *Manager) withUserClient(t *conffile.ClientTLS, cert bool) {
	u := &m.userTLS
	if u.serverCA {
		t.RootCert = m.tlsPath(userServerCAFile)
	}
	if cert && u.client {
		t.CertFile, t.KeyFile = m.tlsPath(userClientCertFile), m.tlsPath(userClientKeyFile)
	}
}

// refreshUserTLS installs the user's certificates (and issues from the
// user's CAs) when they are missing, changed or due; changed: files in
// force were rewritten (a running server must reload). It runs after
// refreshTLS and only with TLS on. Problems — a file that does not parse,
// a certificate not signed by the CA that must verify it, not covering
// the names the instances connect to each other with (verify-full would
// fail), expired or expiring — are logged, put in /status tlsProblem and
// recorded as an Event on the pod.
func (m *Manager) refreshUserTLS() (changed bool) {
	if !m.tls.on || !m.cfg.userCertsConfigured() {
		return false
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	now := m.now()
	own, err := os.ReadFile(m.tlsPath(tlsCAFile))
	if err != nil {
		bad("pgsync's CA bundle: %v", err)
		m.reportUserTLS(problems)
		return false
	}
	u := &m.userTLS

	// The server side.
	var serverRoots *x509.CertPool
	if dir := m.cfg.ServerCADir; dir != "" {
		caPEM, keyPEM, err := readCA(dir, m.cfg.ServerTLSDir == "")
		switch {
		case err != nil:
			bad("serverCASecret: %v", err)
		default:
			serverRoots = x509.NewCertPool()
			if !serverRoots.AppendCertsFromPEM(caPEM) {
				bad("serverCASecret: %s holds no PEM certificate", pc.CACertKey)
				serverRoots = nil
				break
			}
			c, err := m.installFile(userServerCAFile, joinPEM(caPEM, own))
			if err != nil {
				bad("serverCASecret: %v", err)
				break
			}
			u.serverCA, changed = true, changed || c
			if keyPEM != nil {
				c, err := m.issueFromUserCA(caPEM, keyPEM, &u.serverCARaw, &u.issuedServer, m.serverRequest(), userServerCertFile, userServerKeyFile, now)
				if err != nil {
					bad("serverCASecret: issue the server certificate: %v", err)
				} else {
					u.server, changed = true, changed || c
				}
			}
		}
	}
	if dir := m.cfg.ServerTLSDir; dir != "" {
		leaf, c, err := m.installPair(dir, userServerCertFile, userServerKeyFile)
		switch {
		case err != nil:
			bad("serverTLSSecret: %v", err)
		default:
			u.server, changed = true, changed || c
			if serverRoots != nil {
				problems = append(problems, m.checkServerLeaf(leaf, serverRoots, now)...)
			}
		}
	}

	// The client side.
	var clientRoots *x509.CertPool
	if dir := m.cfg.ClientCADir; dir != "" {
		caPEM, keyPEM, err := readCA(dir, m.cfg.ReplicationTLSDir == "")
		switch {
		case err != nil:
			bad("clientCASecret: %v", err)
		default:
			clientRoots = x509.NewCertPool()
			if !clientRoots.AppendCertsFromPEM(caPEM) {
				bad("clientCASecret: %s holds no PEM certificate", pc.CACertKey)
				clientRoots = nil
				break
			}
			c, err := m.installFile(userClientCAFile, joinPEM(caPEM, own))
			if err != nil {
				bad("clientCASecret: %v", err)
				break
			}
			u.clientCA, changed = true, changed || c
			if keyPEM != nil {
				c, err := m.issueFromUserCA(caPEM, keyPEM, &u.clientCARaw, &u.issuedClient, clientRequest, userClientCertFile, userClientKeyFile, now)
				if err != nil {
					bad("clientCASecret: issue the %s certificate: %v", pc.ReplicationUser, err)
				} else {
					u.client, changed = true, changed || c
				}
			}
		}
	}
	if dir := m.cfg.ReplicationTLSDir; dir != "" {
		leaf, c, err := m.installPair(dir, userClientCertFile, userClientKeyFile)
		switch {
		case err != nil:
			bad("replicationTLSSecret: %v", err)
		default:
			u.client, changed = true, changed || c
			if leaf.Subject.CommonName != pc.ReplicationUser {
				bad("replicationTLSSecret: the certificate's common name is %q, not %q: the servers' cert authentication refuses it", leaf.Subject.CommonName, pc.ReplicationUser)
			}
			if clientRoots != nil {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: clientRoots, CurrentTime: now,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					bad("replicationTLSSecret: not verified by clientCASecret's %s: %v", pc.CACertKey, err)
				}
			}
			if left := leaf.NotAfter.Sub(now); left < tlscert.RenewBefore {
				bad("replicationTLSSecret: the certificate expires at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
	if changed {
		m.log.Info("TLS: certificates of spec.certificates installed")
	}
	m.reportUserTLS(problems)
	return changed
}

// checkServerLeaf: the user's server certificate must verify against the
// server CA at every name the instances reach this one by (verify-full:
// its advertised address, which the standbys, pg_basebackup and pg_rewind
// connect to) and at the -rw Service's namespaced name (what clients use),
// and not be due to expire.
func (m *Manager) checkServerLeaf(leaf *x509.Certificate, roots *x509.CertPool, now time.Time) []string {
	var out []string
	hosts := []string{}
	if h, _, err := net.SplitHostPort(m.cfg.AdvertiseAddress); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if m.cfg.Cluster != "" && m.cfg.Namespace != "" {
		hosts = append(hosts, pc.Names{Cluster: m.cfg.Cluster}.RW()+"."+m.cfg.Namespace+".svc")
	}
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return append(out, fmt.Sprintf("serverTLSSecret: not verified by serverCASecret's %s: %v", pc.CACertKey, err))
	}
	var missing []string
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		out = append(out, fmt.Sprintf("serverTLSSecret: the certificate does not name %s, which the instances (sslmode=verify-full) or clients connect to; its names: %s",
			strings.Join(missing, ", "), strings.Join(leaf.DNSNames, ", ")))
	}
	if left := leaf.NotAfter.Sub(now); left < tlscert.RenewBefore {
		out = append(out, "serverTLSSecret: the certificate expires at "+leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return out
}

// reportUserTLS puts the problems in /status, and logs and records a new
// set of them as a Warning Event on the pod; their end is logged.
func (m *Manager) reportUserTLS(problems []string) {
	u := &m.userTLS
	p := strings.Join(problems, "; ")
	m.status.update(func(s *Status) { s.TLSProblem = p })
	if p == u.problem {
		return
	}
	u.problem = p
	if p == "" {
		m.log.Info("TLS: the certificates of spec.certificates are in order")
		return
	}
	m.log.Error("TLS: spec.certificates", "problem", p)
	if p != u.evented {
		u.evented = p
		m.event("Warning", "CertificateProblem", p)
	}
}

// readCA reads a CA directory's certificate, and its key when withKey.
func readCA(dir string, withKey bool) (caPEM, keyPEM []byte, err error) {
	paths := []string{filepath.Join(dir, pc.CACertKey), ""}
	if withKey {
		paths[1] = filepath.Join(dir, pc.CAKeyKey)
	}
	data, err := readTogether(paths...)
	if err != nil {
		return nil, nil, err
	}
	if !data[0].ok {
		return nil, nil, fmt.Errorf("no %s in %s", pc.CACertKey, dir)
	}
	if withKey && !data[1].ok {
		return nil, nil, fmt.Errorf("no %s in %s: the CA must sign certificates, as the Secret gives none", pc.CAKeyKey, dir)
	}
	if withKey {
		keyPEM = data[1].b
	}
	return data[0].b, keyPEM, nil
}

// installPair copies a kubernetes.io/tls directory's certificate and key
// into the run directory (the key first) when they changed, after
// checking they belong together.
func (m *Manager) installPair(dir, certFile, keyFile string) (*x509.Certificate, bool, error) {
	data, err := readTogether(filepath.Join(dir, pc.TLSCertKey), filepath.Join(dir, pc.TLSKeyKey))
	if err != nil {
		return nil, false, err
	}
	if !data[0].ok || !data[1].ok {
		return nil, false, fmt.Errorf("%s or %s missing in %s", pc.TLSCertKey, pc.TLSKeyKey, dir)
	}
	pair, err := tls.X509KeyPair(data[0].b, data[1].b)
	if err != nil {
		return nil, false, fmt.Errorf("%s and %s: %w", pc.TLSCertKey, pc.TLSKeyKey, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, false, err
		}
	}
	c1, err := m.installFile(keyFile, data[1].b)
	if err != nil {
		return nil, false, err
	}
	c2, err := m.installFile(certFile, data[0].b)
	if err != nil {
		return nil, false, err
	}
	return leaf, c1 || c2, nil
}

// issueFromUserCA issues req from a CA of the user's into certFile and
// keyFile when none was issued, the CA changed, the leaf is due or no
// longer names what it must.
func (m *Manager) issueFromUserCA(caPEM, keyPEM []byte, lastRaw *[]byte, leaf **x509.Certificate, req tlscert.Request, certFile, keyFile string, now time.Time) (bool, error) {
	raw := append(append(bytes.Clone(caPEM), 0), keyPEM...)
	caCert, caKey, err := tlscert.ParseCA(caPEM, keyPEM)
	if err != nil {
		return false, err
	}
	if *leaf != nil && bytes.Equal(raw, *lastRaw) && !tlscert.NeedsRenewal(*leaf, caCert, now) && tlscert.Covers(*leaf, req) {
		return false, nil
	}
	p, err := tlscert.IssueFrom(caCert, caKey, req, now, m.random)
	if err != nil {
		return false, err
	}
	if err := writeFileAtomic(m.tlsPath(keyFile), p.KeyPEM); err != nil {
		return false, err
	}
	if err := writeFileAtomic(m.tlsPath(certFile), p.CertPEM); err != nil {
		return false, err
	}
	c, err := tlscert.ParseCert(p.CertPEM)
	if err != nil {
		return false, err
	}
	*leaf, *lastRaw = c, raw
	m.log.Info("TLS: certificate issued from a CA of spec.certificates", "commonName", req.CommonName,
		"notAfter", c.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// installFile writes data to the run directory's name unless it holds it
// already; changed: it did not.
func (m *Manager) installFile(name string, data []byte) (bool, error) {
	old, err := os.ReadFile(m.tlsPath(name))
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, writeFileAtomic(m.tlsPath(name), data)
}

// joinPEM concatenates PEM files, each ending in a newline.
func joinPEM(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.Write(p)
		if len(p) > 0 && p[len(p)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
