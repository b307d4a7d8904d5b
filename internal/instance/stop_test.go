package instance

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Real processes: one that marks postgres stopped on SIGUSR2 and stays up
// (the manager waits for the container's stop signal): RequestStop returns
// at the marker, with the process still there. One that exits on SIGUSR2:
// it returns once it is gone. One that ignores SIGUSR2: it gives up with
// the context.
func TestRequestStop(t *testing.T) {
	// start runs script, which prints a line once its trap is installed,
	// and returns when that line arrives: a signal sent then meets the trap.
	start := func(script string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", script)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if line != "trapped\n" {
			_ = cmd.Process.Kill()
			t.Fatalf("the shell did not report its trap: %q, %v", line, err)
		}
		go func() { _ = cmd.Wait() }() // reap it, as PID 1 would
		return cmd
	}
	marker := filepath.Join(t.TempDir(), "stopped")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	draining := start(`trap 'sleep 0.2; : > ` + marker + `' USR2; echo trapped; while :; do sleep 0.05; done`)
	defer func() { _ = draining.Process.Kill() }()
	if err := RequestStop(ctx, draining.Process.Pid, marker, 10*time.Millisecond); err != nil {
		t.Fatalf("draining process: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("RequestStop returned before the marker: %v", err)
	}
	if !alive(draining.Process.Pid) {
		t.Fatal("the draining process is gone: it should wait for its stop signal")
	}

	exiting := start(`trap 'sleep 0.2; exit 0' USR2; echo trapped; while :; do sleep 0.05; done`)
	if err := RequestStop(ctx, exiting.Process.Pid, filepath.Join(t.TempDir(), "none"), 10*time.Millisecond); err != nil {
		t.Fatalf("exiting process: %v", err)
	}
	if alive(exiting.Process.Pid) {
		t.Fatal("RequestStop returned while the process still runs and wrote no marker")
	}

	stubborn := start(`trap '' USR2; echo trapped; while :; do sleep 0.05; done`)
	defer func() { _ = stubborn.Process.Kill() }()
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	if err := RequestStop(sctx, stubborn.Process.Pid, filepath.Join(t.TempDir(), "none"), 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("process ignoring SIGUSR2: err = %v, want the deadline", err)
	}
	if !alive(stubborn.Process.Pid) {
		t.Fatal("the process ignoring SIGUSR2 is gone")
	}

	// A process that is already gone is not an error.
	if err := RequestStop(context.Background(), exiting.Process.Pid, marker, 10*time.Millisecond); err != nil {
		t.Fatalf("gone process: %v", err)
	}
}
