package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const catalogCluster = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
  namespace: shop
spec:
  instances: 2
  imageCatalogRef:
    apiGroup: postgresql.cnpg.io
    kind: KIND
    name: postgresql
    major: 16
  storage:
    size: 1Gi
`

const namespacedCatalog = `apiVersion: postgresql.cnpg.io/v1
kind: ImageCatalog
metadata:
  name: postgresql
  namespace: shop
spec:
  images:
    - major: 15
      image: ghcr.io/cloudnative-pg/postgresql:15.14-minimal-trixie
    - major: 16
      image: ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie
`

const clusterCatalog = `apiVersion: postgresql.cnpg.io/v1
kind: ClusterImageCatalog
metadata:
  name: postgresql
spec:
  images:
    - major: 16
      image: ghcr.io/cloudnative-pg/postgresql:16.9-system-trixie
`

func TestImageResolution(t *testing.T) {
	plain := strings.Replace(catalogCluster, "  imageCatalogRef:\n    apiGroup: postgresql.cnpg.io\n    kind: KIND\n    name: postgresql\n    major: 16\n", "", 1)
	tests := []struct {
		name      string
		files     []File
		opts      Options
		wantImage string
		wantFrom  string
		wantErrs  []string
	}{
		{
			name:      "no imageName: the default image",
			files:     []File{{Path: "c.yaml", Data: []byte(plain)}},
			wantImage: DefaultImageName,
			wantFrom:  "pgsync's default image",
		},
		{
			name:      "no imageName, --default-image",
			files:     []File{{Path: "c.yaml", Data: []byte(plain)}},
			opts:      Options{DefaultImage: "localhost:5000/postgresql:15.20"},
			wantImage: "localhost:5000/postgresql:15.20",
			wantFrom:  "pgsync's default image",
		},
		{
			name:     "no imageName, an unusable --default-image",
			files:    []File{{Path: "c.yaml", Data: []byte(plain)}},
			opts:     Options{DefaultImage: "postgres:latest"},
			wantErrs: []string{`c.yaml:7:3: spec.imageName: not written, and the default image postgres:latest cannot be used: cannot read a PostgreSQL version from tag "latest"; use a tag that starts with MAJOR.MINOR (e.g. 16.4) or pin the image by digest`},
		},
		{
			name:      "imageName written: the default does not apply",
			files:     []File{{Path: "c.yaml", Data: []byte(strings.Replace(plain, "  instances: 2\n", "  instances: 2\n  imageName: ghcr.io/cloudnative-pg/postgresql:16\n", 1))}},
			opts:      Options{DefaultImage: "localhost:5000/postgresql:15.20"},
			wantImage: "ghcr.io/cloudnative-pg/postgresql:16",
		},
		{
			name:      "ImageCatalog of the cluster's namespace, in a later file",
			files:     []File{{Path: "c.yaml", Data: []byte(strings.Replace(catalogCluster, "KIND", "ImageCatalog", 1))}, {Path: "catalog.yaml", Data: []byte(namespacedCatalog)}},
			wantImage: "ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie",
			wantFrom:  "ImageCatalog shop/postgresql, major 16",
		},
		{
			name:      "ClusterImageCatalog, in the same file",
			files:     []File{{Path: "c.yaml", Data: []byte(clusterCatalog + "---\n" + strings.Replace(catalogCluster, "KIND", "ClusterImageCatalog", 1))}},
			wantImage: "ghcr.io/cloudnative-pg/postgresql:16.9-system-trixie",
			wantFrom:  "ClusterImageCatalog postgresql, major 16",
		},
		{
			name:  "ImageCatalog of another namespace",
			files: []File{{Path: "c.yaml", Data: []byte(strings.Replace(catalogCluster, "KIND", "ImageCatalog", 1))}, {Path: "catalog.yaml", Data: []byte(strings.Replace(namespacedCatalog, "namespace: shop", "namespace: web", 1))}},
			wantErrs: []string{
				"c.yaml:11:11: spec.imageCatalogRef.name: ImageCatalog shop/postgresql not found in the repository (an ImageCatalog serves the Clusters of its own namespace, shop; found: ImageCatalog web/postgresql)",
			},
		},
		{
			name:     "missing catalog",
			files:    []File{{Path: "c.yaml", Data: []byte(strings.Replace(catalogCluster, "KIND", "ClusterImageCatalog", 1))}},
			wantErrs: []string{"c.yaml:11:11: spec.imageCatalogRef.name: ClusterImageCatalog postgresql not found in the repository"},
		},
		{
			name:     "major not in the catalog",
			files:    []File{{Path: "c.yaml", Data: []byte(strings.Replace(strings.Replace(catalogCluster, "KIND", "ImageCatalog", 1), "major: 16", "major: 17", 1))}, {Path: "catalog.yaml", Data: []byte(namespacedCatalog)}},
			wantErrs: []string{"c.yaml:12:12: spec.imageCatalogRef.major: ImageCatalog shop/postgresql (at catalog.yaml:1:1) has no image for major 17 (it has: 15, 16)"},
		},
		{
			name:     "imageName and imageCatalogRef both set",
			files:    []File{{Path: "c.yaml", Data: []byte(strings.Replace(strings.Replace(catalogCluster, "KIND", "ImageCatalog", 1), "  instances: 2\n", "  instances: 2\n  imageName: postgres:16.4\n", 1))}, {Path: "catalog.yaml", Data: []byte(namespacedCatalog)}},
			wantErrs: []string{"c.yaml:10:5: spec.imageCatalogRef: imageName and imageCatalogRef are both set; write one: the image itself, or the catalog and major to take it from"},
		},
		{
			name: "reference: wrong kind and group, no name, no major",
			files: []File{{Path: "c.yaml", Data: []byte(strings.Replace(strings.Replace(strings.Replace(strings.Replace(catalogCluster,
				"KIND", "Catalog", 1), "apiGroup: postgresql.cnpg.io", "apiGroup: example.com", 1), "    name: postgresql\n", "", 1), "    major: 16\n", "", 1))}},
			wantErrs: []string{
				`c.yaml:9:15: spec.imageCatalogRef.apiGroup: invalid value "example.com" (allowed: postgresql.cnpg.io, postgresql.k8s.enterprisedb.io)`,
				`c.yaml:10:11: spec.imageCatalogRef.kind: invalid value "Catalog" (allowed: ClusterImageCatalog, ImageCatalog)`,
				"c.yaml:9:5: spec.imageCatalogRef.name: required: the name of the catalog",
				"c.yaml:9:5: spec.imageCatalogRef.major: required: the PostgreSQL major version whose image the cluster runs",
			},
		},
		{
			name: "catalog metadata",
			files: []File{{Path: "c.yaml", Data: []byte(strings.Replace(namespacedCatalog, "name: postgresql", "name: Postgres_SQL", 1) + "---\n" +
				strings.Replace(clusterCatalog, "  name: postgresql\n", "  name: postgresql\n  namespace: shop\n", 1))}},
			wantErrs: []string{
				`c.yaml:4:9: metadata.name: "Postgres_SQL" is not a valid name: lower-case letters, digits, '-' and '.'`,
				"c.yaml:17:14: metadata.namespace: a ClusterImageCatalog has no namespace (any Cluster may use it); use an ImageCatalog for one namespace's Clusters",
			},
		},
		{
			name: "invalid catalog: every problem at its line, and the cluster told so",
			files: []File{{Path: "c.yaml", Data: []byte(strings.Replace(catalogCluster, "KIND", "ImageCatalog", 1))}, {Path: "catalog.yaml", Data: []byte(namespacedCatalog + `    - major: 16
      image: postgres:latest
    - major: 12
      image: postgres:12.1
    - major: 17
      image: postgres:16.4
    - major: 14
      imagen: postgres:14.1
`)}},
			wantErrs: []string{
				"c.yaml:11:11: spec.imageCatalogRef.name: ImageCatalog shop/postgresql (at catalog.yaml:1:1) is invalid; see its errors",
				`catalog.yaml:19:7: spec.images[5].imagen: unknown field "imagen" (allowed: image, major)`,
				"catalog.yaml:12:14: spec.images[2].major: major 16 is listed twice: here and at catalog.yaml:10:14",
				`catalog.yaml:13:14: spec.images[2].image: cannot read a PostgreSQL version from tag "latest"; use a tag that starts with MAJOR.MINOR (e.g. 16.4) or pin the image by digest`,
				"catalog.yaml:14:14: spec.images[3].major: PostgreSQL 12 is not supported; supported major versions are 13 to 19",
				"catalog.yaml:17:14: spec.images[4].image: the tag says PostgreSQL 16, the entry is for major 17",
				"catalog.yaml:18:7: spec.images[5].image: required: the image of PostgreSQL 14",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := LoadWith(tt.files, tt.opts)
			var got []string
			if err != nil {
				for _, d := range err.(Errors) {
					got = append(got, d.String())
				}
			}
			if tt.wantErrs != nil || got != nil {
				if diff := cmp.Diff(tt.wantErrs, got); diff != "" {
					t.Fatalf("problems (-want +got):\n%s", diff)
				}
				return
			}
			if len(set.Clusters) != 1 {
				t.Fatalf("got %d clusters", len(set.Clusters))
			}
			c := set.Clusters[0]
			if c.Spec.ImageName != tt.wantImage || c.ImageFrom != tt.wantFrom {
				t.Errorf("image %q from %q, want %q from %q", c.Spec.ImageName, c.ImageFrom, tt.wantImage, tt.wantFrom)
			}
		})
	}
}
