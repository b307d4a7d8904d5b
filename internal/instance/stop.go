package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// RequestStop asks the process pid (the instance manager, PID 1 of the
// container) to stop postgres gracefully with SIGUSR2 — smart shutdown,
// fast after the stop delay — and waits until marker exists (postgres is
// down) or the process is gone, or ctx ends.
//
// It is the postgres container's preStop hook. The kubelet stops a
// container with its image's STOPSIGNAL, and PostgreSQL images commonly
// declare SIGINT, which the manager (like postgres) takes as a fast
// shutdown; a preStop hook runs before that signal, and while it waits the
// kubelet sends nothing. The manager stays up once postgres is down, so
// this process returns before its container ends (which the kubelet would
// report as a failed hook) and the stop signal then ends the manager.
func RequestStop(ctx context.Context, pid int, marker string, poll time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil // already gone
		}
		return fmt.Errorf("signal process %d: %w", pid, err)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := os.Stat(marker); err == nil || !alive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d still running: %w", pid, ctx.Err())
		case <-t.C:
		}
	}
}

// alive reports whether pid exists and is not a zombie (an exited child
// whose parent has not reaped it yet has finished all the same).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain spaces or parentheses.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 || end+2 >= len(stat) {
		return true
	}
	return stat[end+2] != 'Z'
}
