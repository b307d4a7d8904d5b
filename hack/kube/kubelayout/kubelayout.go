// Package kubelayout knows where the local Kubernetes of hack/kube lives:
// the checkout it is built from, the pinned versions (hack/kube/versions.env)
// and the directories outside the checkout that hold the build cache, the
// state of a running cluster and its runtime files. kubelocal (which builds
// and runs the cluster) and test/kubeenv (which tests use to reach it) both
// read these, so they always agree.
//
// It must not import `pgsync/...`.
package kubelayout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VersionsFile is the pinned versions, relative to the checkout.
const VersionsFile = "hack/kube/versions.env"

// Root returns the pgsync checkout: $PGSYNC_ROOT, else the nearest directory
// above the working directory holding VersionsFile (go test runs in the
// package's directory).
func Root() (string, error) {
	if r := os.Getenv("PGSYNC_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, VersionsFile)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New(VersionsFile + " not found above the working directory: run from the pgsync checkout or set PGSYNC_ROOT")
		}
		dir = parent
	}
}

// Versions reads the pinned versions of the checkout at root; KUBE_VERSION
// and COREDNS_VERSION must be set.
func Versions(root string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(root, VersionsFile))
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	v := ParseEnv(data)
	if v["KUBE_VERSION"] == "" || v["COREDNS_VERSION"] == "" {
		return nil, errors.New(VersionsFile + " lacks KUBE_VERSION or COREDNS_VERSION")
	}
	return v, nil
}

// ParseEnv reads KEY=VALUE lines; blank lines and # comments are skipped,
// quotes around values removed.
func ParseEnv(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out
}

// CacheDir holds what is built, kept across clusters and keyed by version
// ($PGSYNC_KUBE_CACHE).
func CacheDir() string { return envOr("PGSYNC_KUBE_CACHE", "/var/cache/pgsync/kube") }

// StateDir holds one running cluster's state, wiped by kube-down
// ($PGSYNC_KUBE_STATE).
func StateDir() string { return envOr("PGSYNC_KUBE_STATE", "/var/lib/pgsync/kube") }

// RunDir holds PID files and sockets ($PGSYNC_KUBE_RUN).
func RunDir() string { return envOr("PGSYNC_KUBE_RUN", "/run/pgsync-kube") }

// ContainerdSocket is the file name of containerd's socket in RunDir.
const ContainerdSocket = "containerd.sock"

// KubeBin is the cached binary of a Kubernetes component.
func KubeBin(cache, kubeVersion, component string) string {
	return filepath.Join(cache, kubeVersion, "bin", component)
}

// CoreDNSBin is the cached CoreDNS binary.
func CoreDNSBin(cache, corednsVersion string) string {
	return filepath.Join(cache, "coredns-"+corednsVersion, "coredns")
}

// NetworkPoliciesBin is the cached NetworkPolicy agent
// (sigs.k8s.io/kube-network-policies, hack/kube/build.sh).
func NetworkPoliciesBin(cache, knpVersion string) string {
	return filepath.Join(cache, "kube-network-policies-"+knpVersion, "kube-network-policies")
}

// LayoutDir is the OCI image layout the loopback registry serves.
func LayoutDir(cache string) string { return filepath.Join(cache, "images", "oci") }

// Kubeconfig is the admin kubeconfig of a running cluster.
func Kubeconfig(state string) string { return filepath.Join(state, "admin.kubeconfig") }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
