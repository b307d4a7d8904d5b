package reaper

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"
)

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
	// sh forks a background sleep and exits at once: the sleep is orphaned
	// to us and, when it exits, becomes our zombie.
	orphanParent := exec.Command("sh", "-c", "sleep 0.2 & exit 0")
	if err := tr.Run(orphanParent); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let both exit; the reaper runs on SIGCHLD
	err := tr.Wait(own)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("tracked child: Wait = %v, want exit status 3 (the reaper must not steal it)", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.Reaped() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if tr.Reaped() == 0 {
		t.Fatal("the orphaned sleep was never reaped")
	}
	if z := ZombieChildren(os.Getpid()); len(z) != 0 {
		t.Errorf("zombies left: %v", z)
	}
}
