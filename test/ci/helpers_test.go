package ci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgsync/pgsync/test/prereq"
)

// moduleRoot is the repository root, relative to this package's directory
// (where go test runs it).
const moduleRoot = "../.."

// requireTools skips (fails under PGSYNC_REQUIRE_INTEGRATION=1) when a
// command the script or these tests run is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			prereq.Missing(t, "%s not found on PATH: the pull-request script runs it", tool)
		}
	}
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// pgsyncDir builds ./cmd/pgsync once per test process and returns the
// directory holding the binary, to put first on the script's PATH.
func pgsyncDir(t *testing.T) string {
	t.Helper()
	requireTools(t, "go")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgsync-ci-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "pgsync"), "./cmd/pgsync")
		cmd.Dir = moduleRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/pgsync: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gitRepo is a real repository in a temp dir, driven with the git CLI as a
// CI checkout would be.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

// git runs git in the repository with no user or system configuration and
// returns its trimmed stdout.
func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// commit writes the files (path → content) and commits them; it returns the
// commit's SHA.
func (r *gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.git("add", name)
	}
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// shopCluster is examples/repo/clusters/shop/shop.yaml's shape with the
// image and storage size given.
func shopCluster(image, size string) string {
	return `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: shop
  namespace: shop
spec:
  description: "Orders and payments"
  imageName: ` + image + `
  instances: 3
  primaryUpdateStrategy: unsupervised
  primaryUpdateMethod: switchover
  storage:
    storageClass: standard
    size: ` + size + `
  postgresql:
    parameters:
      shared_buffers: "256MB"
      max_connections: "200"
`
}

const shopFile = "clusters/shop/shop.yaml"

type result struct {
	code           int
	stdout, stderr string
}

// runScript runs examples/ci/pgsync-pr-plan.sh PLATFORM in dir with the
// built pgsync first on PATH and only the environment given (plus PATH and
// HOME), so nothing of the machine's own CI variables leaks in.
func runScript(t *testing.T, dir, platform string, env map[string]string) result {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(moduleRoot, "examples/ci/pgsync-pr-plan.sh"))
	if err != nil {
		t.Fatal(err)
	}
	path := pgsyncDir(t) + string(os.PathListSeparator) + os.Getenv("PATH")
	if p, ok := env["PATH"]; ok {
		path = p
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, platform)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
	for k, v := range env {
		if k != "PATH" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", script, err)
	}
	t.Logf("pgsync-pr-plan.sh %s: exit %d\nstdout:\n%s\nstderr:\n%s", platform, code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}
