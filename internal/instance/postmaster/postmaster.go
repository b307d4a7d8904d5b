// Package postmaster owns the PostgreSQL server process. Exactly one
// goroutine (Owner.Run) starts it, waits for it, restarts it after a crash
// and stops it; everything else asks that goroutine over a channel. The
// server's stderr is relayed as JSON log lines (package pglog).
//
// It must not import `k8s.io/client-go/...`, `github.com/jackc/pgx/...`,
// `internal/instance/role` or `internal/instance/lease`.
package postmaster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/pgsync/pgsync/internal/instance/pglog"
	"github.com/pgsync/pgsync/internal/instance/reaper"
)

// Mode is a PostgreSQL shutdown mode.
type Mode int

const (
	// Smart waits for clients to disconnect (SIGTERM).
	Smart Mode = iota
	// Fast disconnects clients and shuts down cleanly (SIGINT).
	Fast
	// Immediate aborts; the next start runs crash recovery (SIGQUIT).
	Immediate
)

func (m Mode) signal() syscall.Signal {
	switch m {
	case Smart:
		return syscall.SIGTERM
	case Fast:
		return syscall.SIGINT
	default:
		return syscall.SIGQUIT
	}
}

func (m Mode) String() string { return [...]string{"smart", "fast", "immediate"}[m] }

// Options configure an Owner.
type Options struct {
	// Postgres is the path of the postgres binary.
	Postgres string
	PGData   string
	// Env is the server's environment (no secrets).
	Env     []string
	Log     *slog.Logger
	Tracker *reaper.Tracker
	// MinBackoff and MaxBackoff bound the delay between crash restarts.
	MinBackoff, MaxBackoff time.Duration
}

// State is a snapshot of the owner's view.
type State struct {
	// Wanted: the server is meant to run; after a crash it is restarted.
	Wanted bool
	// Running: a postmaster process exists.
	Running bool
	PID     int
	// Starts counts spawned postmasters; Crashes counts unplanned exits.
	Starts, Crashes int
	LastExit        string
}

type cmdKind int

const (
	cmdStart cmdKind = iota
	cmdStop
	cmdSignal
)

type command struct {
	kind  cmdKind
	mode  Mode
	sig   syscall.Signal
	reply chan error
}

// Owner is the single owner of the postmaster.
type Owner struct {
	opts   Options
	cmds   chan command
	notify chan struct{}

	mu    sync.Mutex
	state State
}

// New returns an Owner; call Run in one goroutine.
func New(o Options) *Owner {
	if o.MinBackoff == 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Second
	}
	return &Owner{opts: o, cmds: make(chan command), notify: make(chan struct{}, 1)}
}

// Changed is signalled (coalesced) whenever the state changes.
func (o *Owner) Changed() <-chan struct{} { return o.notify }

// State returns the current snapshot.
func (o *Owner) State() State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state
}

func (o *Owner) set(f func(*State)) {
	o.mu.Lock()
	f(&o.state)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *Owner) do(ctx context.Context, c command) error {
	c.reply = make(chan error, 1)
	select {
	case o.cmds <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start makes the server wanted and spawns it if it is not running. It
// returns once the process exists (not once it accepts connections).
func (o *Owner) Start(ctx context.Context) error { return o.do(ctx, command{kind: cmdStart}) }

// Stop makes the server unwanted, signals it with mode and returns once it
// has exited. A second Stop with a harsher mode escalates.
func (o *Owner) Stop(ctx context.Context, m Mode) error {
	return o.do(ctx, command{kind: cmdStop, mode: m})
}

// Signal forwards sig (e.g. SIGHUP to reload) to a running postmaster.
func (o *Owner) Signal(ctx context.Context, sig syscall.Signal) error {
	return o.do(ctx, command{kind: cmdSignal, sig: sig})
}

// ErrNotRunning is returned by Signal when no postmaster runs.
var ErrNotRunning = errors.New("postgres is not running")

// Run is the owning goroutine. When ctx ends it stops a running server
// (fast) and returns after it exited.
func (o *Owner) Run(ctx context.Context) {
	var (
		proc     *exec.Cmd
		exited   = make(chan error, 1)
		started  time.Time
		stoppers []chan error
		backoff  = o.opts.MinBackoff
		restart  <-chan time.Time
		wanted   bool
		stopping bool
	)
	spawn := func() error {
		cmd, err := o.spawn()
		if err != nil {
			return err
		}
		proc, started, stopping = cmd, time.Now(), false
		go func() { exited <- o.opts.Tracker.Wait(cmd) }()
		o.set(func(s *State) { s.Running, s.PID = true, cmd.Process.Pid; s.Starts++ })
		return nil
	}
	scheduleRestart := func() {
		o.opts.Log.Info("restarting postgres", "after", backoff.String())
		restart = time.After(backoff)
		backoff = min(backoff*2, o.opts.MaxBackoff)
	}
	for {
		select {
		case c := <-o.cmds:
			switch c.kind {
			case cmdStart:
				wanted = true
				o.set(func(s *State) { s.Wanted = true })
				var err error
				if proc == nil {
					restart = nil
					if err = spawn(); err != nil {
						scheduleRestart()
					}
				}
				c.reply <- err
			case cmdStop:
				wanted, restart = false, nil
				o.set(func(s *State) { s.Wanted = false })
				if proc == nil {
					c.reply <- nil
					continue
				}
				stopping = true
				o.opts.Log.Info("stopping postgres", "mode", c.mode.String(), "pid", proc.Process.Pid)
				if err := proc.Process.Signal(c.mode.signal()); err != nil && !errors.Is(err, os.ErrProcessDone) {
					o.opts.Log.Warn("signal postgres", "error", err.Error())
				}
				stoppers = append(stoppers, c.reply)
			case cmdSignal:
				if proc == nil {
					c.reply <- ErrNotRunning
					continue
				}
				c.reply <- proc.Process.Signal(c.sig)
			}
		case err := <-exited:
			ran := time.Since(started)
			exit := "exited"
			if err != nil {
				exit = err.Error()
			}
			pid := proc.Process.Pid
			proc = nil
			crashed := !stopping
			o.set(func(s *State) {
				s.Running, s.PID, s.LastExit = false, 0, exit
				if crashed {
					s.Crashes++
				}
			})
			if crashed {
				o.opts.Log.Error("postgres exited unexpectedly", "pid", pid, "status", exit, "ran", ran.Round(time.Millisecond).String())
			} else {
				o.opts.Log.Info("postgres stopped", "pid", pid, "status", exit)
			}
			for _, s := range stoppers {
				s <- nil
			}
			stoppers = nil
			if ran > 30*time.Second {
				backoff = o.opts.MinBackoff
			}
			if wanted {
				scheduleRestart()
			}
		case <-restart:
			restart = nil
			if wanted && proc == nil {
				if err := spawn(); err != nil {
					o.opts.Log.Error("start postgres", "error", err.Error())
					scheduleRestart()
				}
			}
		case <-ctx.Done():
			if proc != nil {
				o.opts.Log.Info("stopping postgres on exit", "mode", "fast")
				_ = proc.Process.Signal(syscall.SIGINT)
				<-exited
				o.set(func(s *State) { s.Running, s.PID = false, 0 })
			}
			for _, s := range stoppers {
				s <- nil
			}
			return
		}
	}
}

func (o *Owner) spawn() (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	cmd := exec.Command(o.opts.Postgres, "-D", o.opts.PGData)
	cmd.Env = o.opts.Env
	// Its own process group: a terminal's Ctrl-C or a signal meant for the
	// manager reaches postgres only as the manager decides.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// An *os.File goes to the child as is: no copying goroutine, so Wait
	// does not hang while orphaned backends still hold the pipe.
	cmd.Stdout, cmd.Stderr = w, w
	err = o.opts.Tracker.Start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	o.opts.Log.Info("postgres started", "pid", cmd.Process.Pid)
	go func() {
		pglog.Relay(o.opts.Log, "postgres", r)
		r.Close()
	}()
	return cmd, nil
}
