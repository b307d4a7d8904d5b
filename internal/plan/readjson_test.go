package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadJSONRoundTrip: a saved plan reads back as the plan that was
// written, steps and fingerprints included.
func TestReadJSONRoundTrip(t *testing.T) {
	for name, p := range goldenPlans(t) {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderJSON(&buf, p); err != nil {
				t.Fatal(err)
			}
			got, err := ReadJSON(&buf)
			if err != nil {
				t.Fatal(err)
			}
			want := *p
			want.Mode = p.modeOrDefault()
			want.Clusters = nil
			for _, c := range p.Clusters {
				if want.Mode != ModeLive {
					c.Observed = ""
				}
				want.Clusters = append(want.Clusters, c)
			}
			if d := cmp.Diff(&want, got, cmp.Transformer("nilEmpty", func(s []string) []string {
				if len(s) == 0 {
					return nil
				}
				return s
			})); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
	if _, err := ReadJSON(strings.NewReader(`{"format_version": "2"}`)); err == nil || !strings.Contains(err.Error(), `format_version "2"`) {
		t.Errorf("another format version: %v", err)
	}
}
