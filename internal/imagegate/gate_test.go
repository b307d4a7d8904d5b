package imagegate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/imagepolicy"
)

const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// fakeChecker answers from a table and counts the questions.
type fakeChecker struct {
	answers map[string]imagepolicy.Decision
	asked   map[string]int
}

func (f *fakeChecker) Check(_ context.Context, image string) (imagepolicy.Decision, error) {
	f.asked[image]++
	d, ok := f.answers[image]
	if !ok {
		return d, errors.New("key file unreadable")
	}
	return d, nil
}

func load(t *testing.T, docs map[string]string) []*cluster.Cluster {
	t.Helper()
	var files []cluster.File
	for path, y := range docs {
		files = append(files, cluster.File{Path: path, Data: []byte(y)})
	}
	set, err := cluster.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	return set.Clusters
}

func doc(name, image string) string {
	return "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: " + name + ", namespace: db}\nspec:\n  instances: 1\n  imageName: " + image + "\n  storage: {size: 1Gi}\n"
}

func TestEnforce(t *testing.T) {
	const signed, unsigned, plain = "reg/pg:15.20", "reg/pg:15.99", "docker.io/library/postgres:15.20"
	allow := func(image, pinned string, keys ...string) imagepolicy.Decision {
		return imagepolicy.Decision{Allowed: true, Image: pinned, Digest: strings.TrimPrefix(pinned, image+"@"), SignedBy: keys, Reason: "allowed by p.yaml rule 1 (line 4)"}
	}
	for _, tc := range []struct {
		name     string
		clusters map[string]string
		instance string
		answers  map[string]imagepolicy.Decision
		// pinned: each cluster's imageName after, by name; refused: the
		// problems' text.
		pinned    map[string]string
		refused   []string
		instErr   string
		instance2 string
		err       string
	}{
		{name: "signed and pinned, shared image asked once",
			clusters: map[string]string{"a.yaml": doc("a", signed), "b.yaml": doc("b", signed)},
			instance: "reg/pgsync:dev",
			answers:  map[string]imagepolicy.Decision{signed: allow(signed, signed+"@"+d1, "k.pub"), "reg/pgsync:dev": allow("reg/pgsync:dev", "reg/pgsync:dev@"+d1, "k.pub")},
			pinned:   map[string]string{"a": signed + "@" + d1, "b": signed + "@" + d1}, instance2: "reg/pgsync:dev@" + d1},
		{name: "unsigned refused at spec.imageName, the other kept as it was",
			clusters: map[string]string{"a.yaml": doc("a", signed), "b.yaml": doc("b", unsigned)},
			answers: map[string]imagepolicy.Decision{signed: allow(signed, signed+"@"+d1, "k.pub"),
				unsigned: {Rule: 0, Image: unsigned, Reason: "p.yaml rule 1 (line 4) requires a signature by k.pub"}},
			pinned:  map[string]string{"a": signed + "@" + d1, "b": unsigned},
			refused: []string{"b.yaml:6:14: spec.imageName: refused by the image policy: p.yaml rule 1 (line 4) requires a signature by k.pub"}},
		{name: "allowed as named: not copied",
			clusters: map[string]string{"a.yaml": doc("a", plain)},
			answers:  map[string]imagepolicy.Decision{plain: allow(plain, plain)},
			pinned:   map[string]string{"a": plain}},
		{name: "instance image refused",
			clusters: map[string]string{"a.yaml": doc("a", plain)}, instance: "reg/pgsync:dev",
			answers: map[string]imagepolicy.Decision{plain: allow(plain, plain), "reg/pgsync:dev": {Reason: "no rule of p.yaml matches reg/pgsync"}},
			pinned:  map[string]string{"a": plain}, instErr: "--instance-image reg/pgsync:dev: refused by the image policy: no rule of p.yaml matches reg/pgsync"},
		{name: "no check possible is an error",
			clusters: map[string]string{"a.yaml": doc("a", signed)}, answers: map[string]imagepolicy.Decision{},
			err: "db/a: image policy: key file unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := load(t, tc.clusters)
			before := map[*cluster.Cluster]string{}
			for _, c := range cs {
				before[c] = c.Spec.ImageName
			}
			f := &fakeChecker{answers: tc.answers, asked: map[string]int{}}
			g := &Gate{NewChecker: func() Checker { return f }}
			r, err := g.Enforce(context.Background(), cs, tc.instance)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for image, n := range f.asked {
				if n != 1 {
					t.Errorf("%s asked %d times", image, n)
				}
			}
			if len(r.Clusters) != len(cs) {
				t.Fatalf("clusters = %d, want %d (a refused one stays)", len(r.Clusters), len(cs))
			}
			for i, c := range r.Clusters {
				if got, want := c.Spec.ImageName, tc.pinned[c.Metadata.Name]; got != want {
					t.Errorf("%s: imageName %s, want %s", c.Metadata.Name, got, want)
				}
				if cs[i].Spec.ImageName != before[cs[i]] {
					t.Errorf("the given cluster %s was changed", cs[i].Metadata.Name)
				}
			}
			var problems []string
			for _, p := range r.Problems {
				problems = append(problems, p.String())
			}
			if strings.Join(problems, "\n") != strings.Join(tc.refused, "\n") {
				t.Errorf("problems:\n%s\nwant\n%s", strings.Join(problems, "\n"), strings.Join(tc.refused, "\n"))
			}
			if len(r.Refused) != len(tc.refused) || len(r.Checks)+len(r.Refused) != len(cs) {
				t.Errorf("refused %v, checks %v", r.Refused, r.Checks)
			}
			switch {
			case tc.instErr != "":
				if r.InstanceRefused == nil || r.InstanceRefused.Error() != tc.instErr || r.InstanceImage != "" {
					t.Errorf("instance: %v %q", r.InstanceRefused, r.InstanceImage)
				}
			case r.InstanceImage != tc.instance2 || r.InstanceRefused != nil:
				t.Errorf("instance image %q (%v), want %q", r.InstanceImage, r.InstanceRefused, tc.instance2)
			}
		})
	}
}
