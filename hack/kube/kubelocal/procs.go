package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a component process started by the supervisor.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startChild starts c with output appended to its log and its PID recorded.
func startChild(p paths, c component) (*child, error) {
	if err := os.MkdirAll(filepath.Dir(p.logFile(c.name)), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p.logFile(c.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", c.name, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "==== %s %s %s\n", time.Now().UTC().Format(time.RFC3339), c.bin, strings.Join(c.args, " "))
	cmd := exec.Command(c.bin, c.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	cmd.Env = append(cmd.Env, c.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.name, err)
	}
	ch := &child{name: c.name, cmd: cmd, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	if err := writePID(p.pidFile(c.name), cmd.Process.Pid); err != nil {
		return ch, err
	}
	return ch, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop signals the child's process group with SIGTERM, then SIGKILL.
func (c *child) stop(grace time.Duration) { c.stopWith(syscall.SIGTERM, grace) }

// stopWith sends sig, then SIGKILL after grace.
func (c *child) stopWith(sig syscall.Signal, grace time.Duration) {
	if c.exited() {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

func writePID(path string, pid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// alive reports whether pid runs (a zombie counts as gone: this machine's
// PID 1 reaps orphans slowly, so kill -0 would say "alive" for a while).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// exeOf returns the executable path of pid ("" if unknown), without the
// " (deleted)" suffix of a replaced binary.
func exeOf(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(exe, " (deleted)")
}

// pidAliveAs reports whether the PID in file runs the executable named base
// (guards against a recycled PID).
func pidAliveAs(file, base string) (int, bool) {
	pid, err := readPID(file)
	if err != nil || !alive(pid) {
		return pid, false
	}
	return pid, filepath.Base(exeOf(pid)) == base
}

// waitGone waits until none of pids runs, up to timeout.
func waitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, strconv.Itoa(pid))
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running after %s: %s", timeout, strings.Join(left, " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killAll sends sig to each pid, ignoring those already gone.
func killAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(os.Stderr, "kubelocal: kill %d: %v\n", pid, err)
		}
	}
}
