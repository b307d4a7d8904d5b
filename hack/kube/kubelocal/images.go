package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Images of the local cluster, as pulled from the loopback registry
// (localhost:5000/<ref>), or pushed elsewhere by make images. PostgreSQL
// images come from exactly the Debian packages of hack/kube/debian.lock
// (hack/kube/rootfs.sh), packed reproducibly (writeTree); pgsync and pause
// are static Go binaries on an empty base. All are cached as one OCI
// layout under the image cache.
var postgresVersions = []string{"15.18", "15.20"}

const pgsyncRef = "pgsync:dev"

func buildImages(ctx context.Context, p paths) error {
	lp, err := openLayout(p.layoutDir())
	if err != nil {
		return err
	}
	lock, err := readLock(filepath.Join(p.repo, lockFile))
	if err != nil {
		return err
	}
	for _, v := range postgresVersions {
		ref := "postgresql:" + v
		if imageLabel(lp, ref, lockLabel) == lock.imageKey(v) {
			continue
		}
		if err := runScript(ctx, p, "rootfs.sh", v); err != nil {
			return err
		}
		t0 := time.Now()
		img, err := postgresImage(p, lock, v, filepath.Join(p.imagesDir(), "postgresql-"+v+".layer.tar.gz"))
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		err = putImage(lp, ref, img)
		_ = os.Remove(filepath.Join(p.imagesDir(), "postgresql-"+v+".layer.tar.gz"))
		if err != nil {
			return err
		}
		slog.Info("image built", "ref", registryHost+"/"+ref, "seconds", time.Since(t0).Seconds())
	}
	// pause: from hack/kube/pause, built once.
	if !hasRef(lp, "pause:3.10") {
		img, err := staticImage(ctx, p, "./hack/kube/pause", "/pause", "65535:65535")
		if err != nil {
			return fmt.Errorf("image pause:3.10: %w", err)
		}
		if err := putImage(lp, "pause:3.10", img); err != nil {
			return err
		}
	}
	// pgsync: rebuilt from the checkout each time; replaced when it changed.
	// A checkout that does not build keeps the previous image: the cluster
	// itself does not depend on it.
	img, err := staticImage(ctx, p, "./cmd/pgsync", "/pgsync", "65532:65532")
	if err != nil {
		slog.Warn("pgsync image not rebuilt", "err", err, "kept_previous", hasRef(lp, pgsyncRef))
		return nil
	}
	return putImage(lp, pgsyncRef, img)
}

// buildOne builds the image ref (postgresql:15.18, postgresql:15.20,
// pgsync:dev or pause:3.10) with the same functions as buildImages, from
// the cache's root file systems as they are (a tree not built from the
// current lock is refused, none is built), into a new OCI layout at dir,
// and returns its digest: `kubelocal image REF DIR`, what the
// reproducibility tests build twice.
func buildOne(ctx context.Context, p paths, ref, dir string) (v1.Hash, error) {
	var img v1.Image
	var err error
	switch ref {
	case pgsyncRef:
		img, err = staticImage(ctx, p, "./cmd/pgsync", "/pgsync", "65532:65532")
	case "pause:3.10":
		img, err = staticImage(ctx, p, "./hack/kube/pause", "/pause", "65535:65535")
	default:
		v, ok := strings.CutPrefix(ref, "postgresql:")
		if !ok || !slices.Contains(postgresVersions, v) {
			return v1.Hash{}, fmt.Errorf("unknown image %s (postgresql:%s, %s, pause:3.10)", ref, strings.Join(postgresVersions, ", postgresql:"), pgsyncRef)
		}
		var lock imageLock
		lock, err = readLock(filepath.Join(p.repo, lockFile))
		if err != nil {
			return v1.Hash{}, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return v1.Hash{}, err
		}
		layerFile := filepath.Join(dir, ".layer.tar.gz")
		defer os.Remove(layerFile)
		img, err = postgresImage(p, lock, v, layerFile)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image %s: %w", ref, err)
	}
	lp, err := openLayout(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := putImage(lp, ref, img); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// lockImages serialises the processes that write the image cache's
// layout (kube-up's build, kubelocal images, make images, the registry's
// start): one's pruning would delete the blobs another is writing. It
// returns the unlock.
func lockImages(p paths) (func(), error) {
	if err := os.MkdirAll(p.imagesDir(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(p.imagesDir(), ".layout.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the image layout: %w", err)
	}
	return func() { f.Close() }, nil
}

func openLayout(dir string) (layout.Path, error) {
	if lp, err := layout.FromPath(dir); err == nil {
		return lp, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("create image layout %s: %w", dir, err)
	}
	return lp, nil
}

func hasRef(lp layout.Path, ref string) bool {
	idx, err := lp.ImageIndex()
	if err != nil {
		return false
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return false
	}
	for _, d := range im.Manifests {
		if d.Annotations[refAnnotation] == ref {
			return true
		}
	}
	return false
}

// imageLabel is a label of the layout's image ref, "" when there is none.
func imageLabel(lp layout.Path, ref, label string) string {
	idx, err := lp.ImageIndex()
	if err != nil {
		return ""
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return ""
	}
	for _, d := range im.Manifests {
		if d.Annotations[refAnnotation] != ref {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return ""
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return ""
		}
		return cf.Config.Labels[label]
	}
	return ""
}

// putImage stores img under ref, replacing an older image of that ref,
// and removes the blobs no image uses any more.
func putImage(lp layout.Path, ref string, img v1.Image) error {
	changed, err := storeImage(lp, ref, img)
	if err != nil || !changed {
		return err
	}
	if err := removeUnreferencedBlobs(lp); err != nil {
		return fmt.Errorf("prune the blobs of %s: %w", lp, err)
	}
	return nil
}

// storeImage is putImage without the pruning: it reports whether ref
// changed.
func storeImage(lp layout.Path, ref string, img v1.Image) (bool, error) {
	dg, err := img.Digest()
	if err != nil {
		return false, fmt.Errorf("digest of image %s: %w", ref, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return false, fmt.Errorf("read the index of %s: %w", lp, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return false, fmt.Errorf("read the index of %s: %w", lp, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[refAnnotation] == ref && d.Digest == dg {
			return false, nil // unchanged
		}
	}
	opt := layout.WithAnnotations(map[string]string{refAnnotation: ref})
	if err := lp.ReplaceImage(img, match.Annotation(refAnnotation, ref), opt); err != nil {
		return false, fmt.Errorf("store image %s: %w", ref, err)
	}
	slog.Info("image stored", "ref", registryHost+"/"+ref, "digest", dg.String())
	return true, nil
}

// removeUnreferencedBlobs deletes blobs no image of the layout refers to
// (those of a replaced pgsync image).
func removeUnreferencedBlobs(lp layout.Path) error {
	idx, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	keep := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		keep[d.Digest] = true
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		keep[m.Config.Digest] = true
		for _, l := range m.Layers {
			keep[l.Digest] = true
		}
	}
	dir := filepath.Join(string(lp), "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[v1.Hash{Algorithm: "sha256", Hex: e.Name()}] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// postgresImage is the image of the root file system rootfs.sh built for
// version from the lock, its layer written to layerFile: reproducible (the
// same lock gives the same digest, writeTree), run as postgres (26:26),
// created at the lock's epoch. A tree built from another lock is refused.
func postgresImage(p paths, lock imageLock, version, layerFile string) (v1.Image, error) {
	rootfs := filepath.Join(p.imagesDir(), "rootfs", "postgresql-"+version)
	key := lock.key(version)
	if got, err := readyKey(rootfs); err != nil {
		return nil, err
	} else if got != key {
		return nil, fmt.Errorf("%s was built from another lock than %s (rebuild: hack/kube/rootfs.sh %s)", rootfs, lockFile, version)
	}
	epoch := time.Unix(lock.Epoch, 0).UTC()
	st, layer, err := writeLayer(rootfs, layerFile, epoch)
	if err != nil {
		return nil, err
	}
	slog.Info("layer packed", "dir", rootfs, "entries", st.Entries, "diffID", layer.diffID.String(), "setuid_setgid_stripped", strings.Join(st.Stripped, " "))
	pgVersion := lock.version(version, "postgresql-15")
	cfg := v1.Config{
		Env: []string{
			"PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"LANG=C.UTF-8",
			"PGDATA=/var/lib/postgresql/data/pgdata",
		},
		User:       "26:26",
		WorkingDir: "/var/lib/postgresql",
		Cmd:        []string{"postgres"},
		StopSignal: "SIGINT",
		Labels: map[string]string{
			"org.opencontainers.image.title":   "PostgreSQL",
			"org.opencontainers.image.version": version,
			"org.opencontainers.image.source":  "Debian bookworm postgresql-15 " + pgVersion,
			"org.opencontainers.image.created": epoch.Format(time.RFC3339),
			lockLabel:                          lock.imageKey(version),
		},
	}
	return assemble(layer, cfg, epoch)
}

// staticImage builds a static binary from the checkout into an image whose
// only file it is.
func staticImage(ctx context.Context, p paths, pkg, path, user string) (v1.Image, error) {
	tmp, err := os.MkdirTemp("", "kubelocal-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = p.repo
	// The same source gives the same binary whatever the caller's Go
	// settings: a static linux/amd64 baseline binary, no build flags of the
	// environment.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOFLAGS=", "GOEXPERIMENT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w: %s", pkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch, err := sourceEpoch(0)
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", pkg, err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", pkg, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer of %s: %w", pkg, err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", pkg, err)
	}
	return assemble(layer, v1.Config{Entrypoint: []string{path}, User: user, Env: []string{"PATH=/"}}, epoch)
}

func assemble(layer v1.Layer, cfg v1.Config, created time.Time) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("append the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config = cfg
	cf.Created = v1.Time{Time: created.UTC()}
	// No history: mutate's would carry the build's time.
	cf.History = nil
	return mutate.ConfigFile(img, cf)
}

// runScript runs hack/kube/<name> with args, its output on stderr.
func runScript(ctx context.Context, p paths, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.repo, "hack", "kube", name), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Dir = p.repo
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/kube/%s %v: %w", name, args, err)
	}
	return nil
}
