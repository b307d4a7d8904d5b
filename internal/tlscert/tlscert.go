// Package tlscert makes the certificates of a cluster's TLS: a per-cluster
// CA (pgsync generates it once, into the NAME-ca Secret), and from it each
// instance's server certificate and the streaming_replica client
// certificate (the instance manager issues both for itself, so the server
// certificate names the instance's own pod and address), and says when a
// certificate is due for renewal. ECDSA P-256 keys, PEM encoded (PKCS#8
// keys), as PostgreSQL's OpenSSL and libpq read them.
//
// It is pure: the clock and the randomness are passed in.
//
// It must not import `pgsync/...`, `k8s.io/client-go/...` or `github.com/jackc/pgx/...`.
package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"time"
)

// Validity and renewal. A leaf is renewed when less than RenewBefore of it
// remains; the instance manager checks far more often than that.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 90 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
	// backdate covers clocks a little behind the issuer's.
	backdate = 5 * time.Minute
)

// Pair is a certificate and its private key, PEM encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// Request is what a leaf certificate says.
type Request struct {
	// CommonName: for a client certificate, the database role it logs in
	// as (PostgreSQL's cert method compares it with the user name).
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// Client: a client certificate (ExtKeyUsageClientAuth); otherwise a
	// server certificate (ExtKeyUsageServerAuth).
	Client bool
}

// NewCA makes a self-signed CA named commonName, valid CAValidity from now.
func NewCA(commonName string, now time.Time, random io.Reader) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return Pair{}, fmt.Errorf("CA key: %w", err)
	}
	serial, err := serialNumber(random)
	if err != nil {
		return Pair{}, err
	}
	ski := keyID(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"pgsync"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Pair{}, fmt.Errorf("CA certificate: %w", err)
	}
	return encode(der, key)
}

// Issue makes a leaf certificate for req signed by ca, valid LeafValidity
// from now (never past the CA's own expiry).
func Issue(ca Pair, req Request, now time.Time, random io.Reader) (Pair, error) {
	caCert, caKey, err := Parse(ca)
	if err != nil {
		return Pair{}, fmt.Errorf("CA: %w", err)
	}
	return IssueFrom(caCert, caKey, req, now, random)
}

// IssueFrom is Issue with a CA already parsed, whatever its key's kind (a
// CA of the user's may have an RSA key); the leaf's key is ECDSA P-256.
func IssueFrom(caCert *x509.Certificate, caKey crypto.Signer, req Request, now time.Time, random io.Reader) (Pair, error) {
	if !caCert.IsCA {
		return Pair{}, errors.New("CA: the certificate is not a CA")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return Pair{}, fmt.Errorf("key: %w", err)
	}
	serial, err := serialNumber(random)
	if err != nil {
		return Pair{}, err
	}
	notAfter := now.Add(LeafValidity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	usage := x509.ExtKeyUsageServerAuth
	if req.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: req.CommonName},
		NotBefore:      now.Add(-backdate),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{usage},
		DNSNames:       slices.Compact(slices.Sorted(slices.Values(req.DNSNames))),
		IPAddresses:    req.IPs,
		AuthorityKeyId: caCert.SubjectKeyId,
		SubjectKeyId:   keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(random, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return Pair{}, fmt.Errorf("certificate %q: %w", req.CommonName, err)
	}
	return encode(der, key)
}

// ParseCA decodes a CA of the user's: its certificate (the first of the
// PEM blocks) and its key in any of the PEM forms OpenSSL and
// cert-manager write (PKCS#8, PKCS#1 RSA, SEC1 EC), checked to belong
// together and to be a CA.
func ParseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, nil, err
	}
	if !cert.IsCA {
		return nil, nil, errors.New("the certificate is not a CA (basic constraints CA:TRUE)")
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the private key does not belong to the certificate")
	}
	return cert, key, nil
}

// ParseKey decodes the first PEM private key block: PKCS#8 ("PRIVATE
// KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no PEM private key block")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key: %T cannot sign", k)
		}
		return s, nil
	}
}

// Parse decodes p's certificate and key and checks that they belong
// together.
func Parse(p Pair) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := ParseCert(p.CertPEM)
	if err != nil {
		return nil, nil, err
	}
	b, _ := pem.Decode(p.KeyPEM)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("private key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("private key: %T, want ECDSA", k)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the private key does not belong to the certificate")
	}
	return cert, key, nil
}

// ParseCert decodes the first PEM CERTIFICATE block.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return c, nil
}

// NeedsRenewal reports whether a leaf should be issued again at now: less
// than RenewBefore remains, it is not valid yet (a clock that jumped
// back), or the CA that should have signed it did not.
func NeedsRenewal(leaf, ca *x509.Certificate, now time.Time) bool {
	if now.Before(leaf.NotBefore) || leaf.NotAfter.Sub(now) < RenewBefore {
		return true
	}
	return leaf.CheckSignatureFrom(ca) != nil
}

// Covers reports whether leaf names every DNS name and IP of req (a new
// address or alternative name means a new certificate).
func Covers(leaf *x509.Certificate, req Request) bool {
	if leaf.Subject.CommonName != req.CommonName {
		return false
	}
	for _, n := range req.DNSNames {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range req.IPs {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func serialNumber(random io.Reader) (*big.Int, error) {
	n, err := randInt(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// randInt is crypto/rand.Int without the package's reader.
func randInt(random io.Reader, max *big.Int) (*big.Int, error) {
	b := make([]byte, (max.BitLen()+7)/8)
	for {
		if _, err := io.ReadFull(random, b); err != nil {
			return nil, err
		}
		b[0] &= byte(1<<(uint(max.BitLen()-1)%8+1) - 1)
		n := new(big.Int).SetBytes(b)
		if n.Cmp(max) < 0 {
			return n, nil
		}
	}
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return sum[:20]
}

func encode(der []byte, key *ecdsa.PrivateKey) (Pair, error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, fmt.Errorf("encode key: %w", err)
	}
	return Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}),
	}, nil
}
