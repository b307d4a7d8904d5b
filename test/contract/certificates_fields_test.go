package contract

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
)

// spec.certificates.serverAltDNSNames reaches the managers as
// PGSYNC_SERVER_ALT_DNS_NAMES; they put the names in every server
// certificate they issue (instance TestTLS checks the names a certificate
// carries). The four Secrets of the user's are projected into the certs
// volume, each named to the manager by its variable; the managers serve,
// replicate with and trust what they hold (instance TestUserCertificates).
func init() {
	effects["spec.certificates.serverAltDNSNames"] = effect{
		where: "the postgres container's PGSYNC_SERVER_ALT_DNS_NAMES → the instances' server certificates",
		set: func(s *cluster.Spec) {
			s.Certificates = &cluster.CertificatesConfiguration{ServerAltDNSNames: []string{"db.example.com"}}
		},
		render: func(o *kube.Objects) any { return postgres(o).Env },
	}
	certs := func(k cluster.CertificatesConfiguration) func(*cluster.Spec) {
		return func(s *cluster.Spec) { s.Certificates = &k }
	}
	podSpec := func(o *kube.Objects) any {
		return []any{postgres(o).Env, o.StatefulSet.Spec.Template.Spec.Volumes}
	}
	effects["spec.certificates.serverCASecret"] = effect{
		where:  "the certs volume's server-ca/ and PGSYNC_SERVER_CA_DIR → the server CA (and the server certificates issued from its key)",
		set:    certs(cluster.CertificatesConfiguration{ServerCASecret: "my-server-ca"}),
		render: podSpec,
	}
	effects["spec.certificates.serverTLSSecret"] = effect{
		where:  "the certs volume's server-tls/ and PGSYNC_SERVER_TLS_DIR → the certificate every instance serves",
		set:    certs(cluster.CertificatesConfiguration{ServerCASecret: "my-server-ca", ServerTLSSecret: "my-server-tls"}),
		render: podSpec,
	}
	effects["spec.certificates.clientCASecret"] = effect{
		where:  "the certs volume's client-ca/ and PGSYNC_CLIENT_CA_DIR → ssl_ca_file (and streaming_replica's certificate issued from its key)",
		set:    certs(cluster.CertificatesConfiguration{ClientCASecret: "my-client-ca"}),
		render: podSpec,
	}
	effects["spec.certificates.replicationTLSSecret"] = effect{
		where:  "the certs volume's replication-tls/ and PGSYNC_REPLICATION_TLS_DIR → the standbys' client certificate",
		set:    certs(cluster.CertificatesConfiguration{ClientCASecret: "my-client-ca", ReplicationTLSSecret: "my-repl-tls"}),
		render: podSpec,
	}
}
