// Package prereq holds the one rule every integration test follows when
// something it needs (PostgreSQL, git, a kube-apiserver, root) is missing:
// skip with the reason, except under PGSYNC_REQUIRE_INTEGRATION=1 (what
// `make check` and CI set), where a missing prerequisite is a failure — so
// CI can never pass by skipping.
//
// It is imported only by tests and test helpers, and imports nothing of
// pgsync's.
package prereq

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv is the environment variable that turns a missing prerequisite
// into a failure.
const RequireEnv = "PGSYNC_REQUIRE_INTEGRATION"

// Required reports whether missing prerequisites are failures.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Missing ends the test for a missing prerequisite: a skip normally, a
// failure when Required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1, so this is a failure)", msg, RequireEnv)
		return // Fatalf does not return in a real test; a fake TB's may
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
}
