package kubeenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing prerequisite
// from a skip into a failure (set by CI).
const RequireEnv = "PGSYNC_REQUIRE_INTEGRATION"

// unavailable reports a missing prerequisite: a skip normally, a failure in CI.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1, so this is a failure)", msg, RequireEnv)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
}

// repoRoot finds the checkout: the nearest directory above the working
// directory holding hack/kube/versions.env (go test runs in the package
// directory). PGSYNC_ROOT overrides it.
func repoRoot() (string, error) {
	if r := os.Getenv("PGSYNC_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "kube", "versions.env")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/kube/versions.env not found above the working directory (set PGSYNC_ROOT)")
		}
		dir = parent
	}
}

// versions reads hack/kube/versions.env (KEY=VALUE lines).
func versions(root string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(root, "hack", "kube", "versions.env"))
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	return parseEnvFile(data), nil
}

func parseEnvFile(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out
}

// cacheRoot is where hack/kube keeps binaries, keyed by version below it.
func cacheRoot() string {
	if c := os.Getenv("PGSYNC_KUBE_CACHE"); c != "" {
		return c
	}
	return "/var/cache/pgsync/kube"
}

// kubeBin returns the cached path of a Kubernetes component, building it with
// hack/kube/build.sh when it is missing. A build that cannot finish before the
// test's deadline is reported instead of started.
func kubeBin(t testing.TB, root, version, component string) (string, error) {
	path := filepath.Join(cacheRoot(), version, "bin", component)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("%s is not built at %s and there is no go command to build it", component, path)
	}
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, has := d.Deadline(); has && time.Until(dl) < 20*time.Minute {
			return "", fmt.Errorf("%s is not built at %s; a cold build takes about 10 minutes, "+
				"more than this test binary's -timeout leaves: run `make kube-bins` first", component, path)
		}
	}
	t.Logf("kubeenv: building %s %s with hack/kube/build.sh (about 10 minutes cold)", component, version)
	cmd := exec.Command(filepath.Join(root, "hack", "kube", "build.sh"), component)
	cmd.Env = append(os.Environ(), "PGSYNC_KUBE_VERSION="+version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("hack/kube/build.sh %s: %w\n%s", component, err, tail(out, 2000))
	}
	return path, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func tailFile(name string, n int) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tail(data, n)
}
