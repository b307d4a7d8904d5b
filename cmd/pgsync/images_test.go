package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/cluster"
)

// imageCorpus reads test/corpus/images as repository files under clusters/.
func imageCorpus(t *testing.T) map[string]string {
	t.Helper()
	dir := "../../test/corpus/images"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files["clusters/"+e.Name()] = string(data)
		}
	}
	return files
}

type imagePlan struct {
	Clusters []struct {
		Namespace, Name, Action string
		ImageFrom               string `json:"image_from"`
		Changes                 []struct{ Path, Before, After string }
		Steps                   []struct{ Action, Instance, From, To string }
	}
}

func planJSON(t *testing.T, args ...string) (imagePlan, result) {
	t.Helper()
	res := pgsync(t, append([]string{"plan", "--format", "json"}, args...)...)
	var p imagePlan
	if res.code == 0 || res.code == 2 {
		if err := json.Unmarshal([]byte(res.stdout), &p); err != nil {
			t.Fatalf("plan output is not JSON: %v\n%s", err, res.stdout)
		}
	}
	return p, res
}

func TestImageCorpusValidates(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("corpus", imageCorpus(t))
	res := pgsync(t, "validate", "--repo", repo.dir)
	if res.code != 0 || !strings.Contains(res.stdout, "11 clusters valid") {
		t.Fatalf("validate: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

func TestImageCorpusOfflinePlan(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("corpus", imageCorpus(t))
	images := func(p imagePlan) map[string]string {
		out := map[string]string{}
		for _, c := range p.Clusters {
			img := ""
			for _, ch := range c.Changes {
				if ch.Path == "spec.imageName" {
					img = ch.After
				}
			}
			out[c.Namespace+"/"+c.Name] = img + " | " + c.ImageFrom
		}
		return out
	}
	p, res := planJSON(t, "--repo", repo.dir, "--offline")
	if res.code != 0 {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	want := map[string]string{
		"default/cluster-example": cluster.DefaultImageName + " | " + cluster.DefaultImageName + " (pgsync's default image)",
		"shop/orders":             "ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie | ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie (ImageCatalog shop/postgresql, major 16)",
		"analytics/reports":       "ghcr.io/cloudnative-pg/postgresql:17.6-standard-trixie | ghcr.io/cloudnative-pg/postgresql:17.6-standard-trixie (ClusterImageCatalog postgresql-global, major 17)",
		"tags/tag-major":          "ghcr.io/cloudnative-pg/postgresql:16 | ",
		"tags/tag-minor":          "ghcr.io/cloudnative-pg/postgresql:16.4 | ",
		"tags/tag-system":         "ghcr.io/cloudnative-pg/postgresql:17.6-system-trixie | ",
		"tags/tag-minimal":        "ghcr.io/cloudnative-pg/postgresql:17.6-minimal-bookworm | ",
		"tags/tag-18":             "ghcr.io/cloudnative-pg/postgresql:18.1-minimal-bookworm | ",
		"tags/tag-build":          "ghcr.io/cloudnative-pg/postgresql:17.2-202411251 | ",
		"tags/tag-digest":         "ghcr.io/cloudnative-pg/postgresql:17.6-standard-trixie@" + digest + " | ",
		"tags/tag-local":          "localhost:5000/postgresql:15.20 | ",
	}
	if diff := cmp.Diff(want, images(p)); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}

	// --default-image replaces the default, and only the default.
	p, res = planJSON(t, "--repo", repo.dir, "--offline", "--default-image", "localhost:5000/postgresql:15.18")
	if res.code != 0 {
		t.Fatalf("plan --default-image: exit %d\n%s", res.code, res.stderr)
	}
	want["default/cluster-example"] = "localhost:5000/postgresql:15.18 | localhost:5000/postgresql:15.18 (pgsync's default image)"
	if diff := cmp.Diff(want, images(p)); diff != "" {
		t.Errorf("images with --default-image (-want +got):\n%s", diff)
	}

	// The text and Markdown plans say it too.
	for _, format := range []string{"text", "markdown"} {
		res := pgsync(t, "plan", "--repo", repo.dir, "--offline", "--format", format)
		if res.code != 0 {
			t.Fatalf("plan --format %s: exit %d\n%s", format, res.code, res.stderr)
		}
		for _, s := range []string{cluster.DefaultImageName + " (pgsync's default image)", "(ImageCatalog shop/postgresql, major 16)"} {
			if !strings.Contains(res.stdout, s) {
				t.Errorf("plan --format %s does not say %q:\n%s", format, s, res.stdout)
			}
		}
	}
}

// A catalog change between two commits is a rolling update of every
// cluster that takes its image from the catalog, and of no other.
func TestImageCatalogChangeRollsItsClusters(t *testing.T) {
	repo := newGitRepo(t)
	files := imageCorpus(t)
	files["clusters/orders-too.yaml"] = strings.NewReplacer("name: orders", "name: orders-too", "instances: 3", "instances: 2").Replace(
		files["clusters/cluster-catalog.yaml"][:strings.Index(files["clusters/cluster-catalog.yaml"], "---")])
	repo.commit("corpus", files)
	repo.commit("catalog: PostgreSQL 16.11", map[string]string{
		"clusters/catalogs.yaml": strings.Replace(files["clusters/catalogs.yaml"], "postgresql:16.10-minimal-trixie", "postgresql:16.11-minimal-trixie", 1),
	})
	p, res := planJSON(t, "--repo", repo.dir, "--base", "HEAD~1")
	if res.code != 0 {
		t.Fatalf("plan: exit %d\n%s", res.code, res.stderr)
	}
	const before, after = "ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie", "ghcr.io/cloudnative-pg/postgresql:16.11-minimal-trixie"
	rolled := map[string][]string{}
	for _, c := range p.Clusters {
		if c.Action == "no-op" {
			continue
		}
		var steps []string
		for _, s := range c.Steps {
			steps = append(steps, strings.TrimSpace(strings.Join([]string{s.Action, s.Instance, s.From, s.To}, " ")))
		}
		rolled[c.Namespace+"/"+c.Name] = append([]string{c.ImageFrom}, steps...)
	}
	from := after + " (ImageCatalog shop/postgresql, major 16)"
	want := map[string][]string{
		"shop/orders": {from,
			"update-objects",
			"restart-instance orders-2 " + before + " " + after,
			"restart-instance orders-1 " + before + " " + after,
			"switchover orders-0 orders-0 orders-1",
			"restart-instance orders-0 " + before + " " + after,
		},
		"shop/orders-too": {from,
			"update-objects",
			"restart-instance orders-too-1 " + before + " " + after,
			"switchover orders-too-0 orders-too-0 orders-too-1",
			"restart-instance orders-too-0 " + before + " " + after,
		},
	}
	if diff := cmp.Diff(want, rolled); diff != "" {
		t.Errorf("rolled clusters (-want +got):\n%s", diff)
	}
}

func TestImageCatalogProblemsValidate(t *testing.T) {
	repo := newGitRepo(t)
	files := imageCorpus(t)
	files["clusters/catalogs.yaml"] = strings.Replace(files["clusters/catalogs.yaml"], "    - major: 16\n      image: ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie\n", "", 1)
	files["clusters/cluster-example.yaml"] = strings.Replace(files["clusters/cluster-example.yaml"], "  instances: 3\n", "  instances: 3\n  imageName: ghcr.io/cloudnative-pg/postgresql:17.6\n  imageCatalogRef:\n    apiGroup: postgresql.cnpg.io\n    kind: ClusterImageCatalog\n    name: postgres\n    major: 17\n", 1)
	repo.commit("broken", files)
	res := pgsync(t, "validate", "--repo", repo.dir)
	want := []string{
		"clusters/cluster-catalog.yaml:14:12: spec.imageCatalogRef.major: ImageCatalog shop/postgresql (at clusters/catalogs.yaml:3:1) has no image for major 16 (it has: 15, 17)",
		"clusters/cluster-example.yaml:11:5: spec.imageCatalogRef: imageName and imageCatalogRef are both set; write one: the image itself, or the catalog and major to take it from",
	}
	if res.code != 1 {
		t.Fatalf("validate: exit %d, want 1\n%s", res.code, res.stderr)
	}
	if diff := cmp.Diff(want, lines(res.stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}
