package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// componentNames in stop order (reverse of start order), plus the supervisor.
var componentNames = []string{"kubelet", "kube-network-policies", "kube-proxy", "coredns", "containerd", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}

// killLeftovers kills, by PID, whatever of the cluster still runs: the
// components named in the PID files (if their executable matches), the
// containerd shims serving our socket, and every process in the kubepods
// cgroups. It waits until they are gone.
func killLeftovers(p paths) error {
	var pids []int
	for _, n := range componentNames {
		base := n
		if n == "etcd" || n == "containerd" {
			base = n // Debian binaries, same base names
		}
		if pid, ok := pidAliveAs(p.pidFile(n), base); ok {
			pids = append(pids, pid)
		}
	}
	pids = append(pids, shimPIDs(p)...)
	pids = append(pids, cgroupPIDs()...)
	if len(pids) == 0 {
		return nil
	}
	killAll(pids, syscall.SIGKILL)
	return waitGone(pids, 30*time.Second)
}

// shimPIDs finds containerd-shim processes started for our containerd.
func shimPIDs(p paths) []int {
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") &&
			strings.Contains(string(cmdline), p.containerdSock()) {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers and
// the v2 unified one).
func cgroupHierarchies() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				out = append(out, unescapeMount(fields[4]))
			}
		}
	}
	return out
}

// podCgroupDirs returns kubelet's cgroup trees (kubepods) in each hierarchy.
func podCgroupDirs() []string {
	var out []string
	for _, h := range cgroupHierarchies() {
		matches, _ := filepath.Glob(filepath.Join(h, "kubepods*"))
		out = append(out, matches...)
	}
	return out
}

func cgroupPIDs() []int {
	var out []int
	seen := map[int]bool{}
	for _, root := range podCgroupDirs() {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, l := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(l); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// removeCgroups removes the kubepods trees, deepest first.
func removeCgroups() error {
	var errs []error
	for _, root := range podCgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ourMounts lists mount points below the cluster's directories and the CNI
// network namespaces, deepest first.
func ourMounts(p paths) []string {
	prefixes := []string{p.state + "/", p.run + "/", p.containerdRoot() + "/", "/run/netns/cni-", "/var/run/netns/cni-"}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		for _, pre := range prefixes {
			if strings.HasPrefix(mp, pre) && !seen[mp] {
				seen[mp] = true
				out = append(out, mp)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unmountAll(p paths) error {
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		mounts := ourMounts(p)
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	if left := ourMounts(p); len(left) > 0 {
		errs = append(errs, fmt.Errorf("mounts left: %s", strings.Join(left, " ")))
	}
	return errors.Join(errs...)
}

// unescapeMount decodes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// leftovers describes what of the cluster is still on the host (empty when
// clean): the check `down` ends with.
func leftovers(p paths) []string {
	var out []string
	for _, n := range append([]string{"supervisor"}, componentNames...) {
		if pid, err := readPID(p.pidFile(n)); err == nil && alive(pid) {
			if n == "supervisor" || filepath.Base(exeOf(pid)) == n {
				out = append(out, fmt.Sprintf("process %s (pid %d)", n, pid))
			}
		}
	}
	for _, pid := range append(shimPIDs(p), cgroupPIDs()...) {
		out = append(out, fmt.Sprintf("process %d", pid))
	}
	for _, m := range ourMounts(p) {
		out = append(out, "mount "+m)
	}
	for _, d := range podCgroupDirs() {
		out = append(out, "cgroup "+d)
	}
	for _, l := range ourLinks {
		if linkExists(l) {
			out = append(out, "interface "+l)
		}
	}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "cni-") {
				out = append(out, "netns "+e.Name())
			}
		}
	}
	out = append(out, leftoverChains()...)
	return out
}
