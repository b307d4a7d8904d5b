package cluster

import "fmt"

// CertificatesConfiguration is CloudNativePG's spec.certificates, the part
// pgsync has: pgsync generates each cluster's CA (NAME-ca) and every
// instance's certificates itself (docs/security.md, "TLS"), and
// serverAltDNSNames adds names to the server certificates. Certificates
// of the user's own (serverCASecret, serverTLSSecret,
// replicationTLSSecret, clientCASecret) are refused by name
// (unsupported.go).
type CertificatesConfiguration struct {
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
}
