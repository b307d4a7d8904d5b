package cluster

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kinds of image catalog, in CloudNativePG's shape. pgsync reads them as
// files of the desired-state repository, like Clusters: nothing is
// registered with the API server.
const (
	KindImageCatalog        = "ImageCatalog"
	KindClusterImageCatalog = "ClusterImageCatalog"
)

// ImageCatalog is an ImageCatalog (namespaced: only Clusters of its
// namespace use it) or a ClusterImageCatalog (no namespace: any Cluster
// may use it) document.
type ImageCatalog struct {
	APIVersion string              `json:"apiVersion"`
	Kind       string              `json:"kind"`
	Metadata   Metadata            `json:"metadata"`
	Spec       ImageCatalogSpec    `json:"spec"`
	Source     Position            `json:"-"`
	Positions  map[string]Position `json:"-"`
}

// ImageCatalogSpec lists one image per PostgreSQL major version.
type ImageCatalogSpec struct {
	Images []CatalogImage `json:"images"`
}

// CatalogImage is the image of one major version.
type CatalogImage struct {
	Major int    `json:"major"`
	Image string `json:"image"`
}

// ImageCatalogRef is a Cluster's spec.imageCatalogRef: the catalog, and the
// major version whose image the cluster runs.
type ImageCatalogRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Major    int    `json:"major"`
}

// Pos returns where field is written, or where its nearest written parent
// is (a missing field points at its parent's line), as Cluster.Pos.
func (c *ImageCatalog) Pos(field string) Position {
	return (&Cluster{Source: c.Source, Positions: c.Positions}).Pos(field)
}

// catalogKey identifies a catalog: Namespace is empty for a
// ClusterImageCatalog.
type catalogKey struct{ Kind, Namespace, Name string }

func (k catalogKey) String() string {
	if k.Kind == KindClusterImageCatalog {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

func isCatalogKind(kind string) bool {
	return kind == KindImageCatalog || kind == KindClusterImageCatalog
}

// decodeCatalog decodes an ImageCatalog or ClusterImageCatalog document of
// a known API group, strictly and with positions as a Cluster is, and
// checks it: a name, at least one image, each major once and supported,
// each image a valid reference whose tag (when it has a version) is of
// that major.
func decodeCatalog(file string, root *yaml.Node) (*ImageCatalog, []Diagnostic) {
	d := &decoder{file: file, positions: map[string]Position{}}
	group, version, _ := strings.Cut(scalarField(root, "apiVersion"), "/")
	if version != "v1" {
		d.errorf(valueOf(root, "apiVersion"), "apiVersion", "unsupported version %q of %s (allowed: v1)", version, group)
	}
	c := &ImageCatalog{Source: Position{File: file, Line: root.Line, Column: root.Column}}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	c.Positions = d.positions
	bad := func(field, format string, args ...any) {
		d.problems = append(d.problems, Diagnostic{Pos: c.Pos(field), Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch name := c.Metadata.Name; {
	case name == "":
		bad("metadata.name", "required")
	case !dns1123Subdomain(name):
		bad("metadata.name", "%q is not a valid name: lower-case letters, digits, '-' and '.'", name)
	}
	switch ns := c.Metadata.Namespace; {
	case c.Kind == KindClusterImageCatalog && ns != "":
		bad("metadata.namespace", "a ClusterImageCatalog has no namespace (any Cluster may use it); use an ImageCatalog for one namespace's Clusters")
	case ns != "" && (len(ns) > 63 || !dns1123Label.MatchString(ns)):
		bad("metadata.namespace", "%q is not a valid namespace: lower-case letters, digits and '-', at most 63 characters", ns)
	}
	if len(c.Spec.Images) == 0 {
		bad("spec.images", "required: at least one {major, image}")
	}
	first := map[int]string{}
	for i, img := range c.Spec.Images {
		field := fmt.Sprintf("spec.images[%d]", i)
		supported := img.Major >= MinMajor && img.Major <= MaxMajor
		if !supported {
			bad(field+".major", "PostgreSQL %d is not supported; supported major versions are %d to %d", img.Major, MinMajor, MaxMajor)
		} else if at, dup := first[img.Major]; dup {
			bad(field+".major", "major %d is listed twice: here and at %s", img.Major, c.Pos(at+".major"))
		} else {
			first[img.Major] = field
		}
		if img.Image == "" {
			bad(field+".image", "required: the image of PostgreSQL %d", img.Major)
		} else if !supported {
			// the entry's major is reported; its image would say it again
		} else if v, err := ParseVersion(img.Image); err != nil {
			bad(field+".image", "%v", err)
		} else if v.Known && v.Major != img.Major {
			bad(field+".image", "the tag says PostgreSQL %d, the entry is for major %d", v.Major, img.Major)
		}
	}
	return c, d.problems
}

// catalogIndex holds the valid catalogs of a repository by key, and the
// keys of those that failed, so a Cluster referring to one is told so
// instead of "not found".
type catalogIndex struct {
	valid   map[catalogKey]*ImageCatalog
	invalid map[catalogKey]Position
}

// indexCatalogs indexes the decoded catalogs; a catalog defined twice is a
// problem at its second definition.
func indexCatalogs(catalogs []*ImageCatalog, invalid []*ImageCatalog) (catalogIndex, []Diagnostic) {
	idx := catalogIndex{valid: map[catalogKey]*ImageCatalog{}, invalid: map[catalogKey]Position{}}
	for _, c := range invalid {
		idx.invalid[keyOfCatalog(c)] = c.Source
	}
	var problems []Diagnostic
	for _, c := range catalogs {
		k := keyOfCatalog(c)
		if first, dup := idx.valid[k]; dup {
			problems = append(problems, Diagnostic{Pos: c.Pos("metadata.name"), Field: "metadata.name",
				Message: fmt.Sprintf("%s is defined twice: here and at %s", k, first.Pos("metadata.name"))})
			continue
		}
		idx.valid[k] = c
	}
	return idx, problems
}

func keyOfCatalog(c *ImageCatalog) catalogKey {
	k := catalogKey{Kind: c.Kind, Name: c.Metadata.Name}
	if c.Kind == KindImageCatalog {
		k.Namespace = c.Metadata.Namespace
		if k.Namespace == "" {
			k.Namespace = DefaultNamespace
		}
	}
	return k
}

// resolveImage sets a defaulted cluster's Spec.ImageName when the file does
// not write it: from its imageCatalogRef, or the default image. It returns
// the problems of the reference, each at its field.
func resolveImage(c *Cluster, idx catalogIndex, defaultImage string) []Diagnostic {
	var problems []Diagnostic
	bad := func(field, format string, args ...any) {
		problems = append(problems, Diagnostic{Pos: c.Pos(field), Field: field, Message: fmt.Sprintf(format, args...)})
	}
	s := &c.Spec
	ref := s.ImageCatalogRef
	switch {
	case ref != nil && s.ImageName != "":
		bad("spec.imageCatalogRef", "imageName and imageCatalogRef are both set; write one: the image itself, or the catalog and major to take it from")
		return problems
	case ref == nil && s.ImageName == "":
		if defaultImage == "" {
			defaultImage = DefaultImageName
		}
		if _, err := ParseVersion(defaultImage); err != nil {
			bad("spec.imageName", "not written, and the default image %s cannot be used: %v", defaultImage, err)
			return problems
		}
		s.ImageName = defaultImage
		c.ImageFrom = "pgsync's default image"
		return nil
	case ref == nil:
		return nil
	}
	if ref.APIGroup != "" && !apiGroups[ref.APIGroup] {
		bad("spec.imageCatalogRef.apiGroup", "invalid value %q (allowed: %s)", ref.APIGroup, strings.Join(sortedKeys(apiGroups), ", "))
	}
	if !isCatalogKind(ref.Kind) {
		bad("spec.imageCatalogRef.kind", "invalid value %q (allowed: %s, %s)", ref.Kind, KindClusterImageCatalog, KindImageCatalog)
	}
	if ref.Name == "" {
		bad("spec.imageCatalogRef.name", "required: the name of the catalog")
	}
	if _, written := c.Positions["spec.imageCatalogRef.major"]; !written {
		bad("spec.imageCatalogRef.major", "required: the PostgreSQL major version whose image the cluster runs")
	}
	if len(problems) > 0 {
		return problems
	}
	k := catalogKey{Kind: ref.Kind, Name: ref.Name}
	if ref.Kind == KindImageCatalog {
		k.Namespace = c.Metadata.Namespace
	}
	cat, ok := idx.valid[k]
	if !ok {
		if at, broken := idx.invalid[k]; broken {
			bad("spec.imageCatalogRef.name", "%s (at %s) is invalid; see its errors", k, at)
		} else {
			bad("spec.imageCatalogRef.name", "%s not found in the repository%s", k, catalogHint(k, idx))
		}
		return problems
	}
	for _, img := range cat.Spec.Images {
		if img.Major == ref.Major {
			s.ImageName = img.Image
			c.ImageFrom = fmt.Sprintf("%s, major %d", k, ref.Major)
			return nil
		}
	}
	majors := make([]string, 0, len(cat.Spec.Images))
	for _, img := range cat.Spec.Images {
		majors = append(majors, itoa(img.Major))
	}
	bad("spec.imageCatalogRef.major", "%s (at %s) has no image for major %d (it has: %s)", k, cat.Source, ref.Major, strings.Join(majors, ", "))
	return problems
}

// catalogHint points at a catalog of the same name that the reference
// cannot use: another namespace's ImageCatalog, or the other kind.
func catalogHint(k catalogKey, idx catalogIndex) string {
	var near []string
	for other := range idx.valid {
		if other.Name == k.Name && other != k {
			near = append(near, other.String())
		}
	}
	if len(near) == 0 {
		return ""
	}
	sort.Strings(near)
	if k.Kind == KindImageCatalog {
		return fmt.Sprintf(" (an ImageCatalog serves the Clusters of its own namespace, %s; found: %s)", k.Namespace, strings.Join(near, ", "))
	}
	return " (found: " + strings.Join(near, ", ") + ")"
}
