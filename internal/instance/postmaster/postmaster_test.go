package postmaster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/instance/reaper"
)

// fakePostgres is a real process standing in for the server: it logs a
// line with PostgreSQL's prefix, exits 0 on SIGINT/SIGTERM, and loops. The
// traps come before the first line, so once that line is seen a signal
// finds them installed (before, SIGINT's default action killed the shell
// silently about once in thirty runs under -race).
const fakePostgres = `#!/bin/sh
trap 'echo "2026-11-26 00:00:00.000 UTC [$$] LOG:  received fast shutdown request"; exit 0' INT
trap 'exit 0' TERM
echo "2026-11-26 00:00:00.000 UTC [$$] LOG:  fake postmaster started with $*"
while :; do sleep 0.02; done
`

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOwnerRestartsAfterCrashAndStopsOnRequest(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "postgres")
	if err := os.WriteFile(bin, []byte(fakePostgres), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	o := New(Options{Postgres: bin, PGData: dir, Log: log, Tracker: reaper.New(log), MinBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first := o.State()
	if !first.Wanted || !first.Running || first.PID == 0 {
		t.Fatalf("after Start: %+v", first)
	}
	waitFor(t, "relayed log line", func() bool { return strings.Contains(logs.String(), "fake postmaster started with -D "+dir) })
	if !strings.Contains(logs.String(), `"logger":"postgres"`) {
		t.Errorf("postgres output not relayed as JSON with logger=postgres: %s", logs.String())
	}

	// A crash: the owner restarts it.
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() bool { s := o.State(); return s.Running && s.PID != first.PID })
	second := o.State()
	if second.Crashes != 1 || second.Starts != 2 {
		t.Errorf("after crash: %+v", second)
	}
	waitFor(t, "restarted process's first line", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "fake postmaster started") && strings.Contains(line, fmt.Sprintf(`"pid":%d,`, second.PID)) {
				return true
			}
		}
		return false
	})

	// A requested stop is not a crash and is not undone.
	if err := o.Stop(ctx, Fast); err != nil {
		t.Fatal(err)
	}
	s := o.State()
	if s.Running || s.Wanted || s.Crashes != 1 {
		t.Errorf("after Stop: %+v", s)
	}
	waitFor(t, "SIGINT handled (Stop(Fast))", func() bool { return strings.Contains(logs.String(), "received fast shutdown request") })
	time.Sleep(100 * time.Millisecond)
	if s := o.State(); s.Running || s.Starts != 2 {
		t.Errorf("restarted after a requested stop: %+v", s)
	}
	if err := o.Signal(ctx, syscall.SIGHUP); err != ErrNotRunning {
		t.Errorf("Signal while stopped = %v, want ErrNotRunning", err)
	}
}
