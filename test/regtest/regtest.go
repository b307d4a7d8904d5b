// Package regtest gives tests the local Kubernetes' real registry (make
// kube-up runs it on localhost:5000 and signs its images at every start,
// docs/supply-chain.md): a check that it runs, its signing key, a
// repository of a test's own to push random images to (the shared images'
// tags are never moved), and a key pair to sign them with.
//
// It must not import `internal/plan`, `internal/apply` or `internal/daemon`.
package regtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/pgsync/pgsync/internal/imagetrust"
	"github.com/pgsync/pgsync/test/prereq"
)

// Registry is the local registry's address, as pods pull from it;
// SignKey the public key its images are signed with.
const (
	Registry = "localhost:5000"
	SignKey  = "/var/cache/pgsync/kube/images/signing/cosign.pub"
)

// Require skips (fails under PGSYNC_REQUIRE_INTEGRATION) without the
// local registry and its signing key.
func Require(t testing.TB) {
	t.Helper()
	resp, err := http.Get("http://" + Registry + "/v2/")
	if err != nil {
		prereq.Missing(t, "the local registry is not running on %s (make kube-up): %v", Registry, err)
		return
	}
	resp.Body.Close()
	if _, err := os.Stat(SignKey); err != nil {
		prereq.Missing(t, "the local registry's signing key is missing (make kube-up signs its images): %v", err)
	}
}

// Repo is a repository prefix of the test's own: REGISTRY/pgsync-test-N.
func Repo(t testing.TB) string {
	return fmt.Sprintf("%s/pgsync-test-%d", Registry, time.Now().UnixNano())
}

// Push pushes a new random image under ref (REPO:TAG) and returns its
// digest.
func Push(t testing.TB, ref string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	var h v1.Hash
	if h, err = img.Digest(); err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(h.String())
}

// Digest is the digest ref's tag names now.
func Digest(t testing.TB, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatalf("resolve %s: %v", ref, err)
	}
	return desc.Digest.String()
}

// Key is a key pair of the test's: its public key file and a signer.
type Key struct {
	Pub    string
	signer signature.Signer
}

// NewKey writes a new public key to dir/NAME.pub.
func NewKey(t testing.TB, dir, name string) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Pub: filepath.Join(dir, name+".pub")}
	if err := os.WriteFile(k.Pub, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if k.signer, err = signature.LoadSigner(priv, crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	return k
}

// Sign signs d with k, as pgsync image sign does.
func (k Key) Sign(t testing.TB, d name.Digest) {
	t.Helper()
	if err := (imagetrust.Registry{}).Sign(context.Background(), d, k.signer); err != nil {
		t.Fatalf("sign %s: %v", d, err)
	}
}
