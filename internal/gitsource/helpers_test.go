package gitsource

import (
	"io"
	"log"
	"os"
	"os/exec"
	"testing"

	"github.com/pgsync/pgsync/test/prereq"
)

func TestMain(m *testing.M) {
	// gitkit (under gittestserver) logs every SSH request through the
	// standard logger; nothing in it helps read a failure here.
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// requireGit skips when the git binaries that the servers (and go-git's
// file:// transport) run are missing, unless CI demands every integration
// prerequisite.
func requireGit(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"git", "git-upload-pack", "git-receive-pack"} {
		if _, err := exec.LookPath(bin); err != nil {
			prereq.Missing(t, "%s not found on PATH: this test serves repositories with real git", bin)
		}
	}
}

// hermeticEnv clears every PGSYNC_GIT_* variable, so a developer's own
// credentials never leak into (or change) a test.
func hermeticEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{EnvToken, EnvUsername, EnvSSHKey, EnvSSHKeyPassphrase, EnvKnownHosts} {
		t.Setenv(k, "")
	}
}

func mustOpen(t testing.TB, opts Options) *Repository {
	t.Helper()
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Repo, err)
	}
	return r
}

func mustResolve(t testing.TB, r *Repository, rev string) string {
	t.Helper()
	sha, err := r.Resolve(rev)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", rev, err)
	}
	return sha
}
