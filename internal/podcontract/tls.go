package podcontract

import "strings"

// TLS (docs/security.md, "TLS"): pgsync generates a per-cluster CA once
// into the Secret NAME-ca and publishes its certificate in the ConfigMap
// NAME-ca; each instance manager issues its own server certificate and the
// streaming_replica client certificate from the CA mounted in its pod.
const (
	// CADir is where the pod mounts the NAME-ca Secret's two keys.
	CADir = "/etc/pgsync/ca"
	// CACertKey and CAKeyKey are the keys of the NAME-ca Secret (and
	// CACertKey of the NAME-ca ConfigMap), as CloudNativePG names them.
	CACertKey = "ca.crt"
	CAKeyKey  = "ca.key"

	// EnvCADir names the directory holding CACertKey and CAKeyKey; unset,
	// or without the files, the manager runs without TLS (a pod created
	// before pgsync's TLS).
	EnvCADir = "PGSYNC_CA_DIR"
	// EnvServerAltDNSNames is spec.certificates.serverAltDNSNames,
	// comma-separated: more DNS names in every server certificate.
	EnvServerAltDNSNames = "PGSYNC_SERVER_ALT_DNS_NAMES"

	// AnnPrimaryTLS on the primary Lease names the holder when its server
	// has TLS on (written with AnnPrimaryAddress): standbys then connect
	// with sslmode=verify-full and their client certificate. A holder it
	// does not name runs a manager from before TLS (a cluster whose pods
	// are not all re-created yet), which a standby that has a replication
	// password follows as before.
	AnnPrimaryTLS = "pgsync.io/primary-tls"
)

// Certificates of the user's own (spec.certificates' four Secrets,
// docs/security.md): the pod projects each Secret given into a directory
// of CertsDir, and names the directory in its variable; the manager uses
// what the directory holds instead of issuing it.
const (
	// CertsDir is the projected volume of the user's Secrets.
	CertsDir = "/etc/pgsync/certs"
	// ServerCASubdir holds serverCASecret's CACertKey (and CAKeyKey
	// when no serverTLSSecret is given), ClientCASubdir clientCASecret's
	// (CAKeyKey when no replicationTLSSecret); ServerTLSSubdir and
	// ReplicationTLSSubdir the kubernetes.io/tls Secrets' TLSCertKey and
	// TLSKeyKey.
	ServerCASubdir       = "server-ca"
	ServerTLSSubdir      = "server-tls"
	ClientCASubdir       = "client-ca"
	ReplicationTLSSubdir = "replication-tls"
	TLSCertKey           = "tls.crt"
	TLSKeyKey            = "tls.key"

	// The directories' variables, each set only when its Secret is
	// given.
	EnvServerCADir       = "PGSYNC_SERVER_CA_DIR"
	EnvServerTLSDir      = "PGSYNC_SERVER_TLS_DIR"
	EnvClientCADir       = "PGSYNC_CLIENT_CA_DIR"
	EnvReplicationTLSDir = "PGSYNC_REPLICATION_TLS_DIR"
)

// CASecret holds the cluster's CA certificate and key.
func (n Names) CASecret() string { return n.Cluster + "-ca" }

// CAConfigMap publishes the CA certificate to clients (sslrootcert).
func (n Names) CAConfigMap() string { return n.Cluster + "-ca" }

// ServerDNSNames are the DNS names every instance's server certificate
// carries, so that a client verifies it (sslmode=verify-full) through any
// of the Services, in their short, namespaced and .svc forms, and through
// the instance's own pod name (the standbys' upstream address).
func (n Names) ServerDNSNames(instance, namespace string) []string {
	var out []string
	for _, svc := range []string{n.RW(), n.RO(), n.R()} {
		out = append(out, svc, svc+"."+namespace, svc+"."+namespace+".svc")
	}
	pod := instance + "." + n.Headless()
	return append(out, pod, pod+"."+namespace, pod+"."+namespace+".svc")
}

// SplitNames parses a comma-separated EnvServerAltDNSNames value.
func SplitNames(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
