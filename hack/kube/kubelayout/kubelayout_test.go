package kubelayout

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseEnv(t *testing.T) {
	got := ParseEnv([]byte("# pinned\nKUBE_VERSION=v1.37.2\n\n COREDNS_VERSION = \"v1.14.7\"\nNOEQUALS\nQ='x'\n"))
	want := map[string]string{"KUBE_VERSION": "v1.37.2", "COREDNS_VERSION": "v1.14.7", "Q": "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRootAndVersions(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("root %s is not the module root: %v", root, err)
	}
	v, err := Versions(root)
	if err != nil {
		t.Fatal(err)
	}
	if v["KUBE_VERSION"] != "v1.37.2" {
		t.Errorf("KUBE_VERSION = %q, want the pinned v1.37.2", v["KUBE_VERSION"])
	}

	t.Setenv("PGSYNC_ROOT", t.TempDir())
	r, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Versions(r); err == nil {
		t.Error("Versions of a directory without versions.env succeeded")
	}
}

func TestDirsFollowEnvironment(t *testing.T) {
	t.Setenv("PGSYNC_KUBE_CACHE", "/c")
	t.Setenv("PGSYNC_KUBE_STATE", "/s")
	if CacheDir() != "/c" || StateDir() != "/s" || KubeBin(CacheDir(), "v1", "kubelet") != "/c/v1/bin/kubelet" || Kubeconfig(StateDir()) != "/s/admin.kubeconfig" {
		t.Errorf("paths do not follow the environment: %s %s", CacheDir(), StateDir())
	}
	t.Setenv("PGSYNC_KUBE_CACHE", "")
	if CacheDir() != "/var/cache/pgsync/kube" {
		t.Errorf("default cache = %s", CacheDir())
	}
}
