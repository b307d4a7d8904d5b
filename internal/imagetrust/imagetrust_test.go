package imagetrust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// testRegistry serves go-containerregistry's registry on 127.0.0.1 for one
// test.
func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushRandom pushes a random image to host/repo:tag and returns its digest
// reference.
func pushRandom(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(dg.String())
}

// newSigner makes an unencrypted P-256 key (cosign's encrypted format is
// scrypt-hardened: too slow under -race for every test; TestKeys reads it).
func newSigner(t *testing.T) (signature.Signer, Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyPEM(s)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePublicKey("key-"+t.Name(), pub)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// TestKeys: a key pair in cosign's format (encrypted private key) signs
// and verifies; a wrong password and a garbled key are refused.
func TestKeys(t *testing.T) {
	t.Parallel()
	priv, pub, err := GenerateKeyPair([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(priv), "ENCRYPTED SIGSTORE PRIVATE KEY") {
		t.Errorf("private key:\n%s", priv)
	}
	s, err := LoadSigner(priv, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePublicKey("cosign.pub", pub)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignMessage(strings.NewReader("m"))
	if err != nil {
		t.Fatal(err)
	}
	if name, err := verifyWithAny([]Key{k}, sig, []byte("m")); err != nil || name != "cosign.pub" {
		t.Fatalf("verify: %q, %v", name, err)
	}
	if _, err := verifyWithAny([]Key{k}, sig, []byte("n")); err == nil {
		t.Fatal("a signature verified another message")
	}
	if _, err := LoadSigner(priv, []byte("wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := ParsePublicKey("x", []byte("not a key")); err == nil {
		t.Fatal("garbled public key accepted")
	}
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	host := testRegistry(t)
	var r Registry
	d := pushRandom(t, host, "pg")
	other := pushRandom(t, host, "pg")
	s1, k1 := newSigner(t)
	s2, k2 := newSigner(t)
	k2.Name = "second"

	if _, err := r.Verify(ctx, d, []Key{k1}); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("unsigned image: err = %v, want ErrNoSignature", err)
	}
	if err := r.Sign(ctx, d, s1); err != nil {
		t.Fatal(err)
	}
	sigs, err := r.Verify(ctx, d, []Key{k1})
	if err != nil || len(sigs) != 1 || sigs[0].Key != k1.Name || sigs[0].ClaimedIdentity != d.Context().Name() {
		t.Fatalf("Verify = %+v, %v", sigs, err)
	}
	if _, err := r.Verify(ctx, d, []Key{k2}); err == nil || !strings.Contains(err.Error(), "signature 1: not signed by second") {
		t.Fatalf("another key: err = %v", err)
	}
	// Signing again with the same key adds nothing.
	if err := r.Sign(ctx, d, s1); err != nil {
		t.Fatal(err)
	}
	if img, _, _ := r.fetchSuffixImage(ctx, d, ".sig"); layerCount(t, img) != 1 {
		t.Fatalf("%d signature layers after signing twice with one key", layerCount(t, img))
	}
	// A second key's signature is added; the first stays.
	if err := r.Sign(ctx, d, s2); err != nil {
		t.Fatal(err)
	}
	if img, _, _ := r.fetchSuffixImage(ctx, d, ".sig"); layerCount(t, img) != 2 {
		t.Fatalf("%d signature layers after a second key", layerCount(t, img))
	}
	if sigs, err := r.Verify(ctx, d, []Key{k2, k1}); err != nil || len(sigs) != 2 {
		t.Fatalf("two signatures: %+v, %v", sigs, err)
	}
	// The signature image copied under another image's .sig tag: the
	// signature verifies, but it is for d, not for other.
	sigImg, sigTag, err := r.fetchSuffixImage(ctx, d, ".sig")
	if err != nil || sigImg == nil {
		t.Fatal(sigTag, err)
	}
	otherTag, _ := suffixTag(other, ".sig")
	if err := remote.Write(otherTag, sigImg); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(ctx, other, []Key{k1}); err == nil || !strings.Contains(err.Error(), "for another image: "+d.DigestStr()) {
		t.Fatalf("replayed signature: err = %v", err)
	}
	// A payload changed after signing (its signature annotation kept).
	layers, _ := readSuffixLayers(sigImg)
	forged := strings.Replace(string(layers[0].content), d.DigestStr(), other.DigestStr(), 1)
	img, err := mutate.Append(emptySuffixImage(), mutate.Addendum{
		Layer: static.NewLayer([]byte(forged), SimpleSigningMediaType), MediaType: SimpleSigningMediaType, Annotations: layers[0].annotations})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(otherTag, img); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(ctx, other, []Key{k1}); err == nil || !strings.Contains(err.Error(), "signature 1: not signed by key-TestSignVerify") {
		t.Fatalf("forged payload: err = %v", err)
	}
	// A layer with no signature annotation, another of a wrong media type.
	img, _ = mutate.Append(emptySuffixImage(),
		mutate.Addendum{Layer: static.NewLayer(layers[0].content, SimpleSigningMediaType), MediaType: SimpleSigningMediaType},
		mutate.Addendum{Layer: static.NewLayer(layers[0].content, "text/plain"), MediaType: "text/plain", Annotations: layers[0].annotations})
	if err := remote.Write(otherTag, img); err != nil {
		t.Fatal(err)
	}
	_, err = r.Verify(ctx, other, []Key{k1})
	if err == nil || !strings.Contains(err.Error(), "signature 1: no dev.cosignproject.cosign/signature annotation; signature 2: media type text/plain") {
		t.Fatalf("malformed layers: err = %v", err)
	}
	if _, err := r.Verify(ctx, d, nil); err == nil {
		t.Fatal("no key: accepted")
	}
}

func TestResolve(t *testing.T) {
	host := testRegistry(t)
	d := pushRandom(t, host, "pg")
	tag, _ := name.NewTag(host+"/pg:v1", name.Insecure)
	got, err := Registry{}.Resolve(context.Background(), tag)
	if err != nil || got.String() != d.String() {
		t.Fatalf("Resolve(%s) = %s, %v; want %s", tag, got, err, d)
	}
	missing, _ := name.NewTag(host+"/pg:absent", name.Insecure)
	if _, err := (Registry{}).Resolve(context.Background(), missing); err == nil {
		t.Fatal("a missing tag resolved")
	}
}

func TestDebianPackages(t *testing.T) {
	status, err := os.ReadFile("testdata/dpkg-status-excerpt")
	if err != nil {
		t.Fatal(err)
	}
	// A package removed with its configuration kept is not in the image.
	status = append(status, []byte("Package: vim-tiny\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 2:9.0.1378-2\nConffiles:\n /etc/vim/vimrc.tiny abc\n")...)
	pkgs, err := DebianPackages(status)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+p.Arch+" "+p.Source)
	}
	want := []string{
		"base-files 12.4+deb12u15 amd64 ",
		"libc6 2.36-9+deb12u14 amd64 glibc",
		"libpq5 15.18-0+deb12u1 amd64 postgresql-15",
		"postgresql-15 15.18-0+deb12u1 amd64 ",
		"postgresql-common 248+deb12u1 all ",
		"tzdata 2026b-0+deb12u1 all ",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := pkgs[3].PURL("debian-12"); got != "pkg:deb/debian/postgresql-15@15.18-0%2Bdeb12u1?arch=amd64&distro=debian-12" {
		t.Errorf("purl = %s", got)
	}
	for _, bad := range []struct{ status, err string }{
		{"Package: a\nStatus: install ok installed\n", "package a (a stanza ending at line 2) has no Version"},
		{"Version: 1\n\n", "a stanza ending at line 2 has no Package field"},
		{" continued\n", "line 1 continues no field"},
		{"Package a\n", `line 1 is not FIELD: VALUE: "Package a"`},
	} {
		if _, err := DebianPackages([]byte(bad.status)); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("%q: err = %v, want %q", bad.status, err, bad.err)
		}
	}
}

// TestDebianPackagesOfTheBuiltImage reads the dpkg status of the
// PostgreSQL 15.18 root file system `make kube-images` builds, when it is
// there: the SBOM must list postgresql-15 at its exact version.
func TestDebianPackagesOfTheBuiltImage(t *testing.T) {
	cache := os.Getenv("PGSYNC_KUBE_CACHE")
	if cache == "" {
		cache = "/var/cache/pgsync/kube"
	}
	status, err := os.ReadFile(filepath.Join(cache, "images/rootfs/postgresql-15.18/var/lib/dpkg/status"))
	if err != nil {
		t.Skipf("no built PostgreSQL 15.18 root file system (make kube-images): %v", err)
	}
	pkgs, err := DebianPackages(status)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(pkgs, func(p Package) bool { return p.Name == "postgresql-15" })
	if i < 0 || pkgs[i].Version != "15.18-0+deb12u1" {
		t.Fatalf("postgresql-15 not at 15.18-0+deb12u1 among %d packages", len(pkgs))
	}
	if len(pkgs) < 50 {
		t.Errorf("only %d packages in a debootstrap minbase + PostgreSQL root", len(pkgs))
	}
}

// TestGoModules reads the modules of a pgsync binary built here, as the
// image build does.
func TestGoModules(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "pgsync")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/pgsync/pgsync/cmd/pgsync")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mods, err := GoModulesOfFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if mods[0].Name != "github.com/pgsync/pgsync" {
		t.Errorf("main module = %+v", mods[0])
	}
	want := map[string]bool{}
	for _, m := range []string{"github.com/spf13/cobra", "k8s.io/client-go", "github.com/jackc/pgx/v5", "github.com/go-git/go-git/v5"} {
		want[m] = true
	}
	for _, m := range mods {
		if want[m.Name] {
			if !strings.HasPrefix(m.Version, "v") || !strings.HasPrefix(m.Sum, "h1:") {
				t.Errorf("%s: version %q sum %q", m.Name, m.Version, m.Sum)
			}
			delete(want, m.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("modules missing: %v", want)
	}
	i := slices.IndexFunc(mods, func(p Package) bool { return p.Name == "github.com/spf13/cobra" })
	if got := mods[i].PURL(""); got != "pkg:golang/github.com/spf13/cobra@"+mods[i].Version {
		t.Errorf("purl = %s", got)
	}
	if !slices.ContainsFunc(mods, func(p Package) bool { return p.Name == "stdlib" && strings.HasPrefix(p.Version, "go1.") }) {
		t.Error("no stdlib component")
	}
	if _, err := GoModulesOfFile("testdata/dpkg-status-excerpt"); err == nil {
		t.Error("a text file has Go build information")
	}
}

func testSBOM(t *testing.T) SBOM {
	status, err := os.ReadFile("testdata/dpkg-status-excerpt")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := DebianPackages(status)
	if err != nil {
		t.Fatal(err)
	}
	return SBOM{Name: "postgresql:15.18", Version: "15.18", Distro: "debian-12", Created: time.Unix(0, 0), Packages: pkgs, Tool: "pgsync-test"}
}

func TestSPDXDocument(t *testing.T) {
	s := testSBOM(t)
	a, err := MarshalSPDX(s.Document())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := MarshalSPDX(s.Document())
	if string(a) != string(b) {
		t.Fatal("two documents of the same SBOM differ")
	}
	doc, err := spdxjson.Read(strings.NewReader(string(a)))
	if err != nil {
		t.Fatalf("the SPDX document does not read back: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "1970-01-01T00:00:00Z" || len(doc.Packages) != 7 || len(doc.Relationships) != 7 {
		t.Fatalf("document: version %s, created %s, %d packages, %d relationships", doc.SPDXVersion, doc.CreationInfo.Created, len(doc.Packages), len(doc.Relationships))
	}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		if ids[string(p.PackageSPDXIdentifier)] {
			t.Errorf("SPDX id %s twice", p.PackageSPDXIdentifier)
		}
		ids[string(p.PackageSPDXIdentifier)] = true
	}
	if !strings.Contains(string(a), `"referenceLocator":"pkg:deb/debian/postgresql-15@15.18-0%2Bdeb12u1?arch=amd64\u0026distro=debian-12"`) &&
		!strings.Contains(string(a), `"referenceLocator":"pkg:deb/debian/postgresql-15@15.18-0%2Bdeb12u1?arch=amd64&distro=debian-12"`) {
		t.Errorf("no purl of postgresql-15 in %s", a)
	}
	s.Packages[3].Version = "15.20-0+deb12u1"
	if c, _ := MarshalSPDX(s.Document()); string(c) == string(a) {
		t.Error("another version gives the same document")
	}
}

func TestAttachVerifySBOM(t *testing.T) {
	ctx := context.Background()
	host := testRegistry(t)
	var r Registry
	d := pushRandom(t, host, "pg")
	other := pushRandom(t, host, "pg")
	s, k := newSigner(t)
	_, wrong := newSigner(t)
	wrong.Name = "wrong"

	if _, err := r.VerifySBOM(ctx, d, []Key{k}); !errors.Is(err, ErrNoAttestation) {
		t.Fatalf("no attestation: err = %v", err)
	}
	doc := testSBOM(t).Document()
	for range 2 { // the second replaces the first
		if err := r.AttachSBOM(ctx, d, doc, s); err != nil {
			t.Fatal(err)
		}
	}
	att, _, err := r.fetchSuffixImage(ctx, d, ".att")
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := att.Layers(); len(l) != 1 {
		t.Errorf("%d attestation layers after attaching twice, want 1", len(l))
	}
	got, err := r.VerifySBOM(ctx, d, []Key{wrong, k})
	if err != nil || len(got) != 1 || got[0].Key != k.Name {
		t.Fatalf("VerifySBOM = %+v, %v", got, err)
	}
	if !slices.ContainsFunc(got[0].Document.Packages, func(p *spdx.Package) bool {
		return p.PackageName == "postgresql-15" && p.PackageVersion == "15.18-0+deb12u1"
	}) {
		t.Error("the verified SBOM does not list postgresql-15 15.18-0+deb12u1")
	}
	if _, err := r.VerifySBOM(ctx, d, []Key{wrong}); err == nil || !strings.Contains(err.Error(), "attestation 1: not signed by wrong") {
		t.Fatalf("wrong key: err = %v", err)
	}
	otherTag, _ := suffixTag(other, ".att")
	if err := remote.Write(otherTag, att); err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifySBOM(ctx, other, []Key{k}); err == nil || !strings.Contains(err.Error(), "for another image") {
		t.Fatalf("replayed attestation: err = %v", err)
	}
}

func layerCount(t *testing.T, img interface{ Layers() ([]v1.Layer, error) }) int {
	t.Helper()
	l, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}
