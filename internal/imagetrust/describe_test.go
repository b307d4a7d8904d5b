package imagetrust

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layerOf is a layer holding files (path → content).
func layerOf(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		must(t, tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}))
		_, err := tw.Write(files[n])
		must(t, err)
	}
	must(t, tw.Close())
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	must(t, err)
	return l
}

func imageOf(t *testing.T, entrypoint string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	if entrypoint != "" {
		cf.Config.Entrypoint = []string{entrypoint}
	}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

func TestDescribe(t *testing.T) {
	status, err := os.ReadFile("testdata/dpkg-status-excerpt")
	must(t, err)
	self, err := os.Executable()
	must(t, err)
	bin, err := os.ReadFile(self)
	must(t, err)

	deb := imageOf(t, "", layerOf(t, map[string][]byte{"var/lib/dpkg/status": status, "etc/hostname": []byte("x\n")}))
	s, err := Describe(deb, "postgresql:15.18", "15.18", "test")
	must(t, err)
	if s.Distro != "debian-12" || len(s.Packages) != 6 || s.Packages[3].Name != "postgresql-15" || !s.Created.Equal(time.Unix(0, 0)) {
		t.Fatalf("Debian image: %+v", s)
	}

	goImg := imageOf(t, "/bin/app", layerOf(t, map[string][]byte{"bin/app": bin}))
	s, err = Describe(goImg, "app:dev", "dev", "test")
	must(t, err)
	if len(s.Packages) < 2 || s.Packages[0].Kind != "golang" || s.Packages[0].Name != "github.com/pgsync/pgsync" {
		t.Fatalf("Go image: %+v", s.Packages)
	}

	// A later layer deleting the status (a whiteout): nothing is left.
	gone := imageOf(t, "", layerOf(t, map[string][]byte{"var/lib/dpkg/status": status}), layerOf(t, map[string][]byte{"var/lib/dpkg/.wh.status": nil}))
	if _, err := Describe(gone, "gone", "1", "test"); err == nil || !strings.Contains(err.Error(), "nothing to list") {
		t.Fatalf("whited-out status: err = %v", err)
	}
	// An entrypoint that is no Go binary.
	notGo := imageOf(t, "/bin/sh", layerOf(t, map[string][]byte{"bin/sh": []byte("#!/bin/sh\n")}))
	if _, err := Describe(notGo, "sh", "1", "test"); err == nil || !strings.Contains(err.Error(), "entrypoint /bin/sh") {
		t.Fatalf("shell entrypoint: err = %v", err)
	}
	// A malformed status is an error, not an empty list.
	bad := imageOf(t, "", layerOf(t, map[string][]byte{"var/lib/dpkg/status": []byte("garbage\n")}))
	if _, err := Describe(bad, "bad", "1", "test"); err == nil || !strings.Contains(err.Error(), "not FIELD: VALUE") {
		t.Fatalf("malformed status: err = %v", err)
	}
}

// TestDescribeBuiltImages reads the images `make kube-images` keeps in its
// OCI layout, when they are there (read only): the PostgreSQL 15.18 image
// lists postgresql-15 at its exact version, the pgsync image its modules.
// (15.20 is left out: reading a PostgreSQL layer takes ~4 s, ~35 s under
// -race.)
func TestDescribeBuiltImages(t *testing.T) {
	t.Parallel()
	cache := os.Getenv("PGSYNC_KUBE_CACHE")
	if cache == "" {
		cache = "/var/cache/pgsync/kube"
	}
	lp, err := layout.FromPath(filepath.Join(cache, "images", "oci"))
	if err != nil {
		t.Skipf("no image layout (make kube-images): %v", err)
	}
	idx, err := lp.ImageIndex()
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	want := map[string]func(SBOM) bool{
		"postgresql:15.18": func(s SBOM) bool {
			return s.Distro == "debian-12" && slices.ContainsFunc(s.Packages, func(p Package) bool { return p.Name == "postgresql-15" && p.Version == "15.18-0+deb12u1" })
		},
		"pgsync:dev": func(s SBOM) bool {
			return s.Packages[0].Name == "github.com/pgsync/pgsync" && slices.ContainsFunc(s.Packages, func(p Package) bool { return p.Name == "k8s.io/client-go" })
		},
	}
	for _, d := range im.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		check, ok := want[ref]
		if !ok {
			continue
		}
		img, err := idx.Image(d.Digest)
		must(t, err)
		t0 := time.Now()
		s, err := Describe(img, ref, "", "test")
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		t.Logf("%s: %d packages in %v", ref, len(s.Packages), time.Since(t0).Round(time.Millisecond))
		if !check(s) {
			t.Errorf("%s: unexpected SBOM (%d packages)", ref, len(s.Packages))
		}
	}
}
