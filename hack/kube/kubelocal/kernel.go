package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// exitNoKernelSupport is kubelocal's exit code when this machine's kernel
// lacks something the cluster needs: test/kubeenv turns it into a skip with
// the reason (a failure under PGSYNC_REQUIRE_INTEGRATION=1), not an error.
const exitNoKernelSupport = 4

// Interfaces checkKernel creates for a moment to learn whether the kernel
// can make them; down removes them should a run die in between.
const (
	probeBridge = "pgsync-probe0"
	probeIfb    = "pgsync-probe1"
)

// checkKernel tells, before anything is built or started, whether the kernel
// has what the cluster uses: cgroups, overlayfs (containerd's snapshotter),
// bridges with netfilter (the pod network), ifb (the Service sink) and the
// iptables nat table (kube-proxy). Missing modules are loaded when the
// kernel has them. It needs the tools deps.sh installs.
func checkKernel() error {
	var missing []string
	if len(cgroupHierarchies()) == 0 {
		missing = append(missing, "no cgroup hierarchy is mounted")
	}
	if !haveFilesystem("overlay") {
		_ = exec.Command("modprobe", "overlay").Run()
		if !haveFilesystem("overlay") {
			missing = append(missing, "no overlay filesystem (containerd's snapshotter)")
		}
	}
	for _, l := range []struct{ name, kind, use string }{
		{probeBridge, "bridge", "the pod network"},
		{probeIfb, "ifb", "the Service sink"},
	} {
		if linkExists(l.name) {
			_ = run("ip", "link", "del", l.name)
		}
		if err := run("ip", "link", "add", l.name, "type", l.kind); err != nil {
			missing = append(missing, fmt.Sprintf("cannot create an interface of type %s, %s (%v)", l.kind, l.use, err))
			continue
		}
		if err := run("ip", "link", "del", l.name); err != nil {
			return fmt.Errorf("remove the probe interface %s: %w", l.name, err)
		}
	}
	const brNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(brNF); err != nil {
		_ = exec.Command("modprobe", "br_netfilter").Run()
		if _, err := os.Stat(brNF); err != nil {
			missing = append(missing, "no bridge netfilter (br_netfilter: "+brNF+")")
		}
	}
	if out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("no iptables nat table (kube-proxy): %v: %s", err, bytes.TrimSpace(out)))
	}
	if len(missing) > 0 {
		return exitError{code: exitNoKernelSupport, msg: "this kernel cannot run the local cluster: " + strings.Join(missing, "; ")}
	}
	return nil
}

// haveFilesystem reports whether the kernel lists fs in /proc/filesystems.
func haveFilesystem(fs string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == fs {
			return true
		}
	}
	return false
}
