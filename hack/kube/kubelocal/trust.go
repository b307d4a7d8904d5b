package main

import (
	"archive/tar"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The local images are signed, and their SBOMs attached as signed SPDX
// attestations, by `pgsync image sign` and `pgsync image attest` — the
// pgsync binary of the pgsync:dev image, so this program stays free of
// pgsync's packages — with a key of the image cache made on first use.
// The key proves an image came from this machine's build, no more
// (docs/supply-chain.md).
func (p paths) signingKey() string    { return filepath.Join(p.imagesDir(), "signing", "cosign.key") }
func (p paths) signingPubKey() string { return filepath.Join(p.imagesDir(), "signing", "cosign.pub") }
func (p paths) sbomDir() string       { return filepath.Join(p.imagesDir(), "sbom") }
func (p paths) signerBin() string     { return filepath.Join(p.imagesDir(), "bin", "pgsync") }

// ensureSigningKey makes the ECDSA P-256 key pair the first time: an
// unencrypted PKCS#8 private key (readable by root only) and its PKIX
// public key, both PEM, as cosign reads them.
func ensureSigningKey(p paths) error {
	if _, err := os.Stat(p.signingKey()); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.signingKey()), 0o700); err != nil {
		return err
	}
	// The public key first: a private key file always has its public half.
	if err := writeFileAtomic(p.signingPubKey(), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return err
	}
	if err := writeFileAtomic(p.signingKey(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	slog.Info("image signing key created", "public_key", p.signingPubKey())
	return nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// extractSigner writes the /pgsync binary of the layout's pgsync:dev
// image to signerBin.
func extractSigner(p paths, idx v1.ImageIndex, dg v1.Hash) error {
	img, err := idx.Image(dg)
	if err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("no /pgsync in %s", pgsyncRef)
		}
		if err != nil {
			return err
		}
		if strings.TrimPrefix(h.Name, "/") != "pgsync" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p.signerBin()), 0o755); err != nil {
			return err
		}
		tmp := p.signerBin() + ".tmp"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return os.Rename(tmp, p.signerBin())
	}
}

// suffixTag matches the tags cosign keeps an image's signatures and
// attestations under.
var suffixTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(sig|att)$`)

// attachTrust signs every image of the layout in the registry at addr
// (after pushLayoutTo) and attaches its SBOM, then keeps the signature and
// attestation images in the layout under their tags (REPO:sha256-HEX.sig,
// .att), so later starts push them with the rest and sign nothing again;
// those of images no longer in the layout (a replaced pgsync:dev) are
// dropped. Signatures and SBOMs name the images as pods pull them
// (localhost:5000/NAME). An SBOM is computed once per image digest and
// kept under images/sbom/.
func attachTrust(ctx context.Context, p paths, addr string) error {
	t0 := time.Now()
	if err := ensureSigningKey(p); err != nil {
		return fmt.Errorf("image signing key: %w", err)
	}
	lp, err := layout.FromPath(p.layoutDir())
	if err != nil {
		return err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	type image struct {
		ref, repo, tag string
		dg             v1.Hash
	}
	var images []image
	current := map[string]bool{} // REPO:sha256-HEX of every image
	kept := map[string]bool{}    // suffix refs in the layout
	for _, d := range im.Manifests {
		ref := d.Annotations[refAnnotation]
		repo, tag, _ := strings.Cut(ref, ":")
		switch {
		case ref == "":
		case suffixTag.MatchString(tag):
			kept[ref] = true
		default:
			images = append(images, image{ref, repo, tag, d.Digest})
			current[repo+":"+d.Digest.Algorithm+"-"+d.Digest.Hex] = true
		}
	}
	signed := 0
	for _, img := range images {
		base := img.repo + ":" + img.dg.Algorithm + "-" + img.dg.Hex
		if kept[base+".sig"] && kept[base+".att"] {
			continue
		}
		if img.ref == pgsyncRef || !fileExists(p.signerBin()) {
			i := slices.IndexFunc(images, func(i image) bool { return i.ref == pgsyncRef })
			if i < 0 {
				return fmt.Errorf("no %s image to sign with", pgsyncRef)
			}
			if err := extractSigner(p, idx, images[i].dg); err != nil {
				return fmt.Errorf("the pgsync binary of %s: %w", pgsyncRef, err)
			}
		}
		at := addr + "/" + img.repo + "@" + img.dg.String()
		sbom := filepath.Join(p.sbomDir(), img.dg.Algorithm+"-"+img.dg.Hex+".spdx.json")
		if !fileExists(sbom) {
			if err := os.MkdirAll(p.sbomDir(), 0o755); err != nil {
				return err
			}
			if err := pgsyncImage(ctx, p, "sbom", "--version", img.tag, "-o", sbom+".tmp", at); err != nil {
				return fmt.Errorf("SBOM of %s: %w", img.ref, err)
			}
			if err := os.Rename(sbom+".tmp", sbom); err != nil {
				return err
			}
		}
		if err := pgsyncImage(ctx, p, "attest", "--key", p.signingKey(), "--sbom", sbom, "--identity", registryHost+"/"+img.ref, at); err != nil {
			return fmt.Errorf("attach the SBOM of %s: %w", img.ref, err)
		}
		if err := pgsyncImage(ctx, p, "sign", "--key", p.signingKey(), "--identity", registryHost+"/"+img.repo, at); err != nil {
			return fmt.Errorf("sign %s: %w", img.ref, err)
		}
		for _, suffix := range []string{".sig", ".att"} {
			tag, err := name.NewTag(addr+"/"+base+suffix, name.Insecure)
			if err != nil {
				return err
			}
			s, err := remote.Image(tag, remote.WithContext(ctx))
			if err != nil {
				return fmt.Errorf("read back %s: %w", tag, err)
			}
			// Stored without pruning: the blobs of the images not kept
			// yet are in the same directory, unreferenced until then.
			if _, err := storeImage(lp, base+suffix, s); err != nil {
				return err
			}
		}
		signed++
	}
	// Signatures of images gone from the layout go too.
	var stale []string
	for ref := range kept {
		if !current[strings.TrimSuffix(strings.TrimSuffix(ref, ".sig"), ".att")] {
			stale = append(stale, ref)
		}
	}
	if len(stale) > 0 {
		if err := lp.RemoveDescriptors(func(d v1.Descriptor) bool { return slices.Contains(stale, d.Annotations[refAnnotation]) }); err != nil {
			return fmt.Errorf("drop the signatures of replaced images: %w", err)
		}
	}
	if signed > 0 || len(stale) > 0 {
		if err := removeUnreferencedBlobs(lp); err != nil {
			return fmt.Errorf("prune the blobs of %s: %w", lp, err)
		}
	}
	slog.Info("registry: images signed, SBOMs attached", "images", len(images), "signed_now", signed, "dropped", len(stale), "public_key", p.signingPubKey(), "seconds", time.Since(t0).Seconds())
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// pgsyncImage runs `pgsync image SUB ARGS` with the signer binary.
func pgsyncImage(ctx context.Context, p paths, sub string, args ...string) error {
	cmd := exec.CommandContext(ctx, p.signerBin(), append([]string{"image", sub}, args...)...)
	// The key is unencrypted: no password.
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgsync image %s %s: %w: %s", sub, strings.Join(args, " "), err, out)
	}
	return nil
}
