package apply

import (
	"testing"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestWithManagerError: a pod that is not Ready says what its manager
// last failed at (a bootstrap waiting for a ConfigMap, say).
func TestWithManagerError(t *testing.T) {
	for _, tt := range []struct {
		st   pc.Status
		want string
	}{
		{pc.Status{Role: "bootstrapping"}, "pod web-0 is not Ready (phase Running)"},
		{pc.Status{Role: "bootstrapping", LastError: "bootstrap waits for its post-init SQL files (…): postInitSQLRefs: ConfigMap sql key a.sql missing"},
			"pod web-0 is not Ready (phase Running); its instance manager (bootstrapping): bootstrap waits for its post-init SQL files (…): postInitSQLRefs: ConfigMap sql key a.sql missing"},
	} {
		if got := withManagerError("pod web-0 is not Ready (phase Running)", tt.st); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}
