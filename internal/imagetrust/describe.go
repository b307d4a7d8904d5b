package imagetrust

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// dpkgStatus is where dpkg records what is installed.
const dpkgStatus = "var/lib/dpkg/status"

// maxBinary bounds the entrypoint binary read for its Go build information.
const maxBinary = 512 << 20

// Describe reads what an image contains from its own file system (its
// layers flattened, whiteouts applied): the Debian packages of its dpkg
// status, and the Go modules of its entrypoint when that is a Go binary.
// An image with neither is an error: its SBOM would list nothing. name
// and version name the image in the SBOM; the document's creation time is
// the image's.
func Describe(img v1.Image, name, version, tool string) (SBOM, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return SBOM{}, fmt.Errorf("describe %s: config: %w", name, err)
	}
	var entry string
	if ep := cf.Config.Entrypoint; len(ep) > 0 {
		entry = strings.TrimPrefix(path.Clean(ep[0]), "/")
	}
	s := SBOM{Name: name, Version: version, Created: cf.Created.Time, Tool: tool}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var foundStatus, foundEntry bool
	// Extract yields each path once, from the top layer down: the first
	// one seen is the one in the image, so reading can stop once both are
	// found (an image is mostly larger than its dpkg status).
	for !(foundStatus && (foundEntry || entry == "")) {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return SBOM{}, fmt.Errorf("describe %s: read the file system: %w", name, err)
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case p == dpkgStatus && h.Typeflag == tar.TypeReg:
			b, err := io.ReadAll(io.LimitReader(tr, maxPayload))
			if err != nil {
				return SBOM{}, fmt.Errorf("describe %s: %s: %w", name, dpkgStatus, err)
			}
			pkgs, err := DebianPackages(b)
			if err != nil {
				return SBOM{}, fmt.Errorf("describe %s: %w", name, err)
			}
			s.Packages = append(s.Packages, pkgs...)
			s.Distro = debianDistro(pkgs)
			foundStatus = true
		case entry != "" && p == entry && h.Typeflag == tar.TypeReg:
			mods, err := goModulesOfReader(tr, h.Size)
			if err != nil {
				return SBOM{}, fmt.Errorf("describe %s: entrypoint /%s: %w", name, entry, err)
			}
			s.Packages = append(s.Packages, mods...)
			foundEntry = true
		}
	}
	if !foundStatus && !foundEntry {
		return SBOM{}, fmt.Errorf("describe %s: neither a dpkg status (/%s) nor a Go entrypoint: nothing to list", name, dpkgStatus)
	}
	if s.Created.IsZero() {
		s.Created = time.Unix(0, 0)
	}
	return s, nil
}

// goModulesOfReader reads a binary to a temporary file (debug/buildinfo
// needs random access) and returns its Go modules.
func goModulesOfReader(r io.Reader, size int64) ([]Package, error) {
	if size > maxBinary {
		return nil, fmt.Errorf("%d bytes: larger than the %d read", size, maxBinary)
	}
	f, err := os.CreateTemp("", "imagetrust-bin-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return GoModulesOfFile(f.Name())
}

// debianDistro is the purl distro qualifier (debian-12) read from
// base-files' version (12.4+deb12u15), empty when it is not there.
func debianDistro(pkgs []Package) string {
	for _, p := range pkgs {
		if p.Name == "base-files" {
			major, _, _ := strings.Cut(p.Version, ".")
			if major != "" && strings.Trim(major, "0123456789") == "" {
				return "debian-" + major
			}
		}
	}
	return ""
}
