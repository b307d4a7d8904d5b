// Package gittest holds fixtures for tests of code that reads Git: OpenPGP
// identities to sign commits with, and repositories built commit by commit
// with go-git (signed or not, merges, branches moved as a force-push moves
// them). Only tests import it.
//
// It must not import `pgsync/...`.
package gittest

import (
	"bytes"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// NewSigner returns a fresh OpenPGP identity (to sign commits with go-git's
// CommitOptions.SignKey) and its armored public key ring (what
// gitsource.Repository.VerifyCommit and `pgsync --verify-key` read).
func NewSigner(t testing.TB, name, email string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", email, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, buf.String()
}
