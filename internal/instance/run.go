package instance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/pgsync/pgsync/internal/instance/httpapi"
	"github.com/pgsync/pgsync/internal/instance/lease"
	"github.com/pgsync/pgsync/internal/instance/pgbin"
	"github.com/pgsync/pgsync/internal/instance/postmaster"
	"github.com/pgsync/pgsync/internal/instance/reaper"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Run is `pgsync instance run`: it wires the reaper, the postmaster owner,
// the Lease watch, the HTTP server and the alignment loop, and handles the
// signals PID 1 receives. It returns after postgres has stopped.
//
// SIGTERM: smart shutdown, fast after StopDelay. SIGINT: fast. SIGQUIT:
// immediate. SIGHUP: reload postgres (the parameters file is re-read
// every second regardless).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		return errors.New("the instance manager must not run as root (PostgreSQL refuses to); run it as the image's postgres user")
	}
	klog.SetSlogLogger(log.With("logger", "client-go"))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	bin, err := pgbin.Find(cfg.PGBin, pgbin.DefaultGlobs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.RunDir, 0o700); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	tracker := reaper.New(log.With("logger", "reaper"))
	if err := reaper.BecomeSubreaper(); err != nil {
		log.Warn("cannot become child subreaper; orphans go to PID 1", "error", err.Error())
	}
	var wg sync.WaitGroup
	bg := func(ctx context.Context, f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	reapCtx, stopReaper := context.WithCancel(context.Background())
	defer func() { stopReaper(); wg.Wait() }()
	bg(reapCtx, tracker.RunReaper)

	restCfg, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	// Protobuf for built-in types, and a client-side rate limit that never
	// delays the handful of writes a switchover makes in a burst (the
	// default is 5 QPS, burst 10).
	restCfg.ContentType = "application/vnd.kubernetes.protobuf"
	restCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	restCfg.QPS, restCfg.Burst = 50, 100
	restCfg.UserAgent = "pgsync-instance/" + cfg.Instance
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	lk := lease.New(client, cfg.Namespace, cfg.Cluster, cfg.LeaseDuration, time.Now, log.With("logger", "lease"))
	kubeCtx, stopKube := context.WithCancel(context.Background())
	defer stopKube()
	bg(kubeCtx, lk.Run)

	owner := postmaster.New(postmaster.Options{
		Postgres: bin.Path("postgres"), PGData: cfg.PGData, Env: postgresEnv(os.Environ()),
		Log: log, Tracker: tracker,
	})
	ownerCtx, stopOwner := context.WithCancel(context.Background())
	defer stopOwner()
	bg(ownerCtx, owner.Run)

	db, err := newLocalDB(cfg.RunDir, cfg.Port)
	if err != nil {
		return err
	}
	statusDB, _ := newLocalDB(cfg.RunDir, cfg.Port)
	m := &Manager{
		cfg: cfg, log: log, bin: bin, tracker: tracker, owner: owner, lease: lk, db: db, now: time.Now,
		probeRoute: dialRoute(cfg.Cluster, cfg.Namespace, cfg.Port),
		counters:   newManagerCounters(),
		peers:      cfg.peerSource(),
		secrets:    fileSecrets{dir: os.Getenv(pc.EnvRoleSecretsDir)},
		status:     &statusBox{s: Status{Cluster: cfg.Cluster, Instance: cfg.Instance, Role: "stopped", PendingRestart: []string{}}},
	}
	if err := m.writePassFile("", 0); err != nil {
		return err
	}
	m.random = rand.Reader
	if out, err := m.output(bin.Path("pg_basebackup"), "--version"); err == nil {
		m.libpqMajor = libpqMajor(out)
	}
	// Before the first configuration is written: ssl and hostssl rules
	// from the start.
	if _, err := m.refreshTLS(); err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	m.refreshUserTLS()
	m.nextTLSCheck = m.now().Add(tlsCheckEvery)
	lk.SetTLS(m.tls.on)

	srv := &http.Server{Addr: cfg.HTTPAddr, Handler: httpapi.Handler(m), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "error", err.Error())
		}
	}()
	defer srv.Close()
	if cfg.MetricsAddr != "" {
		stop, err := m.serveMetrics(cfg.MetricsAddr, cfg.MetricsDefaultQueries, log)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		defer stop()
	}
	statusCtx, stopStatus := context.WithCancel(context.Background())
	defer stopStatus()
	statusDone := make(chan struct{})
	go func() { defer close(statusDone); m.refreshStatus(statusCtx, statusDB) }()

	files := cfg.files()
	log.Info("instance manager started", "cluster", cfg.Cluster, "namespace", cfg.Namespace, "instance", cfg.Instance,
		"pgdata", cfg.PGData, "bin", string(bin), "port", cfg.Port, "http", cfg.HTTPAddr, "pid", os.Getpid(),
		"parametersFile", files.params, "configRevisionFile", files.revision, "hbaFile", files.hba,
		"stopDelay", cfg.StopDelay.String(), "switchoverDelay", cfg.SwitchoverDelay.String(),
		"leaseDuration", cfg.LeaseDuration.String(), "failoverDelay", cfg.FailoverDelay.String(), "peers", cfg.Peers,
		"tls", m.tls.on)

	// A marker left by an earlier container of this pod (RunDir outlives
	// it) would end the next preStop hook at once.
	marker := filepath.Join(cfg.RunDir, pc.StopMarker)
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", marker, err)
	}
	alignCtx, stopAlign := context.WithCancel(context.Background())
	alignDone := make(chan struct{})
	go func() {
		defer close(alignDone)
		if !lk.WaitSynced(alignCtx) {
			return
		}
		m.align(alignCtx)
	}()

	mode := postmaster.Fast
	drain := false // asked by the preStop hook: stop postgres, then wait for the stop signal
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				log.Info("reloading postgres", "signal", s.String())
				if err := owner.Signal(ctx, syscall.SIGHUP); err != nil {
					log.Warn("forward SIGHUP", "error", err.Error())
				}
				continue
			case syscall.SIGTERM:
				mode = postmaster.Smart
			case syscall.SIGUSR2:
				mode, drain = postmaster.Smart, true
			case syscall.SIGQUIT:
				mode = postmaster.Immediate
			}
			log.Info("shutting down", "signal", s.String(), "mode", mode.String())
			break wait
		}
	}
	// The manager's own sessions go first: a smart shutdown waits for
	// every session to end, ours included.
	stopAlign()
	<-alignDone
	stopStatus()
	<-statusDone
	db.close()
	m.shutdownPostgres(mode, sigs)
	if drain {
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			log.Error("write the stop marker", "file", marker, "error", err.Error())
		}
		log.Info("postgres stopped for the preStop hook; exiting at the container's stop signal")
		select {
		case <-ctx.Done():
		case <-sigs:
		}
	}
	return nil
}

// shutdownPostgres stops postgres with mode; a smart shutdown escalates to
// fast after StopDelay (or at once on a second SIGTERM/SIGINT).
func (m *Manager) shutdownPostgres(mode postmaster.Mode, sigs <-chan os.Signal) {
	if mode == postmaster.Smart {
		smart := m.cfg.StopDelay
		// A smart shutdown lets open sessions keep committing, and the
		// loop no longer renews: a primary holding the Lease escalates at
		// the fencing moment at the latest (the default 30 s stop delay
		// outlasts the default 15 s Lease).
		if m.lease.Current().Holder == m.cfg.Instance && !m.lastRenew.IsZero() {
			if u := time.Until(m.fenceAt()); u < smart {
				smart = max(u, 0)
				m.log.Info("smart shutdown of the primary limited by the Lease", "for", smart.Round(time.Millisecond).String())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), smart)
		done := make(chan error, 1)
		go func() { done <- m.owner.Stop(ctx, postmaster.Smart) }()
		select {
		case err := <-done:
			cancel()
			if err == nil {
				return
			}
		case <-sigs:
			cancel()
		}
		m.log.Info("smart shutdown did not finish: fast shutdown", "stopDelay", m.cfg.StopDelay.String(), "after", smart.Round(time.Millisecond).String())
		mode = postmaster.Fast
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.owner.Stop(ctx, mode); err != nil {
		m.log.Error("stop postgres", "mode", mode.String(), "error", err.Error())
		_ = m.owner.Stop(context.Background(), postmaster.Immediate)
	}
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster Kubernetes config (or --kubeconfig): %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

// peerSource is --peers, else the headless Service's addresses on this
// manager's HTTP port.
func (c Config) peerSource() peerSource {
	if len(c.Peers) > 0 {
		return staticPeers(c.Peers)
	}
	_, port, err := net.SplitHostPort(c.HTTPAddr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		p = pc.HTTPPort
	}
	return headlessPeers(c.Cluster, c.Namespace, p)
}
