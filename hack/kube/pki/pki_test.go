package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssuedCertificatesVerifyAgainstTheCA(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := loaded.Issue(Request{CommonName: "api", DNSNames: []string{"kubernetes"}, IPs: []net.IP{net.ParseIP("198.19.0.1")}, Server: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := loaded.Issue(Request{CommonName: "admin", Organization: []string{"system:masters"}, Client: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	check := func(p Pair, usage x509.ExtKeyUsage, host string) *x509.Certificate {
		t.Helper()
		if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
			t.Fatalf("key does not match certificate: %v", err)
		}
		b, _ := pem.Decode(p.CertPEM)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("%s does not verify: %v", c.Subject.CommonName, err)
		}
		return c
	}
	s := check(srv, x509.ExtKeyUsageServerAuth, "kubernetes")
	if err := s.VerifyHostname("198.19.0.1"); err != nil {
		t.Errorf("serving certificate lacks the Service IP: %v", err)
	}
	c := check(cli, x509.ExtKeyUsageClientAuth, "")
	if len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "system:masters" {
		t.Errorf("client groups = %v", c.Subject.Organization)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate verified for server use")
	}
}

func TestServiceAccountKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := WriteServiceAccountKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	read := func(name, typ string) []byte {
		t.Helper()
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		if b == nil || b.Type != typ {
			t.Fatalf("%s: want one PEM %q block", name, typ)
		}
		return b.Bytes
	}
	key, err := x509.ParseECPrivateKey(read(priv, "EC PRIVATE KEY"))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.ParsePKIXPublicKey(read(pub, "PUBLIC KEY"))
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pk) {
		t.Error("the public key file does not belong to the private key")
	}
}
