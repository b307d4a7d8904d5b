package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUnsigned is matched (errors.Is) by VerifyCommit's error, and a
// CommitVerdict's Err, for a commit without a signature.
var ErrUnsigned = errors.New("commit is not signed")

// ErrSSHSignature is matched for a commit signed with an SSH key (git's
// gpg.format=ssh). go-git verifies OpenPGP signatures only (Commit.Verify
// takes an armored OpenPGP key ring), so such a commit cannot be shown to
// come from a trusted key: it is refused, never taken for unsigned.
var ErrSSHSignature = errors.New("commit is signed with an SSH key, which pgsync cannot verify: go-git checks OpenPGP signatures only; sign with an OpenPGP key (gpg.format=openpgp)")

// ErrX509Signature is matched for a commit signed with an X.509
// certificate (gpg.format=x509, gpgsm), refused for the same reason.
var ErrX509Signature = errors.New("commit is signed with an X.509 certificate, which pgsync cannot verify: go-git checks OpenPGP signatures only; sign with an OpenPGP key (gpg.format=openpgp)")

// VerifyCommit checks commit's OpenPGP signature (go-git's Commit.Verify)
// against the armored public keys in armoredKeyRing — one or several
// armored blocks, as `gpg --export --armor` of several keys concatenated
// gives — and returns the signer's primary identity (for example
// "Alice <alice@example.com>"). An unsigned commit, an SSH or X.509
// signature, a signature by a key not in the ring, or a commit altered
// after signing is an error.
func (r *Repository) VerifyCommit(commit string, armoredKeyRing string) (signer string, err error) {
	defer r.release()
	c, err := r.commit(commit)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(c.PGPSignature) == "" {
		return "", fmt.Errorf("commit %s: %w", c.Hash, ErrUnsigned)
	}
	ring, err := joinKeyRings(armoredKeyRing)
	if err != nil {
		return "", fmt.Errorf("verifying commit %s: %w", c.Hash, err)
	}
	signer, err = verifySignature(c, ring)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Hash, err)
	}
	return signer, nil
}

// verifySignature checks c's signature against ring (already joined) and
// returns the signer's identity.
func verifySignature(c *object.Commit, ring string) (string, error) {
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return "", ErrUnsigned
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return "", ErrSSHSignature
	case strings.HasPrefix(sig, "-----BEGIN SIGNED MESSAGE-----"), strings.HasPrefix(sig, "-----BEGIN CERTIFICATE-----"):
		return "", ErrX509Signature
	}
	entity, err := c.Verify(ring)
	if err != nil {
		return "", fmt.Errorf("signature not valid for the given keys: %w", err)
	}
	if id := entity.PrimaryIdentity(); id != nil {
		return id.Name, nil
	}
	return fmt.Sprintf("key %X", entity.PrimaryKey.KeyId), nil
}

// joinKeyRings reads every armored public key block in s and re-armors the
// keys as one block, the only shape Commit.Verify reads completely.
func joinKeyRings(s string) (string, error) {
	var keys openpgp.EntityList
	// armor.Decode buffers past the end of its block, so each block is cut
	// out before decoding.
	const begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	for _, part := range strings.Split(s, begin)[1:] {
		block, err := armor.Decode(strings.NewReader(begin + part))
		if err != nil {
			return "", fmt.Errorf("reading the key ring: %w", err)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return "", fmt.Errorf("reading the key ring: %w", err)
		}
		keys = append(keys, el...)
	}
	if len(keys) == 0 {
		return "", errors.New("the key ring holds no OpenPGP public key")
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return "", err
	}
	for _, e := range keys {
		if err := e.Serialize(w); err != nil {
			return "", fmt.Errorf("re-encoding key %X: %w", e.PrimaryKey.KeyId, err)
		}
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}
