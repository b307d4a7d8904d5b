package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestParseCAAndIssueFrom: a CA of the user's is read with its key in
// PKCS#8, PKCS#1 (RSA) and SEC1 (EC) form, and issues a leaf that verifies
// against it; a key of another certificate, a leaf as the CA and no key
// block are refused.
func TestParseCAAndIssueFrom(t *testing.T) {
	now := time.Now()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := func(pub, priv any, isCA bool) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "user CA"}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour * 24 * 365), BasicConstraintsValid: true, IsCA: isCA, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	pkcs8 := func(k any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
	}
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	rsaCA, ecCA := ca(&rsaKey.PublicKey, rsaKey, true), ca(&ecKey.PublicKey, ecKey, true)
	for _, tc := range []struct {
		name      string
		cert, key []byte
		wantErr   string
	}{
		{"RSA PKCS#1", rsaCA, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), ""},
		{"RSA PKCS#8", rsaCA, pkcs8(rsaKey), ""},
		{"EC SEC1 after EC PARAMETERS", ecCA, append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 5, 43, 129, 4, 0, 34}}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), ""},
		{"the key of another certificate", rsaCA, pkcs8(ecKey), "does not belong"},
		{"not a CA", ca(&rsaKey.PublicKey, rsaKey, false), pkcs8(rsaKey), "not a CA"},
		{"no key", rsaCA, []byte("junk"), "no PEM private key"},
	} {
		cert, key, err := ParseCA(tc.cert, tc.key)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		leaf, err := IssueFrom(cert, key, Request{CommonName: "streaming_replica", Client: true}, now, rand.Reader)
		if err != nil {
			t.Errorf("%s: issue: %v", tc.name, err)
			continue
		}
		lc, err := ParseCert(leaf.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		if _, err := lc.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: the leaf does not verify against the CA: %v", tc.name, err)
		}
	}
}
