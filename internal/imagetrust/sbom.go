package imagetrust

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Package is one component an image contains.
type Package struct {
	// Kind is "deb" (a Debian package) or "golang" (a Go module).
	Kind    string
	Name    string
	Version string
	// Arch is the Debian architecture (amd64, all); empty for Go modules.
	Arch string
	// Source is the Debian source package when it differs from Name.
	Source string
	// Sum is the Go module's go.sum hash (h1:…); empty for Debian.
	Sum string
}

// PURL is the package URL (purl spec) naming the package.
func (p Package) PURL(distro string) string {
	switch p.Kind {
	case "deb":
		q := "arch=" + purlEscape(p.Arch)
		if distro != "" {
			q += "&distro=" + purlEscape(distro)
		}
		return "pkg:deb/debian/" + purlEscape(p.Name) + "@" + purlEscape(p.Version) + "?" + q
	default:
		// The module path keeps its slashes as purl namespace segments.
		segs := strings.Split(p.Name, "/")
		for i, s := range segs {
			segs[i] = purlEscape(s)
		}
		return "pkg:golang/" + strings.Join(segs, "/") + "@" + purlEscape(p.Version)
	}
}

// purlEscape percent-encodes everything but unreserved characters (a
// Debian version's '+' and ':' included, as the purl spec asks).
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// DebianPackages reads a dpkg status file (/var/lib/dpkg/status of a root
// file system) and returns the installed packages, sorted by name.
func DebianPackages(status []byte) ([]Package, error) {
	var out []Package
	sc := bufio.NewScanner(bytes.NewReader(status))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	fields := map[string]string{}
	line := 0
	flush := func() error {
		defer clear(fields)
		if len(fields) == 0 {
			return nil
		}
		name, version, st := fields["Package"], fields["Version"], fields["Status"]
		if name == "" {
			return fmt.Errorf("dpkg status: a stanza ending at line %d has no Package field", line)
		}
		// Only what is installed is in the image: "install ok installed",
		// not config-files or half-installed leftovers.
		if !strings.HasSuffix(st, " installed") {
			return nil
		}
		if version == "" {
			return fmt.Errorf("dpkg status: package %s (a stanza ending at line %d) has no Version", name, line)
		}
		p := Package{Kind: "deb", Name: name, Version: version, Arch: fields["Architecture"]}
		if src := fields["Source"]; src != "" {
			// "Source: name (version)" when the source version differs.
			p.Source, _, _ = strings.Cut(src, " ")
			if p.Source == name {
				p.Source = ""
			}
		}
		out = append(out, p)
		return nil
	}
	key := ""
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case strings.TrimSpace(l) == "":
			if err := flush(); err != nil {
				return nil, err
			}
			key = ""
		case l[0] == ' ' || l[0] == '\t':
			// continuation of a multi-line field (Description, Conffiles)
			if key == "" {
				return nil, fmt.Errorf("dpkg status: line %d continues no field", line)
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return nil, fmt.Errorf("dpkg status: line %d is not FIELD: VALUE: %q", line, l)
			}
			key = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Package) int { return strings.Compare(a.Name+" "+a.Arch, b.Name+" "+b.Arch) })
	return out, nil
}

// GoModulesOfFile returns the Go modules of the binary at path (what `go
// version -m` prints).
func GoModulesOfFile(path string) ([]Package, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("Go build information of %s: %w", path, err)
	}
	return GoModules(bi), nil
}

// GoModules returns the main module and every dependency module a Go
// binary was built from (replacements resolved), from its build
// information (debug.ReadBuildInfo, or buildinfo.ReadFile on a file).
func GoModules(bi *debug.BuildInfo) []Package {
	out := []Package{{Kind: "golang", Name: bi.Main.Path, Version: goVersionOrDevel(bi.Main.Version), Sum: bi.Main.Sum}}
	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		out = append(out, Package{Kind: "golang", Name: m.Path, Version: goVersionOrDevel(m.Version), Sum: m.Sum})
	}
	// The toolchain is a component too: its standard library is compiled in.
	out = append(out, Package{Kind: "golang", Name: "stdlib", Version: bi.GoVersion})
	slices.SortFunc(out[1:], func(a, b Package) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func goVersionOrDevel(v string) string {
	if v == "" {
		return "(devel)"
	}
	return v
}

// SBOM describes what an image contains.
type SBOM struct {
	// Name is the image's name (e.g. postgresql:15.18), Version its
	// version.
	Name, Version string
	// Distro is the purl distro qualifier of Debian packages (debian-12).
	Distro string
	// Created is the document's creation time: the image's own (fixed)
	// creation time, so the same image gives the same document.
	Created  time.Time
	Packages []Package
	// Tool names the program that wrote the document (Tool: NAME-VERSION).
	Tool string
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// Document returns the SBOM as an SPDX 2.3 document: one package for the
// image, which DESCRIBES it, CONTAINS every component. Identifiers and the
// namespace derive from the content, so it is reproducible.
func (s SBOM) Document() *spdx.Document {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", s.Name, s.Version)
	for _, p := range s.Packages {
		fmt.Fprintf(h, "%s %s %s %s\n", p.Kind, p.Name, p.Version, p.Arch)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	root := common.ElementID("Image-" + spdxIDUnsafe.ReplaceAllString(s.Name, "-"))
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      s.Name,
		DocumentNamespace: "https://pgsync.io/spdx/" + spdxIDUnsafe.ReplaceAllString(s.Name, "-") + "-" + sum,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: s.Tool}},
			Created:  s.Created.UTC().Format(time.RFC3339),
		},
	}
	doc.Packages = append(doc.Packages, &spdx.Package{
		PackageName:             s.Name,
		PackageSPDXIdentifier:   root,
		PackageVersion:          s.Version,
		PackageDownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose:   "CONTAINER",
	})
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(root)), Relationship: "DESCRIBES",
	})
	seen := map[common.ElementID]bool{}
	for _, p := range s.Packages {
		id := common.ElementID(spdxIDUnsafe.ReplaceAllString(p.Kind+"-"+p.Name+"-"+p.Arch+"-"+p.Version, "-"))
		if seen[id] {
			continue
		}
		seen[id] = true
		sp := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: "NOASSERTION",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
			PackageExternalReferences: []*spdx.PackageExternalReference{
				{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL(s.Distro)},
			},
		}
		switch p.Kind {
		case "deb":
			sp.PackageSupplier = &common.Supplier{SupplierType: "Organization", Supplier: "Debian"}
			sp.PrimaryPackagePurpose = "LIBRARY"
			if p.Source != "" {
				sp.PackageSourceInfo = "built from the Debian source package " + p.Source
			}
		case "golang":
			sp.PrimaryPackagePurpose = "LIBRARY"
			if p.Sum != "" {
				sp.PackageComment = "go.sum " + p.Sum
			}
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(root)), RefB: common.MakeDocElementID("", string(id)), Relationship: "CONTAINS",
		})
	}
	return doc
}
