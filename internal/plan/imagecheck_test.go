package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestImageChange(t *testing.T) {
	const repo = "localhost:5000/postgresql"
	for _, tc := range []struct{ before, after, want string }{
		{repo + ":15.18", repo + ":15.20", "image 15.18 → 15.20"},
		{repo + ":15.20", repo + ":15.20@" + digestA, "image 15.20 pinned to its verified digest " + digestA + " (image policy)"},
		{repo + ":15.20@" + digestA, repo + ":15.20@" + digestB, "image 15.20 moved: digest " + digestA + " → " + digestB},
		{repo + ":15.20@" + digestA, repo + ":15.20", "image 15.20 no longer pinned (was " + digestA + ")"},
		{repo + ":15.18", repo + ":15.20@" + digestA, "image 15.18 → 15.20"},
		{"other/pg:15.20", repo + ":15.20@" + digestA, "image 15.20 → 15.20"},
	} {
		if got := imageChange(tc.before, tc.after); got != tc.want {
			t.Errorf("imageChange(%s, %s) = %q, want %q", tc.before, tc.after, got, tc.want)
		}
	}
}

// A running cluster whose image the policy pins plans one restart of
// every instance, said in the steps and a warning; the verdicts render in
// every format and a saved JSON plan reads them back.
func TestWithImagesPinnedRestartIsSaid(t *testing.T) {
	doc := func(image string) string {
		return "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: db}\nspec:\n  imageName: " + image + "\n  instances: 2\n  storage: {size: 1Gi}\n"
	}
	const tag = "localhost:5000/postgresql:15.20"
	running := Converged(mustLoad(t, doc(tag)))
	pinned := mustLoad(t, doc(tag))
	pinned[0].Spec.ImageName = tag + "@" + digestA
	p, err := Make(pinned, running, Options{})
	if err != nil {
		t.Fatal(err)
	}
	check := ImageCheck{Image: tag, Pinned: tag + "@" + digestA, Digest: digestA, SignedBy: []string{"build.pub"},
		Reason: "allowed by p.yaml rule 1 (line 4): localhost:5000/postgresql@" + digestA + " signed by build.pub"}
	instance := &ImageCheck{Image: "localhost:5000/pgsync:dev", Pinned: "localhost:5000/pgsync:dev@" + digestB, Digest: digestB,
		SignedBy: []string{"build.pub"}, Reason: "allowed by p.yaml rule 2 (line 8)"}
	WithImages(p, map[cluster.Key]ImageCheck{{Namespace: "db", Name: "pg"}: check}, instance)
	c := p.Clusters[0]
	var restarts int
	for _, s := range c.Steps {
		if s.Action == StepRestartInstance {
			restarts++
			if !strings.Contains(s.Reason, "pinned to its verified digest "+digestA) || s.To != tag+"@"+digestA {
				t.Errorf("restart step: %+v", s)
			}
		}
	}
	if restarts != 2 {
		t.Errorf("restarts = %d, want 2: %+v", restarts, c.Steps)
	}
	if len(c.Warnings) == 0 || !strings.Contains(strings.Join(c.Warnings, "\n"), "every instance restarts once") {
		t.Errorf("warnings = %q", c.Warnings)
	}

	var text, md, js bytes.Buffer
	if err := RenderText(&text, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := RenderMarkdown(&md, p); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": text.String(), "markdown": strings.ReplaceAll(md.String(), "`", "")} {
		for _, want := range []string{"rolls " + tag + "@" + digestA, "signed by build.pub", "localhost:5000/pgsync:dev@" + digestB} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, out)
			}
		}
	}
	for _, want := range []string{`"instance_image": {`, `"image_policy": {`, `"pinned": "` + tag + "@" + digestA + `"`, `"signed_by": [`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js.String())
		}
	}
	back, err := ReadJSON(&js)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Clusters[0].Image; got == nil || got.Pinned != check.Pinned || got.Digest != digestA || got.SignedBy[0] != "build.pub" {
		t.Errorf("read back: %+v", got)
	}
	if got := back.InstanceImage; got == nil || got.Pinned != instance.Pinned {
		t.Errorf("instance image read back: %+v", got)
	}

	// Without a policy nothing of it shows.
	var plain bytes.Buffer
	p.InstanceImage, p.Clusters[0].Image = nil, nil
	_ = RenderJSON(&plain, p)
	if strings.Contains(plain.String(), "image_policy") || strings.Contains(plain.String(), "instance_image") {
		t.Errorf("fields without a policy:\n%s", plain.String())
	}
}
