package tlscert

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func mustCA(t *testing.T) (Pair, *x509.Certificate) {
	t.Helper()
	ca, err := NewCA("pgsync db/pg1", t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := Parse(ca)
	if err != nil {
		t.Fatal(err)
	}
	return ca, c
}

func TestNewCA(t *testing.T) {
	_, c := mustCA(t)
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("not a CA: IsCA %v MaxPathLenZero %v usage %v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if got := c.NotAfter.Sub(t0); got != CAValidity {
		t.Errorf("CA valid for %s, want %s", got, CAValidity)
	}
	if !c.NotBefore.Before(t0) {
		t.Errorf("NotBefore %s not before now", c.NotBefore)
	}
	if c.Subject.CommonName != "pgsync db/pg1" {
		t.Errorf("CN %q", c.Subject.CommonName)
	}
}

func TestIssueServer(t *testing.T) {
	ca, caCert := mustCA(t)
	req := Request{CommonName: "pg1-0", DNSNames: []string{"pg1-rw", "pg1-rw.db.svc", "pg1-0.pg1-hl.db.svc", "pg1-rw"},
		IPs: []net.IP{net.ParseIP("10.0.0.7")}}
	p, err := Issue(ca, req, t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.NotAfter.Sub(t0); got != LeafValidity {
		t.Errorf("valid for %s, want %s", got, LeafValidity)
	}
	if len(leaf.DNSNames) != 3 {
		t.Errorf("DNS names %v: want the three distinct ones", leaf.DNSNames)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	for _, host := range []string{"pg1-rw", "pg1-rw.db.svc", "pg1-0.pg1-hl.db.svc", "10.0.0.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: t0,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify as %s: %v", host, err)
		}
	}
	for _, host := range []string{"pg1-ro", "evil.example", "10.0.0.8"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: t0}); err == nil {
			t.Errorf("verified as %s, which it does not name", host)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "pg1-rw", Roots: pool, CurrentTime: t0,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a server certificate verified as a client certificate")
	}
	// A TLS stack accepts the pair as it is written to disk.
	if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		t.Errorf("tls.X509KeyPair: %v", err)
	}
	if !Covers(leaf, req) {
		t.Error("Covers: the leaf does not cover its own request")
	}
	more := req
	more.IPs = []net.IP{net.ParseIP("10.0.0.9")}
	if Covers(leaf, more) {
		t.Error("Covers: a new pod IP is covered")
	}
	more = req
	more.DNSNames = append(more.DNSNames, "db.example.com")
	if Covers(leaf, more) {
		t.Error("Covers: a new alternative name is covered")
	}
}

func TestIssueClient(t *testing.T) {
	ca, caCert := mustCA(t)
	p, err := Issue(ca, Request{CommonName: "streaming_replica", Client: true}, t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, _ := Parse(p)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t0,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify client: %v", err)
	}
	if leaf.Subject.CommonName != "streaming_replica" {
		t.Errorf("CN %q", leaf.Subject.CommonName)
	}
}

func TestIssueNotPastCA(t *testing.T) {
	ca, caCert := mustCA(t)
	late := caCert.NotAfter.Add(-24 * time.Hour)
	p, err := Issue(ca, Request{CommonName: "x"}, late, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, _ := Parse(p)
	if !leaf.NotAfter.Equal(caCert.NotAfter) {
		t.Errorf("leaf expires %s, after its CA's %s", leaf.NotAfter, caCert.NotAfter)
	}
}

func TestIssueRefusesNonCA(t *testing.T) {
	ca, _ := mustCA(t)
	leaf, err := Issue(ca, Request{CommonName: "x"}, t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Issue(leaf, Request{CommonName: "y"}, t0, rand.Reader); err == nil {
		t.Error("a leaf signed a certificate")
	}
}

func TestParseMismatch(t *testing.T) {
	a, _ := mustCA(t)
	b, _ := mustCA(t)
	if _, _, err := Parse(Pair{CertPEM: a.CertPEM, KeyPEM: b.KeyPEM}); err == nil {
		t.Error("a key of another certificate was accepted")
	}
	if _, _, err := Parse(Pair{CertPEM: []byte("junk"), KeyPEM: a.KeyPEM}); err == nil {
		t.Error("junk accepted as a certificate")
	}
}

func TestNeedsRenewal(t *testing.T) {
	ca, caCert := mustCA(t)
	p, err := Issue(ca, Request{CommonName: "x"}, t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, _ := Parse(p)
	other, otherCert := mustCA(t)
	_ = other
	for _, c := range []struct {
		name string
		now  time.Time
		ca   *x509.Certificate
		want bool
	}{
		{"fresh", t0, caCert, false},
		{"just before the renewal point", t0.Add(LeafValidity - RenewBefore - time.Second), caCert, false},
		{"at the renewal point", t0.Add(LeafValidity - RenewBefore + time.Second), caCert, true},
		{"expired", t0.Add(LeafValidity + time.Hour), caCert, true},
		{"clock went back before NotBefore", t0.Add(-time.Hour), caCert, true},
		{"signed by another CA (the CA was replaced)", t0, otherCert, true},
	} {
		if got := NeedsRenewal(leaf, c.ca, c.now); got != c.want {
			t.Errorf("%s: NeedsRenewal = %v, want %v", c.name, got, c.want)
		}
	}
}
