package prereq

import (
	"testing"
)

// recorder captures how Missing ends a test without ending this one.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = format
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
}

func TestMissing(t *testing.T) {
	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	Missing(r, "no %s", "postgres")
	if r.skipped == "" || r.failed != "" {
		t.Errorf("without %s: skipped=%q failed=%q, want a skip", RequireEnv, r.skipped, r.failed)
	}
	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	Missing(r, "no %s", "postgres")
	if r.failed == "" || r.skipped != "" {
		t.Errorf("with %s=1: skipped=%q failed=%q, want a failure", RequireEnv, r.skipped, r.failed)
	}
}
