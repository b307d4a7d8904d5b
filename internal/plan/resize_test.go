package plan

import (
	"strings"
	"testing"
)

// TestOfflineResizeOfThePrimaryIsDowntime: with resizeInUseVolumes false
// an instance restarts for its volume to grow, so the primary's resize is
// marked as downtime and the standbys' are not.
func TestOfflineResizeOfThePrimaryIsDowntime(t *testing.T) {
	spec := func(size string) string {
		return strings.Replace(website(img131, 2), "    size: 10Gi\n", "    size: "+size+"\n    resizeInUseVolumes: false\n", 1)
	}
	observed := Converged(mustLoad(t, spec("10Gi")))
	p, err := Make(mustLoad(t, spec("20Gi")), observed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var resized int
	for _, s := range p.Clusters[0].Steps {
		if s.Action != StepResizeVolume {
			continue
		}
		resized++
		if want := s.Role == RolePrimary; s.Downtime != want {
			t.Errorf("resize of %s (%s): downtime %v, want %v", s.Instance, s.Role, s.Downtime, want)
		}
	}
	if resized != 2 {
		t.Errorf("%d resize steps, want 2: %+v", resized, p.Clusters[0].Steps)
	}
}
