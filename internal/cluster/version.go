package cluster

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Supported PostgreSQL major versions.
const (
	MinMajor = 13
	MaxMajor = 19
)

// Version is the PostgreSQL version an image carries in its tag.
type Version struct {
	Major, Minor int
	// Known is false for an image pinned only by digest: there is no tag
	// to read a version from, so version checks are off.
	Known bool
	// MinorKnown is false for a major-only tag (16, 17-bullseye): the tag
	// follows the newest minor of its major, so Minor (0) orders nothing
	// and no minor downgrade is reported to or from it.
	MinorKnown bool
}

func (v Version) String() string {
	if !v.Known {
		return "unknown"
	}
	if !v.MinorKnown {
		return fmt.Sprintf("%d", v.Major)
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// Image is a parsed container image reference.
type Image struct {
	// Repository is everything before the tag and digest.
	Repository string
	Tag        string
	Digest     string
}

// ParseImage splits REPOSITORY[:TAG][@DIGEST]. A colon belongs to the tag
// only when it comes after the last slash (registry.local:5000/pg has none).
func ParseImage(ref string) (Image, error) {
	var img Image
	rest := ref
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		img.Digest = rest[at+1:]
		rest = rest[:at]
		if err := CheckDigest(img.Digest); err != nil {
			return Image{}, err
		}
	}
	if colon := strings.LastIndexByte(rest, ':'); colon > strings.LastIndexByte(rest, '/') {
		img.Tag = rest[colon+1:]
		rest = rest[:colon]
	}
	img.Repository = rest
	if img.Repository == "" || strings.ContainsAny(img.Repository, " \t") {
		return Image{}, fmt.Errorf("invalid image reference %q", ref)
	}
	if img.Tag == "" && img.Digest == "" {
		return Image{}, fmt.Errorf("image %q has neither a tag nor a digest; write the PostgreSQL version as its tag (e.g. %s:16.4)", ref, ref)
	}
	return img, nil
}

// digestHexLength is the length of the lower-case hex encoding of each
// digest algorithm the OCI image specification registers and registries and
// containerd accept.
var digestHexLength = map[string]int{"sha256": 64, "sha512": 128}

// CheckDigest checks ALGORITHM:HEX as an image digest: sha256 with 64 or
// sha512 with 128 lower-case hexadecimal digits. Anything else cannot name
// an image (a registry refuses it, or it names an image nobody can verify),
// so it is refused before it reaches a pod spec.
func CheckDigest(d string) error {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || algo == "" || hex == "" {
		return fmt.Errorf("invalid digest %q (expected ALGORITHM:HEX, e.g. sha256: and 64 hexadecimal digits)", d)
	}
	want, known := digestHexLength[algo]
	if !known {
		return fmt.Errorf("invalid digest %q: unsupported algorithm %q (sha256 or sha512)", d, algo)
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("invalid digest %q: %q is not a lower-case hexadecimal digit (%s digests are %d of 0-9a-f)", d, c, algo, want)
		}
	}
	if len(hex) != want {
		return fmt.Errorf("invalid digest %q: %s digests have %d hexadecimal digits, this one has %d", d, algo, want, len(hex))
	}
	return nil
}

// versionTag reads MAJOR[.MINOR] from the start of a tag, allowing the
// suffixes image builders add. CloudNativePG's tags (postgres-containers)
// are MAJOR, MAJOR.MINOR, and either followed by -FLAVOUR-DISTRO
// (17.6-system-trixie, 18.1-minimal-bookworm, 16-standard-bookworm) or by
// an immutable build stamp (17.2-202411251, 18.3-202605110912-minimal-trixie);
// older ones 16.4-30-bookworm; Docker's postgres 17-bullseye, 15.18.
// Betas and release candidates (17beta2, 19rc1) do not match: pgsync's
// parameter tables are for released versions (19's, taken from 19rc1, are
// the exception docs/parameters.md records).
var versionTag = regexp.MustCompile(`^(\d+)(?:\.(\d+))?(?:[-_+.].*)?$`)

// ParseVersion returns the PostgreSQL version of an image reference.
func ParseVersion(ref string) (Version, error) {
	img, err := ParseImage(ref)
	if err != nil {
		return Version{}, err
	}
	if img.Tag == "" {
		return Version{}, nil // digest only: unknown, not an error
	}
	m := versionTag.FindStringSubmatch(img.Tag)
	if m == nil {
		return Version{}, fmt.Errorf("cannot read a PostgreSQL version from tag %q; use a tag that starts with MAJOR.MINOR (e.g. 16.4) or pin the image by digest", img.Tag)
	}
	major, _ := strconv.Atoi(m[1])
	minor, minorKnown := 0, m[2] != ""
	if minorKnown {
		minor, _ = strconv.Atoi(m[2])
	}
	if major < MinMajor || major > MaxMajor {
		return Version{}, fmt.Errorf("PostgreSQL %d (tag %q) is not supported; supported major versions are %d to %d", major, img.Tag, MinMajor, MaxMajor)
	}
	return Version{Major: major, Minor: minor, Known: true, MinorKnown: minorKnown}, nil
}
