package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
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
// (localhost:5000/<ref>). PostgreSQL images come from Debian packages
// (hack/kube/rootfs.sh); pgsync and pause are static Go binaries on an empty
// base. All are cached as one OCI layout under the image cache.
var postgresVersions = []string{"15.18", "15.20"}

const pgsyncRef = "pgsync:dev"

func buildImages(ctx context.Context, p paths) error {
	lp, err := openLayout(p.layoutDir())
	if err != nil {
		return err
	}
	for _, v := range postgresVersions {
		ref := "postgresql:" + v
		if hasRef(lp, ref) {
			continue
		}
		if err := runScript(ctx, p, "rootfs.sh", v); err != nil {
			return err
		}
		t0 := time.Now()
		img, err := postgresImage(ctx, p, v)
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

func postgresImage(ctx context.Context, p paths, version string) (v1.Image, error) {
	rootfs := filepath.Join(p.imagesDir(), "rootfs", "postgresql-"+version)
	layerFile := filepath.Join(p.imagesDir(), "postgresql-"+version+".layer.tar.gz")
	if err := tarDirectory(ctx, rootfs, layerFile); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(layerFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer from %s: %w", layerFile, err)
	}
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
			"org.opencontainers.image.source":  "Debian bookworm postgresql-15 " + version + "-0+deb12u1",
		},
	}
	return assemble(layer, cfg)
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
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w: %s", pkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
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
	return assemble(layer, v1.Config{Entrypoint: []string{path}, User: user, Env: []string{"PATH=/"}})
}

func assemble(layer v1.Layer, cfg v1.Config) (v1.Image, error) {
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
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	return mutate.ConfigFile(img, cf)
}

// tarDirectory writes dir as a gzipped layer tarball (numeric owners, no
// device nodes, no build markers) to dst.
func tarDirectory(ctx context.Context, dir, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	cmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "--one-file-system", "-C", dir,
		"--exclude=./.ready", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
		"-cf", "-", ".")
	h := sha256.New()
	cmd.Stdout = io.MultiWriter(zw, h)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tar %s: %w: %s", dir, err, stderr.String())
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	slog.Info("layer packed", "dir", dir, "diffID", "sha256:"+hex.EncodeToString(h.Sum(nil)))
	return out.Close()
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
