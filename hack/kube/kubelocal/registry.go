package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry serves an OCI registry on 127.0.0.1:5000 (go-containerregistry's
// implementation) whose blobs are the files of the image cache's OCI layout,
// and pushes every image of the layout into it under its ref name: the
// blobs are already there, so only the manifests travel. containerd pulls
// localhost:5000/NAME:TAG from it like from any registry.
func startRegistry(ctx context.Context, p paths) (stop func(), err error) {
	ln, err := net.Listen("tcp", registryAddr)
	if err != nil {
		return nil, fmt.Errorf("registry: listen on %s: %w", registryAddr, err)
	}
	srv := &http.Server{Handler: registryHandler(p), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("registry stopped", "err", err)
		}
	}()
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	unlock, err := lockImages(p)
	if err != nil {
		stop()
		return nil, err
	}
	defer unlock()
	if err := pushLayout(ctx, p); err != nil {
		stop()
		return nil, err
	}
	// Nothing in the cluster checks signatures yet (no image policy): a
	// failure leaves the images unsigned, said loudly, rather than the
	// cluster down. `kubelocal images` fails on it.
	if err := attachTrust(ctx, p, registryAddr); err != nil {
		slog.Error("registry: images NOT signed, SBOMs not attached", "err", err)
	}
	return stop, nil
}

// registryHandler is the registry whose blobs are the layout's files.
func registryHandler(p paths) http.Handler {
	return registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(filepath.Join(p.layoutDir(), "blobs"))),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
}

const refAnnotation = "org.opencontainers.image.ref.name"

func pushLayout(ctx context.Context, p paths) error { return pushLayoutTo(ctx, p, registryAddr) }

// pushLayoutTo pushes every named image of the layout to the registry at
// addr.
func pushLayoutTo(ctx context.Context, p paths, addr string) error {
	lp, err := layout.FromPath(p.layoutDir())
	if err != nil {
		return fmt.Errorf("registry: open image layout (run `kubelocal images`): %w", err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return fmt.Errorf("registry: read the image layout's index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("registry: read the image layout's index: %w", err)
	}
	for _, d := range im.Manifests {
		ref := d.Annotations[refAnnotation]
		if ref == "" {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("registry: image %s: %w", ref, err)
		}
		tag, err := name.ParseReference(addr+"/"+ref, name.Insecure)
		if err != nil {
			return fmt.Errorf("registry: reference %s: %w", ref, err)
		}
		t0 := time.Now()
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("registry: push %s: %w", ref, err)
		}
		slog.Info("registry: image available", "ref", registryHost+"/"+ref, "digest", d.Digest.String(), "seconds", time.Since(t0).Seconds())
	}
	return nil
}
