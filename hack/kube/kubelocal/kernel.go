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
// bridges with netfilter (the pod network), ifb (the Service sink), the
// iptables nat table (kube-proxy) and nfqueue from nf_tables (the
// NetworkPolicy agent). Missing modules are loaded when the
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
	// The NetworkPolicy agent: nf_tables with the x_tables NFQUEUE target
	// through nft_compat (build.sh's substitution for the native queue
	// expression, CONFIG_NFT_QUEUE, which these kernels lack), and
	// nfnetlink_queue to hand the packets to it. Probed in a network
	// namespace of its own (unshare, not `ip netns`: see shareNetnsDir),
	// which vanishes with its rule.
	if _, err := os.Stat("/proc/net/netfilter/nfnetlink_queue"); err != nil {
		_ = exec.Command("modprobe", "nfnetlink_queue").Run()
		if _, err := os.Stat("/proc/net/netfilter/nfnetlink_queue"); err != nil {
			missing = append(missing, "no nfnetlink_queue (the NetworkPolicy agent)")
		}
	}
	if out, err := exec.Command("unshare", "--net", "iptables-nft", "-w", "-A", "OUTPUT", "-p", "tcp",
		"-j", "NFQUEUE", "--queue-num", "100", "--queue-bypass").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("no nf_tables rule with the NFQUEUE target (the NetworkPolicy agent; nft_compat, xt_NFQUEUE): %v: %s", err, bytes.TrimSpace(out)))
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
