package kubeenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
)

// kubeBin returns the cached path of a Kubernetes component, building it with
// hack/kube/build.sh when it is missing. A build that cannot finish before the
// test's deadline is reported instead of started.
func kubeBin(t testing.TB, root, version, component string) (string, error) {
	path := kubelayout.KubeBin(kubelayout.CacheDir(), version, component)
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
