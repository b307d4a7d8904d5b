package instance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pgsync/pgsync/internal/instance/pglog"
)

// runLogged runs a PostgreSQL tool with its output relayed as JSON lines.
func (m *Manager) runLogged(ctx context.Context, name string, path string, args ...string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = postgresEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = w, w
	err = m.tracker.Start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { pglog.Relay(m.log, name, r); r.Close(); close(done) }()
	err = m.tracker.Wait(cmd)
	<-done
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// output runs a tool and returns its stdout.
func (m *Manager) output(path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = postgresEnv(os.Environ())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := m.tracker.Output(cmd)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
