package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pgsync/pgsync/test/cosigntest"
)

// serveLayout serves the layout's registry on 127.0.0.1 (a free port) for
// one test, as startRegistry does on :5000.
func serveLayout(t *testing.T, p paths) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registryHandler(p), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestAttachTrust: the layout's images (pgsync:dev built from the checkout,
// a Debian image holding a dpkg status) are signed and get their SBOMs in
// the registry; what it wrote is kept in the layout, so a restarted
// registry serves it without signing again; pgsync image verify and cosign
// verify accept it.
func TestAttachTrust(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pgsync")
	}
	ctx := context.Background()
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	p := paths{repo: repo, cache: t.TempDir()}
	lp, err := openLayout(p.layoutDir())
	if err != nil {
		t.Fatal(err)
	}
	pg, err := staticImage(ctx, p, "./cmd/pgsync", "/pgsync", "65532:65532")
	if err != nil {
		t.Fatal(err)
	}
	if err := putImage(lp, pgsyncRef, pg); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(filepath.Join(repo, "internal/imagetrust/testdata/dpkg-status-excerpt"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	tw.Write(status)
	tw.Close()
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	deb, err := assemble(layer, v1.Config{User: "26:26", Cmd: []string{"postgres"}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := putImage(lp, "postgresql:15.18", deb); err != nil {
		t.Fatal(err)
	}

	addr := serveLayout(t, p)
	if err := pushLayoutTo(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
	if err := attachTrust(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"postgresql:15.18", pgsyncRef} {
		if !hasRef(lp, strings.SplitN(ref, ":", 2)[0]+":"+digestTag(t, lp, ref)+".sig") {
			t.Errorf("no signature of %s kept in the layout", ref)
		}
	}
	sbomFiles, _ := filepath.Glob(filepath.Join(p.sbomDir(), "*.spdx.json"))
	if len(sbomFiles) != 2 {
		t.Fatalf("SBOM files: %v", sbomFiles)
	}
	st0, _ := os.Stat(sbomFiles[0])

	// A restarted registry (manifests are in memory): pushed from the
	// layout, signatures included; nothing is signed again.
	addr = serveLayout(t, p)
	if err := pushLayoutTo(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
	if err := attachTrust(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
	if st1, _ := os.Stat(sbomFiles[0]); !st1.ModTime().Equal(st0.ModTime()) {
		t.Error("the SBOM was computed again")
	}
	verify := func(args ...string) (string, error) {
		out, err := exec.Command(p.signerBin(), append([]string{"image", "verify"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := verify("--key", p.signingPubKey(), "--sbom", addr+"/postgresql:15.18")
	if err != nil || !strings.Contains(out, "claims localhost:5000/postgresql)") || !strings.Contains(out, "localhost:5000/postgresql:15.18, 6 packages") {
		t.Fatalf("pgsync image verify postgresql:15.18: %v\n%s", err, out)
	}
	out, err = verify("--key", p.signingPubKey(), "--sbom", "-o", "json", addr+"/"+pgsyncRef)
	if err != nil || !strings.Contains(out, `"name": "github.com/spf13/cobra"`) {
		t.Fatalf("pgsync image verify pgsync:dev: %v\n%s", err, out)
	}

	// A replaced pgsync image (another user: another digest): signed
	// anew, the old signature and attestation dropped.
	oldTag := digestTag(t, lp, pgsyncRef)
	pg2, err := staticImage(ctx, p, "./cmd/pgsync", "/pgsync", "65533:65533")
	if err != nil {
		t.Fatal(err)
	}
	if err := putImage(lp, pgsyncRef, pg2); err != nil {
		t.Fatal(err)
	}
	if err := pushLayoutTo(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
	if err := attachTrust(ctx, p, addr); err != nil {
		t.Fatal(err)
	}
	newTag := digestTag(t, lp, pgsyncRef)
	if newTag == oldTag || hasRef(lp, "pgsync:"+oldTag+".sig") || hasRef(lp, "pgsync:"+oldTag+".att") || !hasRef(lp, "pgsync:"+newTag+".sig") || !hasRef(lp, "pgsync:"+newTag+".att") {
		t.Fatalf("after replacing pgsync:dev (%s → %s): old signature kept or new one missing", oldTag, newTag)
	}
	if out, err := verify("--key", p.signingPubKey(), "--sbom", addr+"/"+pgsyncRef); err != nil {
		t.Fatalf("the replaced pgsync:dev: %v\n%s", err, out)
	}

	cosign := cosigntest.Binary(t)
	o, e, err := cosigntest.Run(t, cosign, nil, "verify", "--key", p.signingPubKey(), "--insecure-ignore-tlog=true", "--offline=true", addr+"/postgresql:15.18")
	if err != nil || !strings.Contains(o, `"docker-reference":"localhost:5000/postgresql"`) {
		t.Fatalf("cosign verify: %v\n%s\n%s", err, o, e)
	}
	if _, e, err := cosigntest.Run(t, cosign, nil, "verify-attestation", "--key", p.signingPubKey(), "--type", "spdxjson", "--insecure-ignore-tlog=true", "--offline=true", addr+"/"+pgsyncRef); err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, e)
	}
}

// digestTag is sha256-HEX of ref's image in the layout.
func digestTag(t *testing.T, lp layout.Path, ref string) string {
	t.Helper()
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[refAnnotation] == ref {
			return d.Digest.Algorithm + "-" + d.Digest.Hex
		}
	}
	t.Fatalf("no %s in the layout", ref)
	return ""
}
