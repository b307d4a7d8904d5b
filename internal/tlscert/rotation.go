package tlscert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"time"
)

// CA rotation (docs/security.md, "The CA's rotation"). A cluster's CA is
// replaced by a new one a year before it expires: the new CA is trusted
// at once by every instance and client (a bundle of both certificates)
// but issues only from SwitchAfter later, once every pod and client has
// had time to take the bundle, and the old one stays trusted until it
// expires.
const (
	// CARenewBefore is how long before its expiry a CA is replaced.
	CARenewBefore = 365 * 24 * time.Hour
	// SwitchAfter is how long a new CA is trusted before certificates
	// are issued from it: its NotBefore is that far ahead. A kubelet
	// brings a new Secret into a running pod within a minute or two;
	// clients reading the NAME-ca ConfigMap get a month.
	SwitchAfter = 30 * 24 * time.Hour
)

// NewCAFrom makes a self-signed CA named commonName valid from notBefore
// for CAValidity: a successor that issues nothing before notBefore.
func NewCAFrom(commonName string, notBefore time.Time, random io.Reader) (Pair, error) {
	return NewCA(commonName, notBefore.Add(backdate), random)
}

// RotationDue reports whether a new CA must be made at now: the newest of
// cas (the one that expires last) has less than CARenewBefore left.
func RotationDue(cas []*x509.Certificate, now time.Time) bool {
	if len(cas) == 0 {
		return false
	}
	newest := cas[0]
	for _, c := range cas[1:] {
		if c.NotAfter.After(newest.NotAfter) {
			newest = c
		}
	}
	return newest.NotAfter.Sub(now) < CARenewBefore
}

// Issuer picks the CA to issue from at now: of those valid now, the one
// that expires last; -1 when none is valid.
func Issuer(cas []*x509.Certificate, now time.Time) int {
	best := -1
	for i, c := range cas {
		if now.Before(c.NotBefore) || !now.Before(c.NotAfter) {
			continue
		}
		if best < 0 || c.NotAfter.After(cas[best].NotAfter) {
			best = i
		}
	}
	return best
}

// ParseBundle decodes every certificate of a PEM bundle, in order.
func ParseBundle(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := bytes.TrimSpace(bundle)
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("certificate %d: not PEM", len(out)+1)
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate %d: a PEM %q block, not a CERTIFICATE", len(out)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
		rest = bytes.TrimSpace(rest)
	}
	return out, nil
}

// Bundle is the PEM bundle of the certificates given that have not
// expired at now, in order: what clients and instances trust.
func Bundle(certs []*x509.Certificate, now time.Time) []byte {
	var out []byte
	for _, c := range certs {
		if now.Before(c.NotAfter) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
	return out
}
