package cluster

import (
	"fmt"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// CertificatesConfiguration is CloudNativePG's spec.certificates. Without
// it pgsync generates each cluster's CA (NAME-ca) and every instance
// issues its own certificates from it (docs/security.md, "TLS");
// serverAltDNSNames adds names to the server certificates. The four
// Secrets are the user's own, in CloudNativePG's shape: pgsync never reads
// them, the pods project them (docs/security.md, "Certificates of your
// own"), and each instance manager uses what they hold and issues what
// they do not.
type CertificatesConfiguration struct {
	// ServerCASecret holds ca.crt, the CA the servers' certificate is
	// verified with, and ca.key when ServerTLSSecret is not given (the
	// managers then issue their server certificates from it).
	ServerCASecret string `json:"serverCASecret"`
	// ServerTLSSecret is a kubernetes.io/tls Secret (tls.crt, tls.key):
	// the server certificate every instance serves.
	ServerTLSSecret string `json:"serverTLSSecret"`
	// ReplicationTLSSecret is a kubernetes.io/tls Secret: the
	// streaming_replica client certificate the standbys log in with.
	ReplicationTLSSecret string `json:"replicationTLSSecret"`
	// ClientCASecret holds ca.crt, the CA client certificates are
	// verified with (ssl_ca_file), and ca.key when ReplicationTLSSecret
	// is not given (the managers then issue streaming_replica's from it).
	ClientCASecret string `json:"clientCASecret"`
	// ServerAltDNSNames are more DNS names each instance's server
	// certificate carries (a name of the user's own for NAME-rw, say).
	ServerAltDNSNames []string `json:"serverAltDNSNames"`
}

// ServerAltDNSNames is spec.certificates.serverAltDNSNames (nil when
// unset).
func (c *Cluster) ServerAltDNSNames() []string {
	if c.Spec.Certificates == nil {
		return nil
	}
	return c.Spec.Certificates.ServerAltDNSNames
}

// CertificateSecrets are spec.certificates' four Secret names ("" for
// each not given).
type CertificateSecrets struct {
	ServerCASecret, ServerTLSSecret, ReplicationTLSSecret, ClientCASecret string
}

// UserCertificates is spec.certificates' four Secret names (all "" without
// spec.certificates).
func (c *Cluster) UserCertificates() CertificateSecrets {
	k := c.Spec.Certificates
	if k == nil {
		return CertificateSecrets{}
	}
	return CertificateSecrets{ServerCASecret: k.ServerCASecret, ServerTLSSecret: k.ServerTLSSecret,
		ReplicationTLSSecret: k.ReplicationTLSSecret, ClientCASecret: k.ClientCASecret}
}

// Any reports whether any of the four Secrets is given.
func (k CertificateSecrets) Any() bool {
	return k.ServerCASecret != "" || k.ServerTLSSecret != "" || k.ReplicationTLSSecret != "" || k.ClientCASecret != ""
}

func validateCertificates(c *Cluster, bad func(field, format string, args ...any)) {
	for i, n := range c.ServerAltDNSNames() {
		// A wildcard as the whole first label is what x509 allows.
		name := n
		if len(n) > 2 && n[:2] == "*." {
			name = n[2:]
		}
		if !dns1123Subdomain(name) {
			bad(fmt.Sprintf("spec.certificates.serverAltDNSNames[%d]", i),
				"%q is not a DNS name: lower-case labels of letters, digits and '-' separated by dots (a wildcard only as \"*.\" at the start)", n)
		}
	}
	k := c.UserCertificates()
	if !k.Any() {
		return
	}
	n := pc.Names{Cluster: c.Metadata.Name}
	own := map[string]bool{n.CASecret(): true, n.SuperuserSecret(): true, n.AppSecret(): true,
		n.ReplicationSecret(): true, c.AppSecretName(): true}
	for _, f := range []struct{ field, name string }{
		{"serverCASecret", k.ServerCASecret}, {"serverTLSSecret", k.ServerTLSSecret},
		{"replicationTLSSecret", k.ReplicationTLSSecret}, {"clientCASecret", k.ClientCASecret},
	} {
		field := "spec.certificates." + f.field
		switch {
		case f.name == "":
		case !dns1123Subdomain(f.name):
			bad(field, "%q is not a valid Secret name", f.name)
		case own[f.name]:
			bad(field, "%q is a Secret pgsync generates for the cluster (its own CA or a credential); name a Secret of your own, or leave %s out to have pgsync's CA used", f.name, f.field)
		}
	}
	// CloudNativePG's rules (its webhook's validateCerts): a certificate
	// of the user's comes with the CA that verifies it, and the names of
	// a server certificate are the user's to choose.
	if k.ServerTLSSecret != "" {
		if k.ServerCASecret == "" {
			bad("spec.certificates.serverTLSSecret", "needs spec.certificates.serverCASecret: the Secret whose ca.crt is the CA that signed this server certificate (standbys, pg_rewind and clients verify the servers with it)")
		}
		if len(c.ServerAltDNSNames()) > 0 {
			bad("spec.certificates.serverAltDNSNames", "cannot be set with serverTLSSecret: the server certificate is yours, with the names you gave it; pgsync issues none to add them to")
		}
		if k.ServerTLSSecret == k.ReplicationTLSSecret {
			bad("spec.certificates.replicationTLSSecret", "%q is also serverTLSSecret: the streaming_replica client certificate (common name streaming_replica, client auth) cannot be the server certificate", k.ReplicationTLSSecret)
		}
	}
	if k.ReplicationTLSSecret != "" && k.ClientCASecret == "" {
		bad("spec.certificates.replicationTLSSecret", "needs spec.certificates.clientCASecret: the Secret whose ca.crt is the CA that signed this client certificate (the servers verify client certificates with it, ssl_ca_file)")
	}
}
