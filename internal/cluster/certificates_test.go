package cluster

import (
	"slices"
	"testing"
)

// TestCertificates: spec.certificates' Secrets in each of CloudNativePG's
// combinations load; a certificate without the CA that verifies it,
// serverAltDNSNames beside a certificate of the user's, one Secret as
// both certificates, names that are no Secret name or one of pgsync's
// own are refused at their line, all in one pass.
func TestCertificates(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 3\n  storage:\n    size: 1Gi\n  certificates:\n"
	for _, tc := range []struct {
		body       string
		want       CertificateSecrets
		wantErrors []string
	}{
		{body: "    serverCASecret: sca\n", want: CertificateSecrets{ServerCASecret: "sca"}},
		{body: "    serverCASecret: sca\n    serverTLSSecret: stls\n", want: CertificateSecrets{ServerCASecret: "sca", ServerTLSSecret: "stls"}},
		{body: "    clientCASecret: cca\n", want: CertificateSecrets{ClientCASecret: "cca"}},
		{body: "    clientCASecret: cca\n    replicationTLSSecret: rtls\n", want: CertificateSecrets{ClientCASecret: "cca", ReplicationTLSSecret: "rtls"}},
		{body: "    serverCASecret: one\n    serverTLSSecret: one\n    clientCASecret: one\n    replicationTLSSecret: two\n",
			want: CertificateSecrets{ServerCASecret: "one", ServerTLSSecret: "one", ClientCASecret: "one", ReplicationTLSSecret: "two"}},
		{body: "    serverCASecret: sca\n    serverAltDNSNames: [db.example.com]\n", want: CertificateSecrets{ServerCASecret: "sca"}},
		{body: "    serverTLSSecret: stls\n", wantErrors: []string{
			`c.yaml:12:22: spec.certificates.serverTLSSecret: needs spec.certificates.serverCASecret: the Secret whose ca.crt is the CA that signed this server certificate (standbys, pg_rewind and clients verify the servers with it)`}},
		{body: "    replicationTLSSecret: rtls\n", wantErrors: []string{
			`c.yaml:12:27: spec.certificates.replicationTLSSecret: needs spec.certificates.clientCASecret: the Secret whose ca.crt is the CA that signed this client certificate (the servers verify client certificates with it, ssl_ca_file)`}},
		// Every problem of the field at once.
		{body: "    serverCASecret: sca\n    serverTLSSecret: both\n    clientCASecret: pg-ca\n    replicationTLSSecret: both\n    serverAltDNSNames: [db.example.com]\n", wantErrors: []string{
			`c.yaml:14:21: spec.certificates.clientCASecret: "pg-ca" is a Secret pgsync generates for the cluster (its own CA or a credential); name a Secret of your own, or leave clientCASecret out to have pgsync's CA used`,
			`c.yaml:15:27: spec.certificates.replicationTLSSecret: "both" is also serverTLSSecret: the streaming_replica client certificate (common name streaming_replica, client auth) cannot be the server certificate`,
			`c.yaml:16:24: spec.certificates.serverAltDNSNames: cannot be set with serverTLSSecret: the server certificate is yours, with the names you gave it; pgsync issues none to add them to`}},
		{body: "    serverCASecret: My_CA\n    clientCASecret: pg-superuser\n", wantErrors: []string{
			`c.yaml:12:21: spec.certificates.serverCASecret: "My_CA" is not a valid Secret name`,
			`c.yaml:13:21: spec.certificates.clientCASecret: "pg-superuser" is a Secret pgsync generates for the cluster (its own CA or a credential); name a Secret of your own, or leave clientCASecret out to have pgsync's CA used`}},
	} {
		cs, errs := load(t, File{Path: "c.yaml", Data: []byte(head + tc.body)})
		var got []string
		for _, e := range errs {
			got = append(got, e.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.wantErrors) {
			t.Errorf("%q: errors\n%q\nwant\n%q", tc.body, got, tc.wantErrors)
			continue
		}
		if len(tc.wantErrors) > 0 {
			continue
		}
		if k := cs.Clusters[0].UserCertificates(); k != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.body, k, tc.want)
		}
	}
}

// TestCertificatesCorpus: CloudNativePG's own examples load with the
// Secrets they name.
func TestCertificatesCorpus(t *testing.T) {
	want := map[string]CertificateSecrets{
		"testdata/cnpg/certificates-server.yaml": {ServerTLSSecret: "my-postgres-server-cert", ServerCASecret: "my-postgres-server-cert"},
		"testdata/cnpg/certificates-client.yaml": {ClientCASecret: "my-postgres-client-cert", ReplicationTLSSecret: "my-postgres-client-cert"},
		"testdata/cnpg/certificates-ca.yaml":     {ServerCASecret: "my-server-ca", ClientCASecret: "my-client-ca"},
	}
	for p, c := range loadEach(t, "testdata/cnpg/certificates-*.yaml", len(want)) {
		if got := c.UserCertificates(); got != want[p] {
			t.Errorf("%s: %+v, want %+v", p, got, want[p])
		}
	}
}
