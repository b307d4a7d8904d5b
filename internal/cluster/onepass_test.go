package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOnePass: a document with decoding problems is still validated as far
// as it decoded, so that every problem of a file comes in one run; a field
// decoding refused is not reported again, and a missing required field
// points at its parent's line.
func TestOnePass(t *testing.T) {
	const doc = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: shop\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n"
	tests := []struct {
		name string
		spec string // appended to doc
		want []string
	}{
		{
			name: "an unknown field and an invalid value",
			spec: "  instancez: 3\n  instances: 0\n  storage:\n    size: 1Gi\n",
			want: []string{
				`c.yaml:7:3: spec.instancez: unknown field "instancez" (did you mean instances?)`,
				"c.yaml:8:14: spec.instances: must be at least 1 (got 0)",
			},
		},
		{
			name: "a refused field and an invalid value",
			spec: "  backup: {retentionPolicy: 30d}\n  primaryUpdateMethod: failover\n  storage:\n    size: 1Gi\n",
			want: []string{
				"c.yaml:7:3: spec.backup: CloudNativePG backups are not supported by pgsync yet",
				`c.yaml:8:24: spec.primaryUpdateMethod: invalid value "failover" (allowed: switchover, restart)`,
			},
		},
		{
			name: "a wrong type is reported once, not again as required",
			spec: "  storage:\n    size: true\n",
			want: []string{"c.yaml:8:11: spec.storage.size: expected a quantity such as 10Gi or 500m, got the boolean true"},
		},
		{
			name: "a wrong type of a whole section hides the checks of its fields",
			spec: "  storage: [1Gi]\n",
			want: []string{"c.yaml:7:12: spec.storage: expected a mapping, got a list"},
		},
		{
			name: "a misspelt required field: unknown, and the field required at its parent's line",
			spec: "  storage:\n    sise: 1Gi\n",
			want: []string{
				`c.yaml:8:5: spec.storage.sise: unknown field "sise" (did you mean size?)`,
				"c.yaml:8:5: spec.storage.size: required…", // the rest is validateStorage's
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]File{{Path: "c.yaml", Data: []byte(doc + tt.spec)}})
			errs, _ := err.(Errors)
			var got []string
			for i, d := range errs {
				line := d.String()
				if i < len(tt.want) && strings.HasSuffix(tt.want[i], "…") && strings.HasPrefix(line, strings.TrimSuffix(tt.want[i], "…")) {
					line = tt.want[i]
				}
				got = append(got, line)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOnePassAnnotations: an annotation the decoder refused (not a
// string) is not reported again by the annotations' checks.
func TestOnePassAnnotations(t *testing.T) {
	data := strings.Join([]string{
		"apiVersion: postgresql.cnpg.io/v1", "kind: Cluster", "metadata:", "  name: shop",
		"  annotations:", "    pgsync.io/suspend: true", "spec:", "  instancez: 1", "  storage: {size: 1Gi}", "",
	}, "\n")
	_, err := Load([]File{{Path: "c.yaml", Data: []byte(data)}})
	errs, _ := err.(Errors)
	if len(errs) != 2 || errs[0].Field != "metadata.annotations.pgsync.io/suspend" || errs[1].Field != "spec.instancez" {
		t.Errorf("diagnostics = %v, want the annotation's type and the unknown field, once each", errs)
	}
}
