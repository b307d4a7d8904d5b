package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func load(t *testing.T, files ...File) (Set, Errors) {
	t.Helper()
	set, err := Load(files)
	if err == nil {
		return set, nil
	}
	errs, ok := err.(Errors)
	if !ok {
		t.Fatalf("Load returned %T, want Errors: %v", err, err)
	}
	return set, errs
}

// loadEach loads each testdata file matching pattern on its own (at least
// atLeast of them, so a renamed directory cannot pass by matching none)
// and returns the first cluster of each that validated; a refusal is a
// test error naming the file.
func loadEach(t *testing.T, pattern string, atLeast int) map[string]*Cluster {
	t.Helper()
	paths, _ := filepath.Glob(pattern)
	if len(paths) < atLeast {
		t.Fatalf("%s: found %d files, want at least %d", pattern, len(paths), atLeast)
	}
	out := map[string]*Cluster{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		set, errs := load(t, File{Path: filepath.Base(p), Data: data})
		if errs != nil {
			t.Errorf("%s refused:\n%v", p, errs)
			continue
		}
		out[p] = set.Clusters[0]
	}
	return out
}

func TestSeedYAMLVerbatim(t *testing.T) {
	data, err := os.ReadFile("testdata/seed-website.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, errs := load(t, File{Path: "website.yaml", Data: data})
	if errs != nil {
		t.Fatalf("seed YAML rejected:\n%v", errs)
	}
	if len(set.Clusters) != 1 {
		t.Fatalf("got %d clusters, want 1", len(set.Clusters))
	}
	c := set.Clusters[0]
	standard := "standard"
	want := Spec{
		Description:           "Backend database for our website application",
		ImageName:             "quay.io/enterprisedb/postgresql:13.1",
		ImagePullPolicy:       "IfNotPresent",
		Instances:             3,
		PrimaryUpdateStrategy: "unsupervised",
		PrimaryUpdateMethod:   "switchover",
		Storage:               StorageConfiguration{StorageClass: &standard, Size: "10Gi", ResizeInUseVolumes: ptr(true)},
		Affinity:              AffinityConfiguration{EnablePodAntiAffinity: ptr(true), TopologyKey: "kubernetes.io/hostname", PodAntiAffinityType: "preferred"},
		StartDelay:            3600,
		StopDelay:             1800,
		SwitchoverDelay:       3600,
	}
	if diff := cmp.Diff(want, c.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if c.Key() != (Key{Namespace: "website", Name: "website"}) {
		t.Errorf("key = %v", c.Key())
	}
	// The article's code block is indented with non-breaking spaces.
	if len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0].Message, "non-breaking") {
		t.Errorf("warnings = %v, want one about non-breaking spaces", set.Warnings)
	}
	if got := c.Pos("spec.instances").String(); got != "website.yaml:17:14" {
		t.Errorf("position of spec.instances = %s, want website.yaml:17:14", got)
	}
}

func ptr[T any](v T) *T { return &v }

const valid = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: shop
  namespace: prod
spec:
  imageName: ghcr.io/cloudnative-pg/postgresql:16.4
  instances: 3
  storage:
    size: 1Gi
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // diagnostics, in order
	}{
		{
			name: "malformed YAML",
			yaml: "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec: x: y\n",
			want: []string{"c.yaml:4:1: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "unknown field",
			yaml: strings.Replace(valid, "  instances: 3\n", "  instances: 3\n  replicas: 2\n", 1),
			want: []string{`c.yaml:9:3: spec.replicas: unknown field "replicas" (did you mean instances?)`},
		},
		{
			name: "unknown nested field and a refused top-level field, both reported",
			yaml: strings.Replace(valid, "    size: 1Gi\n", "    size: 1Gi\n    sise: 2Gi\nstatus: {}\n", 1),
			want: []string{
				`c.yaml:11:5: spec.storage.sise: unknown field "sise" (did you mean size?)`,
				"c.yaml:12:1: status: the status is written by the operator, not by hand: not supported by pgsync in a Cluster file (remove it; pgsync reports status with `pgsync status`)",
			},
		},
		{
			name: "wrong type: string for integer",
			yaml: strings.Replace(valid, "instances: 3", `instances: "3"`, 1),
			want: []string{`c.yaml:8:14: spec.instances: expected an integer, got the string "3"`},
		},
		{
			name: "wrong type: number for string",
			yaml: strings.Replace(valid, "  instances: 3\n", "  instances: 3\n  description: 42\n", 1),
			want: []string{`c.yaml:9:16: spec.description: expected a string, got the number 42 (quote it to make it a string)`},
		},
		{
			name: "wrong type: list for mapping",
			yaml: strings.Replace(valid, "  storage:\n    size: 1Gi\n", "  storage: [1Gi]\n", 1),
			want: []string{`c.yaml:9:12: spec.storage: expected a mapping, got a list`},
		},
		{
			name: "parameter values must be strings, as in CloudNativePG",
			yaml: valid + "  postgresql:\n    parameters:\n      max_connections: 200\n",
			want: []string{`c.yaml:13:24: spec.postgresql.parameters.max_connections: expected a string, got the number 200 (quote it to make it a string)`},
		},
		{
			name: "instances zero",
			yaml: strings.Replace(valid, "instances: 3", "instances: 0", 1),
			want: []string{"c.yaml:8:14: spec.instances: must be at least 1 (got 0)"},
		},
		{
			name: "negative failoverDelay",
			yaml: valid + "  failoverDelay: -1\n",
			want: []string{"c.yaml:11:18: spec.failoverDelay: must not be negative (got -1)"},
		},
		{
			name: "invalid enum",
			yaml: valid + "  primaryUpdateMethod: failover\n",
			want: []string{`c.yaml:11:24: spec.primaryUpdateMethod: invalid value "failover" (allowed: switchover, restart)`},
		},
		{
			name: "invalid quantity",
			yaml: strings.Replace(valid, "size: 1Gi", "size: lots", 1),
			want: []string{`c.yaml:10:11: spec.storage.size: invalid quantity "lots" (examples: 10Gi, 512Mi, 500m, 2)`},
		},
		{
			name: "missing size (no imageName: the default image)",
			yaml: strings.Replace(strings.Replace(valid, "    size: 1Gi\n", "    storageClass: fast\n", 1), "  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n", "", 1),
			want: []string{
				"c.yaml:9:5: spec.storage.size: required: the size of each instance's volume (e.g. 10Gi)",
			},
		},
		{
			name: "unparsable tag",
			yaml: strings.Replace(valid, ":16.4", ":latest", 1),
			want: []string{`c.yaml:7:14: spec.imageName: cannot read a PostgreSQL version from tag "latest"; use a tag that starts with MAJOR.MINOR (e.g. 16.4) or pin the image by digest`},
		},
		{
			name: "digest with a one-character hex part",
			yaml: strings.Replace(valid, ":16.4", ":16.4@sha256:x", 1),
			want: []string{`c.yaml:7:14: spec.imageName: invalid digest "sha256:x": 'x' is not a lower-case hexadecimal digit (sha256 digests are 64 of 0-9a-f)`},
		},
		{
			name: "digest too short",
			yaml: strings.Replace(valid, ":16.4", "@sha256:0123abcd", 1),
			want: []string{`c.yaml:7:14: spec.imageName: invalid digest "sha256:0123abcd": sha256 digests have 64 hexadecimal digits, this one has 8`},
		},
		{
			name: "digest of an unsupported algorithm",
			yaml: strings.Replace(valid, ":16.4", ":16.4@md5:0123456789abcdef0123456789abcdef", 1),
			want: []string{`c.yaml:7:14: spec.imageName: invalid digest "md5:0123456789abcdef0123456789abcdef": unsupported algorithm "md5" (sha256 or sha512)`},
		},
		{
			name: "unsupported major",
			yaml: strings.Replace(valid, ":16.4", ":12.9", 1),
			want: []string{`c.yaml:7:14: spec.imageName: PostgreSQL 12 (tag "12.9") is not supported; supported major versions are 13 to 19`},
		},
		{
			name: "a major newer than the tables",
			yaml: strings.Replace(valid, ":16.4", ":20-minimal-trixie", 1),
			want: []string{`c.yaml:7:14: spec.imageName: PostgreSQL 20 (tag "20-minimal-trixie") is not supported; supported major versions are 13 to 19`},
		},
		{
			name: "bad name",
			yaml: strings.Replace(valid, "name: shop", "name: Shop_1", 1),
			want: []string{`c.yaml:4:9: metadata.name: "Shop_1" is not a valid name: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit`},
		},
		{
			name: "a name whose ServiceAccount would be the namespace's default one",
			yaml: strings.Replace(valid, "name: shop", "name: default", 1),
			want: []string{`c.yaml:4:9: metadata.name: "default" is reserved: the cluster's ServiceAccount, Role and RoleBinding are named after it, and the namespace's default ServiceAccount (every pod's identity unless it names another) would get the instances' rights`},
		},
		{
			name: "names of pgsync's own objects",
			yaml: strings.Replace(valid, "name: shop", "name: pgsync-leader", 1),
			want: []string{`c.yaml:4:9: metadata.name: "pgsync-leader" is reserved: names starting with pgsync are pgsync's own objects (deploy/: ServiceAccounts pgsync-apply and pgsync-observer, Role pgsync-leader, …), which the cluster's ServiceAccount, Role and RoleBinding of the same name would take over`},
		},
		{
			name: "Kubernetes' own namespaces",
			yaml: strings.Replace(valid, "namespace: prod", "namespace: kube-system", 1),
			want: []string{`c.yaml:5:14: metadata.namespace: "kube-system" is Kubernetes' own namespace, whose ServiceAccounts and Roles a cluster's objects could take over; use a namespace of your own`},
		},
		{
			name: "unsupported apiVersion of a known group",
			yaml: strings.Replace(valid, "postgresql.cnpg.io/v1", "postgresql.cnpg.io/v2", 1),
			want: []string{`c.yaml:1:13: apiVersion: unsupported version "v2" of postgresql.cnpg.io (allowed: v1)`},
		},
		{
			name: "field set twice",
			yaml: strings.Replace(valid, "  instances: 3\n", "  instances: 3\n  instances: 2\n", 1),
			want: []string{`c.yaml:9:3: spec.instances: field set twice`},
		},
		{
			name: "request above limit",
			yaml: valid + "  resources:\n    requests: {memory: 2Gi}\n    limits: {memory: 1Gi, gpu: 1}\n",
			want: []string{
				`c.yaml:13:32: spec.resources.limits.gpu: unknown resource "gpu" (allowed: cpu, memory, ephemeral-storage, hugepages-<size>)`,
				`c.yaml:12:24: spec.resources.requests.memory: request 2Gi is greater than the limit 1Gi`,
			},
		},
		{
			name: "tolerations as the API server checks them",
			yaml: valid + "  affinity:\n    tolerations:\n      - {key: a, operator: Equal, value: b, effect: NoSchedule, tolerationSeconds: 30}\n      - {operator: Equal, value: b}\n      - {key: c, operator: Exists, effect: NoExecute, tolerationSeconds: 30}\n",
			want: []string{
				`c.yaml:13:84: spec.affinity.tolerations[0].tolerationSeconds: only allowed with effect NoExecute (got effect "NoSchedule")`,
				`c.yaml:14:9: spec.affinity.tolerations[1].key: required unless operator is Exists`,
			},
		},
		{
			name: "document that is not a mapping",
			yaml: "- just\n- a list\n",
			want: []string{"c.yaml:1:1: a document must be a mapping with apiVersion and kind, got a list"},
		},
		{
			name: "error in the second document of a file",
			yaml: valid + "---\n" + strings.Replace(strings.Replace(valid, "name: shop", "name: cart", 1), "instances: 3", "instances: -1", 1),
			want: []string{"c.yaml:19:14: spec.instances: must be at least 1 (got -1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := load(t, File{Path: "c.yaml", Data: []byte(tt.yaml)})
			var got []string
			for _, d := range errs {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDuplicateAcrossFiles(t *testing.T) {
	_, errs := load(t, File{Path: "a/one.yaml", Data: []byte(valid)}, File{Path: "b/two.yaml", Data: []byte(valid)})
	want := []string{"b/two.yaml:4:9: metadata.name: cluster prod/shop is defined twice: here and at a/one.yaml:4:9"}
	var got []string
	for _, d := range errs {
		got = append(got, d.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMultiDocumentAndSkipped(t *testing.T) {
	data := "---\n" + valid + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" +
		"apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata: {name: capi}\n---\n" +
		strings.Replace(valid, "name: shop", "name: cart", 1) + "---\n"
	set, errs := load(t, File{Path: "all.yaml", Data: []byte(data)})
	if errs != nil {
		t.Fatal(errs)
	}
	var names []string
	for _, c := range set.Clusters {
		names = append(names, c.Key().String())
	}
	if diff := cmp.Diff([]string{"prod/cart", "prod/shop"}, names); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
	if len(set.Skipped) != 2 {
		t.Fatalf("skipped = %v, want the ConfigMap and the Cluster API Cluster", set.Skipped)
	}
	if got := set.Skipped[1].Pos.String(); got != "all.yaml:17:1" {
		t.Errorf("second skipped at %s, want all.yaml:17:1", got)
	}
}

func TestDefaults(t *testing.T) {
	minimal := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: tiny}\nspec:\n  imageName: pg:15.4\n  storage: {size: 1Gi}\n"
	set, errs := load(t, File{Path: "t.yaml", Data: []byte(minimal)})
	if errs != nil {
		t.Fatal(errs)
	}
	s := set.Clusters[0]
	if s.Metadata.Namespace != "default" || s.Spec.Instances != 1 || s.Spec.PrimaryUpdateMethod != "switchover" ||
		s.Spec.PrimaryUpdateStrategy != "unsupervised" || s.Spec.StopDelay != 1800 || s.Spec.Storage.StorageClass != nil {
		t.Errorf("defaults not applied: %+v", s)
	}
}

func TestDigestOnlyImageWarns(t *testing.T) {
	y := strings.Replace(valid, "ghcr.io/cloudnative-pg/postgresql:16.4", "ghcr.io/cloudnative-pg/postgresql@sha256:"+hex64, 1)
	set, errs := load(t, File{Path: "d.yaml", Data: []byte(y)})
	if errs != nil {
		t.Fatal(errs)
	}
	if len(set.Warnings) != 1 || set.Warnings[0].Pos.String() != "d.yaml:7:14" || !strings.Contains(set.Warnings[0].Message, "version checks") {
		t.Errorf("warnings = %v", set.Warnings)
	}
}

// TestLoadAcceptsPostgres19: 19's tags (tables from 19rc1) load cleanly.
func TestLoadAcceptsPostgres19(t *testing.T) {
	for _, tag := range []string{"19", "19.0", "19-minimal-trixie", "19.1-standard-trixie"} {
		y := strings.Replace(valid, ":16.4", ":"+tag, 1)
		set, errs := load(t, File{Path: "c.yaml", Data: []byte(y)})
		if errs != nil || len(set.Warnings) != 0 || len(set.Clusters) != 1 {
			t.Errorf("%s: errors %v, warnings %v", tag, errs, set.Warnings)
		}
	}
}

// BenchmarkLoad decodes and validates 1,000 cluster files.
func BenchmarkLoad(b *testing.B) {
	var files []File
	for i := 0; i < 1000; i++ {
		files = append(files, File{Path: fmt.Sprintf("c%04d.yaml", i), Data: []byte(strings.Replace(valid, "name: shop", fmt.Sprintf("name: db-%04d", i), 1))})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(files); err != nil {
			b.Fatal(err)
		}
	}
}
