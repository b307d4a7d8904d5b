// Package cosigntest gives tests the real cosign CLI: the one hack/cosign.sh
// builds from the Go module proxy into the tools cache (`make cosign`;
// `make check` does it first), or $PGSYNC_COSIGN. A missing binary is a
// prerequisite missing (test/prereq): the test does not build it itself,
// since a cold build takes minutes of the test binary's timeout.
//
// It must not import `internal/...`.
package cosigntest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pgsync/pgsync/test/prereq"
)

// Binary returns the path of the cosign CLI, or ends the test as
// prereq.Missing does.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PGSYNC_COSIGN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PGSYNC_COSIGN=%s: %v", p, err)
		}
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "hack", "cosign.sh")
	// The script prints the cached binary's path; it only builds when the
	// binary is missing, which is checked first so a test never builds.
	path := cachedPath(t, script)
	if _, err := os.Stat(path); err != nil {
		prereq.Missing(t, "no cosign CLI at %s: run `make cosign` (hack/cosign.sh builds it from the Go module proxy, ~10 min cold)", path)
	}
	return path
}

// cachedPath reads VERSION from hack/cosign.sh and returns where it puts
// the binary.
func cachedPath(t testing.TB, script string) string {
	t.Helper()
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("read %s: %v", script, err)
	}
	version := ""
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION="); ok {
			version = v
		}
	}
	if version == "" {
		t.Fatalf("%s sets no VERSION", script)
	}
	cache := os.Getenv("PGSYNC_TOOLS_CACHE")
	if cache == "" {
		cache = "/var/cache/pgsync/tools"
	}
	return filepath.Join(cache, "cosign-"+version, "cosign")
}

// Run runs cosign with args in an environment of its own (a fresh HOME and
// TUF root, no sigstore cache, extra env added), bounded to a minute, and
// returns its stdout, stderr and error.
func Run(t testing.TB, bin string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"TUF_ROOT=" + filepath.Join(home, "tuf"),
		"SIGSTORE_NO_CACHE=true",
	}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}
