package main

import (
	"archive/tar"
	"bytes"
	"context"
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
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// TestImageCommands: pgsync image sbom, sign, attest and verify against a
// registry on 127.0.0.1, on an image holding a Debian dpkg status.
func TestImageCommands(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/postgresql:15.18"
	pushDebianImage(t, ref)

	dir := t.TempDir()
	key, pub := writeKeyPair(t, dir, "a")
	_, otherPub := writeKeyPair(t, dir, "b")
	pgsync := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := run(context.Background(), args, &o, &e)
		return code, o.String(), e.String()
	}

	code, out, errOut := pgsync("image", "sbom", ref)
	if code != 0 || !strings.Contains(out, `"spdxVersion":"SPDX-2.3"`) || !strings.Contains(out, `"name":"postgresql-15","SPDXID":"SPDXRef-deb-postgresql-15-amd64-15.18-0-deb12u1","versionInfo":"15.18-0+deb12u1"`) {
		t.Fatalf("image sbom: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "verify", "--key", pub, ref); code != 1 || !strings.Contains(errOut, "no signature") {
		t.Fatalf("verify unsigned: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = pgsync("image", "sign", "--key", key, ref)
	if code != 0 || !strings.Contains(out, host+"/postgresql@sha256:") {
		t.Fatalf("image sign: %d\n%s\n%s", code, out, errOut)
	}
	digestRef := strings.TrimSpace(out)
	if code, out, errOut := pgsync("image", "verify", "--key", otherPub, "--key", pub, ref); code != 0 || !strings.Contains(out, digestRef+"\n  signed by "+pub+" (claims "+host+"/postgresql)") {
		t.Fatalf("verify: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "verify", "--key", otherPub, digestRef); code != 1 || !strings.Contains(errOut, "not signed by "+otherPub) {
		t.Fatalf("verify with another key: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "verify", "--key", pub, "--sbom", ref); code != 1 || !strings.Contains(errOut, "no attestation") {
		t.Fatalf("verify --sbom without one: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "attest", "--key", key, "--identity", "localhost:5000/postgresql:15.18", ref); code != 0 || strings.TrimSpace(out) != digestRef {
		t.Fatalf("image attest: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "verify", "--key", pub, "--sbom", ref); code != 0 || !strings.Contains(out, "SBOM by "+pub+": localhost:5000/postgresql:15.18, 6 packages") {
		t.Fatalf("verify --sbom: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "verify", "--key", pub, "--sbom", "-o", "json", ref); code != 0 || !strings.Contains(out, `"versionInfo": "15.18-0+deb12u1"`) {
		t.Fatalf("verify --sbom -o json: %d\n%s\n%s", code, out, errOut)
	}
	// The policy: signed images of this registry's postgresql, nothing else.
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\""+host+"/postgresql\"]\n  keys: [a.pub]\n  requireSBOM: true\n- images: [\"**\"]\n  deny: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pushDebianImage(t, host+"/postgresql:15.20", "another image") // unsigned
	code, out, errOut = pgsync("image", "check", "--policy", policy, ref, host+"/postgresql:15.20", "docker.io/library/postgres:16")
	if code != 1 || !strings.Contains(out, "allowed "+ref+" → "+ref+"@sha256:") || !strings.Contains(out, "signed by a.pub") ||
		!strings.Contains(out, "refused "+host+"/postgresql:15.20\n  "+policy+" rule 1 (line 4) requires a signature by a.pub") ||
		!strings.Contains(out, "refused docker.io/library/postgres:16\n  "+policy+" rule 2 (line 7) denies docker.io/library/postgres") {
		t.Fatalf("image check: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := pgsync("image", "check", "--policy", policy, ref); code != 0 {
		t.Fatalf("image check of a signed image: %d\n%s\n%s", code, out, errOut)
	}
	if err := os.WriteFile(policy, []byte("apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [x]\n  keys: yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := pgsync("image", "check", "--policy", policy, ref); code != 1 || !strings.Contains(errOut, "policy.yaml:5:9: rules[0].keys: expected a list of strings") {
		t.Fatalf("image check with an invalid policy: %d\n%s", code, errOut)
	}

	if code, _, errOut := pgsync("image", "sign", "--key", filepath.Join(dir, "absent.key"), ref); code != 1 || !strings.Contains(errOut, "absent.key") {
		t.Fatalf("sign with a missing key: %d %s", code, errOut)
	}
	if code, _, errOut := pgsync("image", "verify", "--key", pub, host+"/postgresql:absent"); code != 1 || !strings.Contains(errOut, "resolve") {
		t.Fatalf("verify a missing tag: %d %s", code, errOut)
	}
}

func writeKeyPair(t *testing.T, dir, prefix string) (keyFile, pubFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	if err := os.WriteFile(keyFile, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return keyFile, pubFile
}

// pushDebianImage pushes an image whose only file is a dpkg status (an
// excerpt of the PostgreSQL 15.18 image's), plus /etc/motd when given.
func pushDebianImage(t *testing.T, ref string, motd ...string) {
	t.Helper()
	status, err := os.ReadFile("../../internal/imagetrust/testdata/dpkg-status-excerpt")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	tw.Write(status)
	for _, m := range motd {
		tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		tw.Write([]byte(m))
	}
	tw.Close()
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
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
}
