package instance

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"
)

// A real process that exits on SIGTERM a moment later: RequestStop returns
// once it is gone. One that ignores SIGTERM: RequestStop gives up with the
// context.
func TestRequestStop(t *testing.T) {
	// start runs script, which prints a line once its trap is installed,
	// and returns when that line arrives: a SIGTERM sent then meets the trap.
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

	graceful := start(`trap 'sleep 0.2; exit 0' TERM; echo trapped; while :; do sleep 0.05; done`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := RequestStop(ctx, graceful.Process.Pid, 10*time.Millisecond); err != nil {
		t.Fatalf("graceful process: %v", err)
	}
	if alive(graceful.Process.Pid) {
		t.Fatal("RequestStop returned while the process still runs")
	}

	stubborn := start(`trap '' TERM; echo trapped; while :; do sleep 0.05; done`)
	defer func() { _ = stubborn.Process.Kill() }()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := RequestStop(ctx, stubborn.Process.Pid, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("process ignoring SIGTERM: err = %v, want the deadline", err)
	}
	if !alive(stubborn.Process.Pid) {
		t.Fatal("the process ignoring SIGTERM is gone")
	}

	// A process that is already gone is not an error.
	if err := RequestStop(context.Background(), graceful.Process.Pid, 10*time.Millisecond); err != nil {
		t.Fatalf("gone process: %v", err)
	}
}
