package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Every packet stays on this machine (docs/local-kubernetes.md, "Network"):
//   - pods live in 198.18.0.0/24 on the pgsync0 bridge; the rest of
//     198.18.0.0/16 is a blackhole route (the bridge's /24 is more specific);
//   - Services are 198.19.0.0/16, routed to the pgsync-sink ifb interface,
//     which drops what it is sent; kube-proxy's DNAT re-routes matched
//     traffic to pods first (a blackhole there would break host → ClusterIP,
//     as the route is looked up before DNAT);
//   - the PGSYNC-GUARD chain drops anything a pod sends, or anything sent to
//     a Service IP, whose destination is not a pod, a Service or this host.

// sysctls the cluster needs, set by setupNetwork; they and the kernel
// tunables kubelet sets on start are saved first and restored by down.
var (
	sysctls      = []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"}
	savedSysctls = append([]string{
		"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	}, sysctls...)
)

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// ourLinks are the interfaces kube-up creates (kernel.go's probes too).
var ourLinks = []string{bridgeName, sinkName, probeBridge, probeIfb}

// setupNetwork creates the bridge (whose address is the node's), the
// blackhole, the Service sink routed with hostIP (the machine's discovered
// address) as source, and the guard chain.
func setupNetwork(p paths, hostIP string) error {
	if err := shareNetnsDir(); err != nil {
		return err
	}
	saved := p.conf("sysctl.saved")
	if _, err := os.Stat(saved); errors.Is(err, os.ErrNotExist) {
		var b strings.Builder
		for _, s := range savedSysctls {
			v, err := os.ReadFile(filepath.Join("/proc/sys", s))
			if err != nil {
				continue // not on this kernel
			}
			fmt.Fprintf(&b, "%s=%s\n", s, strings.TrimSpace(string(v)))
		}
		if err := os.WriteFile(saved, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	for _, s := range sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", s), []byte("1"), 0o644); err != nil {
			return fmt.Errorf("set sysctl %s: %w", s, err)
		}
	}
	if !linkExists(bridgeName) {
		if err := run("ip", "link", "add", bridgeName, "type", "bridge"); err != nil {
			return err
		}
	}
	if out, _ := exec.Command("ip", "-4", "-o", "addr", "show", "dev", bridgeName).Output(); !bytes.Contains(out, []byte(podGateway+"/24")) {
		if err := run("ip", "addr", "add", podGateway+"/24", "dev", bridgeName); err != nil {
			return err
		}
	}
	if err := run("ip", "link", "set", bridgeName, "up"); err != nil {
		return err
	}
	if err := run("ip", "route", "replace", "blackhole", podSupernet); err != nil {
		return err
	}
	if !linkExists(sinkName) {
		if err := run("ip", "link", "add", sinkName, "type", "ifb"); err != nil {
			return fmt.Errorf("create the Service sink (the kernel needs ifb): %w", err)
		}
	}
	if err := run("ip", "link", "set", sinkName, "up"); err != nil {
		return err
	}
	if err := run("ip", "route", "replace", serviceCIDR, "dev", sinkName, "src", hostIP); err != nil {
		return err
	}
	return setupGuard()
}

func setupGuard() error {
	_ = teardownGuard()
	rules := [][]string{
		{"-N", guardChain},
		// Pods may talk to pods, Services and this host only.
		{"-A", guardChain, "-s", podSupernet, "!", "-d", guardRange, "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "DROP"},
		// A Service (from a pod or the host) may only lead to a pod or this host.
		{"-A", guardChain, "-m", "conntrack", "--ctorigdst", serviceCIDR, "!", "-d", guardRange, "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "DROP"},
		{"-I", "FORWARD", "1", "-j", guardChain},
		{"-I", "OUTPUT", "1", "-j", guardChain},
	}
	for _, r := range rules {
		if err := run("iptables", append([]string{"-w", "-t", "filter"}, r...)...); err != nil {
			return fmt.Errorf("install the guard chain: %w", err)
		}
	}
	return nil
}

func teardownGuard() error {
	var errs []error
	for _, hook := range []string{"FORWARD", "OUTPUT"} {
		for exec.Command("iptables", "-w", "-t", "filter", "-D", hook, "-j", guardChain).Run() == nil {
		}
	}
	if exec.Command("iptables", "-w", "-t", "filter", "-L", guardChain, "-n").Run() == nil {
		errs = append(errs, run("iptables", "-w", "-t", "filter", "-F", guardChain))
		errs = append(errs, run("iptables", "-w", "-t", "filter", "-X", guardChain))
	}
	return errors.Join(errs...)
}

// teardownNetwork removes everything setupNetwork, the CNI plugins,
// kube-proxy and kubelet put on the host, and restores the sysctls.
func teardownNetwork(p paths) error {
	var errs []error
	if err := removeCNINetns(); err != nil {
		errs = append(errs, err)
	}
	for _, l := range ourLinks {
		if linkExists(l) {
			errs = append(errs, run("ip", "link", "del", l))
		}
	}
	if out, _ := exec.Command("ip", "-4", "route", "show", "type", "blackhole", podSupernet).Output(); len(bytes.TrimSpace(out)) > 0 {
		errs = append(errs, run("ip", "route", "del", "blackhole", podSupernet))
	}
	errs = append(errs, teardownGuard())
	errs = append(errs, removeKubeChains())
	errs = append(errs, removeNetworkPoliciesTable())
	if data, err := os.ReadFile(p.conf("sysctl.saved")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if ok {
				errs = append(errs, os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644))
			}
		}
		errs = append(errs, os.Remove(p.conf("sysctl.saved")))
	}
	return errors.Join(errs...)
}

// shareNetnsDir makes /run/netns a shared mount of itself before any pod
// exists, as `ip netns add` (iproute2) does the first time it runs. Without
// it, anyone's first `ip netns add` or `ip netns exec` on this machine,
// while pods run, bind-mounts /run/netns over itself and so hides the
// network namespaces containerd has mounted there: containerd can then no
// longer unmount them, their unlink fails with EBUSY, and every pod that
// existed before is stuck Terminating ("failed to remove network
// namespace"). Seen on 2026-12-02 with a test tool's `ip netns` beside
// the e2e tier.
func shareNetnsDir() error {
	const dir = "/run/netns"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !isMountPoint(dir) {
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s onto itself: %w", dir, err)
		}
	}
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}

// isMountPoint says whether dir is the mount point of a mount in this
// mount namespace.
func isMountPoint(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}

// removeCNINetns deletes the pod network namespaces containerd created
// (named cni-<uuid>); deleting one deletes its veth pair too.
func removeCNINetns() error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cni-") {
			if err := run("ip", "netns", "delete", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ownedChain names the iptables chains Kubernetes components and the CNI
// plugins create.
func ownedChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-") || name == guardChain
}

// networkPoliciesTable is the nftables table of the NetworkPolicy agent.
const networkPoliciesTable = "kube-network-policies"

// removeNetworkPoliciesTable deletes the agent's table, which it leaves
// behind when it is killed: its rules would go on sending the pods' new
// connections to an nfqueue no one reads (passed, --fail-open, but not
// for a later agent with other flags).
func removeNetworkPoliciesTable() error {
	if exec.Command("nft", "list", "table", "inet", networkPoliciesTable).Run() != nil {
		return nil // no such table (or no nft: the agent never ran here)
	}
	return run("nft", "delete", "table", "inet", networkPoliciesTable)
}

// removeKubeChains deletes, in every table of iptables and ip6tables, the
// rules that jump to an owned chain and then the chains themselves.
func removeKubeChains() error {
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := exec.Command(tool, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue // table or family not available
			}
			var chains []string
			var jumps [][]string
			for _, line := range strings.Split(string(out), "\n") {
				f := splitRule(line)
				if len(f) >= 2 && f[0] == "-N" && ownedChain(f[1]) {
					chains = append(chains, f[1])
				}
				if len(f) >= 2 && f[0] == "-A" && !ownedChain(f[1]) {
					for i := 0; i+1 < len(f); i++ {
						if (f[i] == "-j" || f[i] == "-g") && ownedChain(f[i+1]) {
							jumps = append(jumps, append([]string{"-D"}, f[1:]...))
							break
						}
					}
				}
			}
			for _, j := range jumps {
				if err := run(tool, append([]string{"-w", "-t", table}, j...)...); err != nil {
					errs = append(errs, err)
				}
			}
			for _, c := range chains {
				_ = run(tool, "-w", "-t", table, "-F", c)
			}
			for _, c := range chains {
				if err := run(tool, "-w", "-t", table, "-X", c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// splitRule splits a line of `iptables -S` into arguments, keeping the
// double-quoted words (comments) together and unquoted.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote = !inQuote
			have = true
		case c == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// leftoverChains lists owned iptables chains still present.
func leftoverChains() []string {
	var out []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			data, err := exec.Command(tool, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				f := strings.Fields(line)
				if len(f) >= 2 && f[0] == "-N" && ownedChain(f[1]) {
					out = append(out, fmt.Sprintf("%s chain %s/%s", tool, table, f[1]))
				}
			}
		}
	}
	return out
}
