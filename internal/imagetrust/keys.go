package imagetrust

import (
	"crypto"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// GenerateKeyPair returns a new ECDSA P-256 key pair PEM-encoded the way
// `cosign generate-key-pair` writes it: the private key encrypted with
// password (ENCRYPTED SIGSTORE PRIVATE KEY), the public key as PKIX.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc(password))
}

// LoadSigner reads a PEM private key: cosign's encrypted format (decrypted
// with password) or unencrypted PKCS#8, PKCS#1 or SEC 1. ECDSA keys sign
// with SHA-256 as cosign does.
func LoadSigner(privPEM, password []byte) (signature.Signer, error) {
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(privPEM, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return s, nil
}

// LoadSignerFile is LoadSigner on a file.
func LoadSignerFile(path string, password []byte) (signature.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := LoadSigner(b, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Key is a public key signatures are checked against, and the name it is
// reported under (its file, usually).
type Key struct {
	Name     string
	Verifier signature.Verifier
}

// ParsePublicKey reads a PEM public key (cosign.pub).
func ParsePublicKey(name string, pubPEM []byte) (Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return Key{}, fmt.Errorf("public key %s: %w", name, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return Key{}, fmt.Errorf("public key %s: %w", name, err)
	}
	return Key{Name: name, Verifier: v}, nil
}

// LoadPublicKeyFile is ParsePublicKey on a file, named by its path.
func LoadPublicKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	return ParsePublicKey(path, b)
}

// PublicKeyPEM returns the PEM public key of a signer (what to hand to
// verifiers).
func PublicKeyPEM(s signature.Signer) ([]byte, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("the signer has no public key")
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}
