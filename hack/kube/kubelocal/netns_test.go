package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/pgsync/pgsync/test/prereq"
)

const netnsChildEnv = "KUBELOCAL_NETNS_CHILD"

// TestShareNetnsDir: a pod network namespace mounted under /run/netns
// after kube-up stays removable when someone then runs `ip netns add`
// (which bind-mounts /run/netns over itself if it is not a mount point
// yet) — and, as the control, is not removable (EBUSY) without
// shareNetnsDir. Each case runs in a child in a private mount namespace,
// so the machine's mounts are not touched.
func TestShareNetnsDir(t *testing.T) {
	if mode := os.Getenv(netnsChildEnv); mode != "" {
		fmt.Println(netnsScenario(mode == "share"))
		return
	}
	if os.Geteuid() != 0 {
		prereq.Missing(t, "needs root: it mounts in a private mount namespace")
	}
	for _, bin := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			prereq.Missing(t, "%s not found", bin)
		}
	}
	for mode, want := range map[string]string{"share": "removed", "none": "busy"} {
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", os.Args[0], "-test.run=^TestShareNetnsDir$")
		cmd.Env = append(os.Environ(), netnsChildEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		if got := strings.SplitN(string(out), "\n", 2)[0]; got != want {
			t.Errorf("%s: the pod's netns was %q, want %q\n%s", mode, got, want, out)
		}
	}
}

// netnsScenario plays kube-up, containerd mounting a pod's netns, a
// stranger's `ip netns add`, then containerd's removal (unmount, unlink),
// and says how the removal went.
func netnsScenario(share bool) string {
	const dir = "/run/netns"
	if isMountPoint(dir) {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return "setup: " + err.Error()
		}
	}
	if share {
		if err := shareNetnsDir(); err != nil {
			return "share: " + err.Error()
		}
	}
	pid := os.Getpid()
	pod := fmt.Sprintf("%s/pgsync-test-cni-%d", dir, pid)
	if err := os.WriteFile(pod, nil, 0o444); err != nil {
		return "setup: " + err.Error()
	}
	if err := syscall.Mount("/proc/self/ns/net", pod, "", syscall.MS_BIND, ""); err != nil {
		return "setup: " + err.Error()
	}
	other := fmt.Sprintf("pgsync-test-ip-%d", pid)
	if out, err := exec.Command("ip", "netns", "add", other).CombinedOutput(); err != nil {
		return fmt.Sprintf("ip netns add: %v: %s", err, out)
	}
	_ = exec.Command("ip", "netns", "delete", other).Run()
	_ = syscall.Unmount(pod, syscall.MNT_DETACH) // containerd ignores EINVAL
	err := os.Remove(pod)
	if errors.Is(err, syscall.EBUSY) {
		// Clean up the file the shadow hid, for the next run.
		_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		_ = syscall.Unmount(pod, syscall.MNT_DETACH)
		_ = os.Remove(pod)
		return "busy"
	}
	if err != nil {
		return "remove: " + err.Error()
	}
	return "removed"
}
