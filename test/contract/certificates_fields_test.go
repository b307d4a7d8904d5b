package contract

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
)

// spec.certificates.serverAltDNSNames reaches the managers as
// PGSYNC_SERVER_ALT_DNS_NAMES; they put the names in every server
// certificate they issue (instance TestTLS checks the names a certificate
// carries).
func init() {
	effects["spec.certificates.serverAltDNSNames"] = effect{
		where: "the postgres container's PGSYNC_SERVER_ALT_DNS_NAMES → the instances' server certificates",
		set: func(s *cluster.Spec) {
			s.Certificates = &cluster.CertificatesConfiguration{ServerAltDNSNames: []string{"db.example.com"}}
		},
		render: func(o *kube.Objects) any { return postgres(o).Env },
	}
}
