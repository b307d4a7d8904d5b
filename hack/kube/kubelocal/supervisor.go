package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// supervise is the long-running parent of every component (`kubelocal run`,
// started by `up`). Being their parent, it reaps them; on SIGTERM it stops
// them in order — kubelet first, then every pod through the CRI (so CNI
// removes their network namespaces), then the rest — and exits.
func supervise(ctx context.Context, p paths) error {
	nodeIPb, err := os.ReadFile(p.nodeIPFile())
	if err != nil {
		return fmt.Errorf("read node IP (run `kubelocal up`, not `run`): %w", err)
	}
	nodeIP := strings.TrimSpace(string(nodeIPb))
	if err := writePID(p.pidFile("supervisor"), os.Getpid()); err != nil {
		return err
	}
	s := &supervisor{p: p, nodeIP: nodeIP, children: map[string]*child{}}
	err = s.start(ctx)
	if err == nil {
		if werr := os.WriteFile(p.readyFile(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); werr != nil {
			err = werr
		} else {
			slog.Info("cluster ready")
			s.watch(ctx)
		}
	}
	if err != nil {
		slog.Error("start-up failed", "err", err)
		_ = os.WriteFile(p.readyFile()+".failed", []byte(err.Error()+"\n"), 0o644)
	}
	s.shutdown()
	_ = os.Remove(p.readyFile())
	_ = os.Remove(p.pidFile("supervisor"))
	return err
}

type supervisor struct {
	p        paths
	nodeIP   string
	children map[string]*child
	order    []string
	stopReg  func()
	cancel   context.CancelFunc
}

func (s *supervisor) start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(ctx)
	stopReg, err := startRegistry(ctx, s.p)
	if err != nil {
		return err
	}
	s.stopReg = stopReg
	comps := components(s.p, s.nodeIP)
	byName := map[string]component{}
	for _, c := range comps {
		byName[c.name] = c
	}
	admin, err := clientcmd.BuildConfigFromFlags("", s.p.kubeconfig())
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	steps := []struct {
		name  string
		ready func(context.Context) error
	}{
		{"etcd", func(ctx context.Context) error {
			return waitURL(ctx, http.DefaultClient, etcdClientURL+"/health", "true")
		}},
		{"kube-apiserver", func(ctx context.Context) error {
			c, err := rest.HTTPClientFor(admin)
			if err != nil {
				return fmt.Errorf("client for %s: %w", admin.Host, err)
			}
			if err := waitURL(ctx, c, admin.Host+"/readyz", "ok"); err != nil {
				return err
			}
			return bootstrapObjects(ctx, admin)
		}},
		{"kube-controller-manager", func(ctx context.Context) error {
			return waitURL(ctx, insecureClient(), "https://127.0.0.1:10257/healthz", "ok")
		}},
		{"kube-scheduler", func(ctx context.Context) error {
			return waitURL(ctx, insecureClient(), "https://127.0.0.1:10259/healthz", "ok")
		}},
		{"containerd", func(ctx context.Context) error { return waitSocket(ctx, s.p.containerdSock()) }},
		{"kubelet", func(ctx context.Context) error {
			return waitURL(ctx, http.DefaultClient, "http://127.0.0.1:10248/healthz", "ok")
		}},
		{"kube-proxy", func(ctx context.Context) error {
			return waitURL(ctx, http.DefaultClient, "http://127.0.0.1:10256/healthz", "")
		}},
		{"coredns", func(ctx context.Context) error {
			return waitURL(ctx, http.DefaultClient, "http://127.0.0.1:18181/ready", "OK")
		}},
		{"kube-network-policies", func(ctx context.Context) error {
			return waitURL(ctx, http.DefaultClient, "http://127.0.0.1:"+networkPoliciesMetricsPort+"/metrics", "")
		}},
	}
	for _, st := range steps {
		t0 := time.Now()
		ch, err := startChild(s.p, byName[st.name])
		if ch != nil {
			s.children[st.name] = ch
			s.order = append(s.order, st.name)
		}
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err = waitReady(rctx, ch, st.ready)
		cancel()
		if err != nil {
			return fmt.Errorf("%s not ready: %w (log: %s)", st.name, err, s.p.logFile(st.name))
		}
		slog.Info("component ready", "name", st.name, "pid", ch.cmd.Process.Pid, "seconds", time.Since(t0).Seconds())
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("client for the provisioner: %w", err)
	}
	go runProvisioner(ctx, cs, s.p)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return waitNodeReady(rctx, cs)
}

// waitReady runs ready until it succeeds, the child exits or ctx ends.
func waitReady(ctx context.Context, ch *child, ready func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- ready(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ch.done:
		return fmt.Errorf("exited: %v", ch.err)
	}
}

// watch waits for the end, logging any component that exits on its own.
func (s *supervisor) watch(ctx context.Context) {
	for {
		for _, n := range s.order {
			ch := s.children[n]
			if ch.exited() && !ch.cmd.ProcessState.Success() {
				slog.Error("component exited", "name", n, "err", ch.err)
				delete(s.children, n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (s *supervisor) shutdown() {
	if s.cancel != nil {
		s.cancel()
	}
	stop := func(n string, grace time.Duration) {
		if ch := s.children[n]; ch != nil {
			ch.stop(grace)
			slog.Info("stopped", "name", n)
		}
	}
	stop("kubelet", 20*time.Second)
	if s.children["containerd"] != nil && !s.children["containerd"].exited() {
		if err := removeAllPods(s.p); err != nil {
			slog.Error("remove pods through the CRI", "err", err)
		}
	}
	stop("containerd", 20*time.Second)
	// The agent removes its nftables table on SIGINT only (SIGTERM would
	// leave it; teardownNetwork removes it too).
	if ch := s.children["kube-network-policies"]; ch != nil {
		ch.stopWith(syscall.SIGINT, 10*time.Second)
		slog.Info("stopped", "name", "kube-network-policies")
	}
	stop("kube-proxy", 10*time.Second)
	if s.children["kube-proxy"] != nil {
		out, err := exec.Command(s.p.kubeBin("kube-proxy"), "--cleanup").CombinedOutput()
		if err != nil {
			slog.Error("kube-proxy --cleanup", "err", err, "output", string(out))
		}
	}
	for _, n := range []string{"coredns", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		stop(n, 15*time.Second)
	}
	if s.stopReg != nil {
		s.stopReg()
	}
	for _, n := range componentNames {
		_ = os.Remove(s.p.pidFile(n))
	}
}

func insecureClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // health of a loopback component only
	}}
}

// waitURL polls url until it answers 200 and its body contains want.
func waitURL(ctx context.Context, c *http.Client, url, want string) error {
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			buf := make([]byte, 1024)
			n, _ := resp.Body.Read(buf)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(buf[:n]), want) {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(buf[:n])))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %s)", url, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func waitSocket(ctx context.Context, path string) error {
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
