package imagepolicy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/pgsync/pgsync/internal/imagetrust"
)

// TestCheck: the policy decides through a registry on 127.0.0.1 — a
// signed tag is allowed and pinned to its digest, an unsigned one refused,
// a tag moved to an unsigned image refused from then on, an image that
// must carry a digest refused without asking the registry.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	signer := writeKey(t, filepath.Join(dir, "build.pub"))
	policyFile := filepath.Join(dir, "policy.yaml")
	y := "apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n" +
		"- images: [\"" + host + "/signed/*\"]\n  resolveTags: true\n  keys: [build.pub]\n" +
		"- images: [\"" + host + "/pinned/*\"]\n  requireDigest: true\n"
	p, err := Parse(policyFile, []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{Policy: p}
	var reg imagetrust.Registry

	signed := push(t, host+"/signed/pg:15.20")
	if err := reg.Sign(ctx, signed, signer); err != nil {
		t.Fatal(err)
	}
	d, err := c.Check(ctx, host+"/signed/pg:15.20")
	if err != nil || !d.Allowed || d.Image != host+"/signed/pg:15.20@"+signed.DigestStr() || d.SignedBy[0] != "build.pub" {
		t.Fatalf("signed: %+v, %v", d, err)
	}

	push(t, host+"/signed/pg:15.21")
	d, err = c.Check(ctx, host+"/signed/pg:15.21")
	if err != nil || d.Allowed || !strings.Contains(d.Reason, "requires a signature by build.pub") || !strings.Contains(d.Reason, "no signature") {
		t.Fatalf("unsigned: %+v, %v", d, err)
	}

	// The tag moves to an unsigned image: the same name is refused now,
	// and the digest allowed before is still allowed when named.
	moved := push(t, host+"/signed/pg:15.20")
	if moved.DigestStr() == signed.DigestStr() {
		t.Fatal("random images collided")
	}
	if d, _ := c.Check(ctx, host+"/signed/pg:15.20"); d.Allowed {
		t.Fatalf("a moved tag: %+v", d)
	}
	if d, _ := c.Check(ctx, host+"/signed/pg:15.20@"+signed.DigestStr()); !d.Allowed {
		t.Fatalf("the signed digest by name: %+v", d)
	}

	if d, _ := c.Check(ctx, host+"/signed/pg:absent"); d.Allowed || !strings.Contains(d.Reason, "cannot resolve") {
		t.Fatalf("a missing tag: %+v", d)
	}

	// requireDigest without resolution: decided on the name, no request
	// (the registry is closed first).
	pinned := push(t, host+"/pinned/pg:16.4")
	srv.Close()
	if d, err := c.Check(ctx, host+"/pinned/pg:16.4"); err != nil || d.Allowed || !strings.Contains(d.Reason, "requires a digest") {
		t.Fatalf("tag-only under requireDigest: %+v, %v", d, err)
	}
	if d, err := c.Check(ctx, host+"/pinned/pg:16.4@"+pinned.DigestStr()); err != nil || !d.Allowed {
		t.Fatalf("pinned: %+v, %v", d, err)
	}

	// A key file that is not there is an error, not a refusal.
	p2, _ := Parse(filepath.Join(dir, "p2.yaml"), []byte("apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\"**\"]\n  keys: [absent.pub]\n"))
	if _, err := (&Checker{Policy: p2}).Check(ctx, host+"/x/pg:1@"+pinned.DigestStr()); err == nil || !strings.Contains(err.Error(), "absent.pub") {
		t.Fatalf("a missing key file: %v", err)
	}
}

func writeKey(t *testing.T, pubFile string) signature.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func push(t *testing.T, ref string) name.Digest {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	var dg v1.Hash
	if dg, err = img.Digest(); err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(dg.String())
}
