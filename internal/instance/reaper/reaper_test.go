package reaper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// waitFor polls ok until it holds, failing the test after ten seconds.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestReapsOrphansButNotTrackedChildren: an orphaned grandchild re-parented
// to this (subreaper) process is reaped, while a child started through the
// tracker keeps its exit status for exec.Cmd.Wait.
func TestReapsOrphansButNotTrackedChildren(t *testing.T) {
	if err := BecomeSubreaper(); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	tr := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.RunReaper(ctx)

	// A tracked child that exits with status 3 while the reaper runs.
	own := exec.Command("sh", "-c", "exit 3")
	if err := tr.Start(own); err != nil {
		t.Fatal(err)
	}
	// sh forks a background subshell and exits at once: the subshell is
	// orphaned to us and blocks reading the pipe on its fd 3 until we close
	// the write end; then it exits and becomes our zombie.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	orphanParent := exec.Command("sh", "-c", "(read x <&3; exit 0) & exit 0")
	orphanParent.ExtraFiles = []*os.File{r}
	if err := tr.Run(orphanParent); err != nil {
		t.Fatal(err)
	}
	r.Close()

	// The tracked child has exited before the orphan does, so the reaper
	// pass that the orphan's SIGCHLD starts finds both zombies: the orphan
	// must be reaped and the tracked child left alone. (A reaper that
	// steals it leaves no process at all: that counts as exited too, and
	// Wait below says what went wrong.)
	waitFor(t, "the tracked child to exit", func() bool {
		return slices.Contains(ZombieChildren(os.Getpid()), own.Process.Pid) ||
			errors.Is(syscall.Kill(own.Process.Pid, 0), syscall.ESRCH)
	})
	w.Close()
	waitFor(t, "the orphan to be reaped", func() bool { return tr.Reaped() > 0 })
	err = tr.Wait(own)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("tracked child: Wait = %v, want exit status 3 (the reaper must not steal it)", err)
	}
	if z := ZombieChildren(os.Getpid()); len(z) != 0 {
		t.Errorf("zombies left: %v", z)
	}
}
