package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/cluster"
)

// A cluster without imageName runs the default image; when the default
// changes (a pgsync release, or --default-image), the running cluster is
// rolled, and the plan says so: never a silent restart.
func TestDefaultImageChangeIsARollingUpdate(t *testing.T) {
	file := []cluster.File{{Path: "c.yaml", Data: []byte(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  instances: 2
  storage: {size: 1Gi}
`)}}
	loadWith := func(image string) []*cluster.Cluster {
		set, err := cluster.LoadWith(file, cluster.Options{DefaultImage: image})
		if err != nil {
			t.Fatal(err)
		}
		return set.Clusters
	}
	const before, after = "localhost:5000/postgresql:15.18", "localhost:5000/postgresql:15.20"
	running := Converged(loadWith(before))

	same, err := Make(loadWith(before), running, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if same.HasChanges() {
		t.Errorf("the same default image plans changes: %+v", same.Clusters)
	}

	p, err := Make(loadWith(after), running, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Clusters) != 1 {
		t.Fatalf("clusters = %+v", p.Clusters)
	}
	c := p.Clusters[0]
	var steps []string
	for _, s := range c.Steps {
		steps = append(steps, strings.TrimSpace(strings.Join([]string{string(s.Action), s.Instance, s.From, s.To}, " ")))
	}
	want := []string{
		"update-objects",
		"restart-instance pg-1 " + before + " " + after,
		"switchover pg-0 pg-0 pg-1",
		"restart-instance pg-0 " + before + " " + after,
	}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if c.ImageFrom != after+" (pgsync's default image)" {
		t.Errorf("ImageFrom = %q", c.ImageFrom)
	}
	var text strings.Builder
	if err := RenderText(&text, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"image: " + after + " (pgsync's default image)", `spec.imageName: "` + before + `" → "` + after + `"`} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text plan does not say %q:\n%s", s, text.String())
		}
	}
	var doc strings.Builder
	if err := RenderJSON(&doc, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), `"image_from": "`+after+` (pgsync's default image)"`) {
		t.Errorf("JSON plan has no image_from:\n%s", doc.String())
	}
	back, err := ReadJSON(strings.NewReader(doc.String()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Clusters[0].ImageFrom != c.ImageFrom {
		t.Errorf("image_from read back as %q", back.Clusters[0].ImageFrom)
	}
}
