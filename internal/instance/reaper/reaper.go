// Package reaper carries the instance manager's PID-1 duty of reaping
// zombies.
//
// Why: in a container the instance manager is PID 1. When the postmaster
// dies (kill -9, OOM) its backends are re-parented to PID 1, and so is any
// grandchild a tool leaves behind. The kernel keeps every exited child as a
// zombie until its parent waits for it; nobody else will, so unreaped
// zombies pile up and fill the PID table. Outside a container (tests) the
// manager makes itself a child subreaper so the same happens to it.
//
// The catch: a blanket wait4(-1) would also steal the exit status of the
// processes the manager started itself (postgres, initdb, pg_basebackup),
// whose exec.Cmd.Wait would then fail with ECHILD. So every process the
// manager starts goes through Tracker.Start, and the reaper only waits for
// zombies whose PID it does not track, found in /proc.
//
// It must not import `pgsync/...`.
package reaper

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Tracker knows which children belong to an exec.Cmd and reaps the rest.
type Tracker struct {
	mu      sync.Mutex
	tracked map[int]bool
	log     *slog.Logger
	reaped  int
}

// New returns a Tracker. It does not start reaping; call Run.
func New(log *slog.Logger) *Tracker {
	return &Tracker{tracked: map[int]bool{}, log: log}
}

// BecomeSubreaper makes orphaned descendants re-parent to this process when
// it is not PID 1 (a no-op for PID 1, which is the reaper by definition).
func BecomeSubreaper() error {
	if os.Getpid() == 1 {
		return nil
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Start starts cmd and remembers its PID until Wait; the lock makes the
// reaper see the PID before it can see the process exit.
func (t *Tracker) Start(cmd *exec.Cmd) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	t.tracked[cmd.Process.Pid] = true
	return nil
}

// Wait waits for a command started with Start and forgets its PID.
func (t *Tracker) Wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	t.mu.Lock()
	delete(t.tracked, cmd.Process.Pid)
	t.mu.Unlock()
	return err
}

// Run starts cmd and waits for it (exec.Cmd.Run through the tracker).
func (t *Tracker) Run(cmd *exec.Cmd) error {
	if err := t.Start(cmd); err != nil {
		return err
	}
	return t.Wait(cmd)
}

// Output is exec.Cmd.Output through the tracker.
func (t *Tracker) Output(cmd *exec.Cmd) ([]byte, error) {
	var out strings.Builder
	cmd.Stdout = &out
	err := t.Run(cmd)
	return []byte(out.String()), err
}

// Reaped returns how many foreign zombies were reaped so far.
func (t *Tracker) Reaped() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reaped
}

// RunReaper reaps on every SIGCHLD (and every few seconds, as signals coalesce)
// until ctx ends.
func (t *Tracker) RunReaper(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		t.ReapOnce()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

// ReapOnce waits for every zombie child that no exec.Cmd owns.
func (t *Tracker) ReapOnce() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pid := range zombieChildren(os.Getpid()) {
		if t.tracked[pid] {
			continue
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err == nil && got == pid {
			t.reaped++
			t.log.Info("reaped orphan", "pid", pid, "status", ws.ExitStatus())
		}
	}
}

// ZombieChildren lists the PIDs of parent's children in state Z.
func ZombieChildren(parent int) []int { return zombieChildren(parent) }

func zombieChildren(parent int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) S ppid …": comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] != "Z" {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil && pp == parent {
			out = append(out, pid)
		}
	}
	return out
}
