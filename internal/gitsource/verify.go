package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// ErrUnsigned is matched (errors.Is) by VerifyCommit's error for a commit
// without an OpenPGP signature.
var ErrUnsigned = errors.New("commit is not signed")

// VerifyCommit checks commit's OpenPGP signature (go-git's Commit.Verify)
// against the armored public keys in armoredKeyRing — one or several
// armored blocks, as `gpg --export --armor` of several keys concatenated
// gives — and returns the signer's primary identity (for example
// "Alice <alice@example.com>"). An unsigned commit, a signature by a key not
// in the ring, or a commit altered after signing is an error.
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
	entity, err := c.Verify(ring)
	if err != nil {
		return "", fmt.Errorf("commit %s: signature not valid for the given keys: %w", c.Hash, err)
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
