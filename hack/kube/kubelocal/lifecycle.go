package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func requireRoot() error {
	if os.Geteuid() != 0 {
		return exitError{code: 1, msg: "needs root (containerd, kubelet, iptables, mounts)"}
	}
	return nil
}

// supervisorPID returns the running supervisor's PID, or 0.
func supervisorPID(p paths) int {
	pid, err := readPID(p.pidFile("supervisor"))
	if err != nil || !alive(pid) {
		return 0
	}
	if exe := exeOf(pid); !strings.HasPrefix(filepath.Base(exe), "kubelocal") {
		return 0
	}
	return pid
}

// lock serializes up and down (parallel test packages may all ask for the
// cluster): the lock file sits beside the state directory, which they share.
func lock(p paths) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(p.state), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p.state+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func up(ctx context.Context, p paths) error {
	if err := requireRoot(); err != nil {
		return err
	}
	t0 := time.Now()
	unlock, err := lock(p)
	if err != nil {
		return err
	}
	defer unlock()
	if pid := supervisorPID(p); pid != 0 {
		if _, err := os.Stat(p.readyFile()); err == nil {
			fmt.Fprintf(os.Stderr, "kubelocal: cluster already running (supervisor pid %d)\n", pid)
			fmt.Printf("export KUBECONFIG=%s\n", p.kubeconfig())
			return nil
		}
		return fmt.Errorf("a supervisor (pid %d) runs but the cluster is not ready: wait, or run `make kube-down`", pid)
	}
	if err := runScript(ctx, p, "deps.sh"); err != nil {
		return err
	}
	if err := checkKernel(); err != nil {
		return err
	}
	if err := runScript(ctx, p, "build.sh"); err != nil {
		return err
	}
	if err := runScript(ctx, p, "build.sh", "coredns"); err != nil {
		return err
	}
	if err := runScript(ctx, p, "build.sh", "kube-network-policies"); err != nil {
		return err
	}
	unlockImages, err := lockImages(p)
	if err != nil {
		return err
	}
	err = buildImages(ctx, p)
	unlockImages()
	if err != nil {
		return fmt.Errorf("build the images: %w", err)
	}
	tBuilt := time.Now()
	// A cluster that died without `down` leaves things behind: clear them.
	if left := leftovers(p); len(left) > 0 {
		slog.Info("removing what an earlier run left", "items", len(left))
		if err := cleanHost(p); err != nil {
			return fmt.Errorf("remove what an earlier run left: %w", err)
		}
	}
	if err := wipeState(p); err != nil {
		return err
	}
	// The machine's own address is discovered, never hard-coded; it is only
	// the source of the Service route. The node itself (kube-apiserver,
	// kubelet, kube-proxy, CoreDNS) lives on the bridge address kube-up
	// creates, so nothing listens on the machine's real interfaces.
	hostIP, err := discoverNodeIP()
	if err != nil {
		return err
	}
	nodeIP := podGateway
	for _, d := range []string{p.state, p.run, filepath.Join(p.state, "logs"), p.volumesDir(), p.cniDataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(p.nodeIPFile(), []byte(nodeIP+"\n"), 0o644); err != nil {
		return err
	}
	if err := writePKI(p, nodeIP); err != nil {
		return fmt.Errorf("generate the PKI: %w", err)
	}
	if err := writeConfigs(p, nodeIP); err != nil {
		return err
	}
	if err := setupNetwork(p, hostIP); err != nil {
		_ = teardownNetwork(p)
		return fmt.Errorf("set up the host network: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(p.logFile("supervisor"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "run")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = p.repo
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start supervisor: %w", err)
	}
	logf.Close()
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	slog.Info("supervisor started", "pid", pid, "node_ip", nodeIP, "host_ip", hostIP, "log", p.logFile("supervisor"))
	deadline := time.Now().Add(6 * time.Minute)
	for {
		if _, err := os.Stat(p.readyFile()); err == nil {
			break
		}
		failed, _ := os.ReadFile(p.readyFile() + ".failed")
		if len(failed) > 0 || !alive(pid) || time.Now().After(deadline) || ctx.Err() != nil {
			reason := strings.TrimSpace(string(failed))
			if reason == "" {
				reason = "supervisor exited or timed out"
			}
			tail, _ := exec.Command("tail", "-n", "30", p.logFile("supervisor")).Output()
			fmt.Fprintf(os.Stderr, "%s\n", tail)
			kept := filepath.Join(p.cache, "failed-logs")
			_ = os.RemoveAll(kept)
			_ = exec.Command("cp", "-a", filepath.Dir(p.logFile("x")), kept).Run()
			_ = downLocked(p, time.Now())
			return fmt.Errorf("cluster did not come up: %s (logs kept in %s)", reason, kept)
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "kubelocal: cluster ready in %.1f s (builds/images %.1f s, start %.1f s); node IP %s, host IP %s\n",
		time.Since(t0).Seconds(), tBuilt.Sub(t0).Seconds(), time.Since(tBuilt).Seconds(), nodeIP, hostIP)
	fmt.Fprintf(os.Stderr, "kubelocal: images: %s/postgresql:15.18 %s/postgresql:15.20 %s/%s; logs: %s\n",
		registryHost, registryHost, registryHost, pgsyncRef, filepath.Dir(p.logFile("x")))
	fmt.Printf("export KUBECONFIG=%s\n", p.kubeconfig())
	return nil
}

func down(p paths) error {
	if err := requireRoot(); err != nil {
		return err
	}
	t0 := time.Now()
	unlock, err := lock(p)
	if err != nil {
		return err
	}
	defer unlock()
	return downLocked(p, t0)
}

func downLocked(p paths, t0 time.Time) error {
	if pid := supervisorPID(p); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if err := waitGone([]int{pid}, 3*time.Minute); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_ = waitGone([]int{pid}, 10*time.Second)
		}
	}
	if err := cleanHost(p); err != nil {
		return fmt.Errorf("clean the host: %w", err)
	}
	if err := wipeState(p); err != nil {
		return err
	}
	if left := leftovers(p); len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, "; "))
	}
	fmt.Fprintf(os.Stderr, "kubelocal: down in %.1f s; no processes, mounts, cgroups, interfaces, netns or iptables chains left\n", time.Since(t0).Seconds())
	return nil
}

// cleanHost removes everything the cluster puts on the host, in order:
// processes, mounts, network (netns, links, routes, chains, sysctls),
// cgroups.
func cleanHost(p paths) error {
	var errs []error
	errs = append(errs, killLeftovers(p))
	errs = append(errs, unmountAll(p))
	errs = append(errs, teardownNetwork(p))
	errs = append(errs, removeCgroups())
	return errors.Join(errs...)
}

// wipeState removes the cluster's state (etcd, PKI, kubelet, volumes) and run
// directories, refusing while anything is still mounted below them.
func wipeState(p paths) error {
	if m := ourMounts(p); len(m) > 0 {
		return fmt.Errorf("refusing to remove %s while mounted: %s", p.state, strings.Join(m, " "))
	}
	for _, d := range []string{p.state, p.run} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove %s: %w", d, err)
		}
	}
	return nil
}

func status(ctx context.Context, p paths) error {
	pid := supervisorPID(p)
	if pid == 0 {
		fmt.Println("kubelocal: not running")
		return exitError{code: 3, msg: "cluster is not running"}
	}
	_, rerr := os.Stat(p.readyFile())
	fmt.Printf("%-24s pid %-7d ready=%-7v %s (registry, provisioner)\n", "supervisor", pid, rerr == nil, rssOf(pid))
	for i := len(componentNames) - 1; i >= 0; i-- {
		n := componentNames[i]
		cpid, ok := pidAliveAs(p.pidFile(n), n)
		rss := ""
		if ok {
			rss = rssOf(cpid)
		}
		fmt.Printf("%-24s pid %-7d running=%-5v %s\n", n, cpid, ok, rss)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig())
	if err != nil {
		return fmt.Errorf("load %s: %w", p.kubeconfig(), err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		ready := "NotReady"
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = "Ready"
			}
		}
		fmt.Printf("node %s %s %s\n", n.Name, ready, n.Status.NodeInfo.KubeletVersion)
	}
	fmt.Printf("export KUBECONFIG=%s\n", p.kubeconfig())
	return nil
}

// rssOf reads VmRSS of pid from /proc.
func rssOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return "rss " + strings.Join(strings.Fields(strings.TrimPrefix(l, "VmRSS:")), " ")
		}
	}
	return ""
}
