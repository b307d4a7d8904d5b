package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/daemon"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/fleet"
	"github.com/pgsync/pgsync/internal/metrics"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	"github.com/pgsync/pgsync/internal/webhook"
)

func init() { commands = append(commands, newRunCmd) }

type runArgs struct {
	source        desired.Source
	kube          kubeArgs
	interval      time.Duration
	jitter        time.Duration
	prune         bool
	instanceImage string
	pullPolicy    string
	stepTimeout   time.Duration
	lockDuration  time.Duration
	httpAddr      string
	leaderElect   bool
	leaseNS       string
	leaseName     string
	logLevel      string
	maxRolling    int
	onHalt        string
	window        windowFlag
	webhookSecret string
	allowRewind   bool
	statusRefresh time.Duration
	watch         bool
	pprof         bool
	imagePolicy   imagePolicyFlag
}

func newRunCmd() *cobra.Command {
	var args runArgs
	cmd := &cobra.Command{
		Use:   "run",
		Short: "The GitOps daemon: watch Git and converge the clusters, one safe step at a time",
		Long: `Run watches --repo at --ref and converges the clusters to the Clusters under
--path: every --interval (plus jitter) it fetches, loads and validates the
commit when it moved, observes every managed cluster and gives each at most
one step of its plan, then observes again — at once while a rollout is
under way. A crash anywhere resumes from what runs. A commit that fails
validation is applied nowhere; the daemon keeps the last good commit and
says why. So is a --ref that does not descend from the commit last applied
(unless --allow-rewind), and, with --verify-key, one that brings in any
commit not signed by a key of the ring. A halted or failing cluster never
blocks another.

With --leader-elect (the default in a cluster), replicas elect one leader
through a Lease; the others wait and take over when it stops renewing.

It serves /healthz, /readyz, /status (the last cycle, JSON), /metrics
(Prometheus) and, with --webhook-secret-file, POST /webhook on --http-addr,
and logs JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDaemon(cmd, args) },
	}
	registerSource(cmd, &args.source)
	args.kube.register(cmd)
	f := cmd.Flags()
	f.DurationVar(&args.interval, "interval", time.Minute, "time between cycles")
	f.DurationVar(&args.jitter, "jitter", 0, "up to this much is added to each interval at random (default a tenth of --interval)")
	f.BoolVar(&args.prune, "prune", false, "delete clusters removed from Git (volumes and Secrets are kept) instead of orphaning them")
	f.StringVar(&args.instanceImage, "instance-image", os.Getenv("PGSYNC_INSTANCE_IMAGE"), "the pgsync image of the pods' init container (env PGSYNC_INSTANCE_IMAGE; default: the image a running cluster already uses)")
	f.StringVar(&args.pullPolicy, "instance-image-pull-policy", "", "pull policy of --instance-image: Always, IfNotPresent or Never")
	f.DurationVar(&args.stepTimeout, "step-timeout", apply.DefaultStepTimeout, "a step not complete after this long halts its cluster")
	f.DurationVar(&args.lockDuration, "lock-duration", apply.DefaultLockDuration, "how long the cluster's apply lock (Lease NAME-apply) outlives a pgsync killed while holding it (whole seconds, 6s to 10m)")
	f.StringVar(&args.httpAddr, "http-addr", ":8080", "address of /healthz, /readyz and /status")
	f.BoolVar(&args.leaderElect, "leader-elect", os.Getenv("KUBERNETES_SERVICE_HOST") != "", "elect one active replica through a Lease (default: on inside a cluster)")
	f.StringVar(&args.leaseNS, "leader-election-namespace", envOr("POD_NAMESPACE", "pgsync"), "namespace of the leader election Lease")
	f.StringVar(&args.leaseName, "leader-election-id", "pgsync-leader", "name of the leader election Lease")
	f.StringVar(&args.logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&args.maxRolling, "max-rolling", 1, "at most this many clusters between the first and last restart or switchover of a rollout at once")
	f.StringVar(&args.onHalt, "on-halt", "stop", "a halted cluster stops new rollouts of its commit (stop) or only itself (continue)")
	f.BoolVar(&args.allowRewind, "allow-rewind", false, "accept a --ref that does not descend from the commit last applied (a force-push or a rollback); refused otherwise")
	f.StringVar(&args.webhookSecret, "webhook-secret-file", "", "file holding the push webhook's shared secret: POST /webhook (GitHub, GitLab, Gitea, Forgejo) then triggers a fetch at once (default: no webhook)")
	args.window.register(f, "their restarts and switchovers wait for it (default: any time)")
	f.BoolVar(&args.pprof, "debug-pprof", false, "also serve Go's runtime profiles (heap, CPU, goroutines) at /debug/pprof/ on --http-addr")
	f.BoolVar(&args.watch, "watch", true, "observe through watches (informers) and skip clusters converged and unchanged since; false lists every object each cycle")
	f.DurationVar(&args.statusRefresh, "status-refresh", 5*time.Minute, "with --watch, a converged cluster none of whose objects changed has its instances' /status read again this often")
	args.imagePolicy.register(f)
	return cmd
}

func runDaemon(cmd *cobra.Command, args runArgs) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(args.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: allowed: debug, info, warn, error", args.logLevel)
	}
	log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
	// The daemon's heap is mostly its watch caches, which change little: a
	// collection at 1.5× the live heap instead of Go's 2× keeps its memory
	// near what it holds, for little CPU (it allocates little when idle;
	// bench/fleet). GOGC, when set, decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	klog.SetSlogLogger(log.With("logger", "client-go"))
	switch corev1.PullPolicy(args.pullPolicy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("--instance-image-pull-policy %q: allowed: Always, IfNotPresent, Never", args.pullPolicy)
	}
	if err := apply.CheckLockDuration(args.lockDuration); err != nil {
		return err
	}
	if args.interval <= 0 || args.stepTimeout <= 0 || args.statusRefresh <= 0 {
		return errors.New("--interval, --step-timeout and --status-refresh must be positive")
	}
	if args.maxRolling < 1 {
		return fmt.Errorf("--max-rolling %d: at least 1", args.maxRolling)
	}
	if args.onHalt != string(fleet.OnHaltStop) && args.onHalt != string(fleet.OnHaltContinue) {
		return fmt.Errorf("--on-halt %q: allowed: stop, continue", args.onHalt)
	}
	defaultWindow, err := args.window.schedule()
	if err != nil {
		return err
	}
	images, err := args.imagePolicy.gate()
	if err != nil {
		return err
	}
	if images != nil && args.instanceImage == "" {
		return errors.New("--image-policy needs --instance-image (or PGSYNC_INSTANCE_IMAGE): the instance image is verified and pinned like the clusters' images, never kept unverified from what runs")
	}
	k, err := args.kube.connect()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	identity := fmt.Sprintf("%s/%d", host, os.Getpid())
	obs := args.kube.observeOptions(k)
	exec := &apply.Executor{Client: k.typed, Dynamic: k.dynamic, Status: obs.Status, InstanceImage: args.instanceImage,
		PullPolicy: corev1.PullPolicy(args.pullPolicy), Random: rand.Reader, Log: log, StepTimeout: args.stepTimeout,
		LockDuration: args.lockDuration}
	m := metrics.New()
	run := &apply.Run{Exec: exec, Options: plan.Options{Prune: args.prune}, Owner: "pgsync-run " + identity,
		Progress: func(ev apply.ProgressEvent) {
			var halt *apply.HaltError
			switch {
			case !ev.Finished:
				m.StepStarted(string(ev.Step.Action))
			case errors.As(ev.Err, &halt):
				m.StepHalted(string(ev.Step.Action))
			case ev.Err == nil:
				m.StepFinished(string(ev.Step.Action))
			}
		}}
	d := daemon.New(daemon.Config{Source: args.source, Interval: args.interval, Jitter: args.jitter,
		Namespace: args.kube.namespace, Prune: args.prune, Owner: "pgsync-run " + identity,
		MaxRolling: args.maxRolling, OnHalt: fleet.OnHalt(args.onHalt), Window: defaultWindow, Metrics: m,
		AllowRewind: args.allowRewind, StatusRefresh: args.statusRefresh, Images: images, InstanceImage: args.instanceImage},
		run, obs, log, time.Now, mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))))

	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var leading bool
	ln, err := net.Listen("tcp", args.httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		last := d.Last()
		if last.Started.IsZero() && (leading || !args.leaderElect) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("no cycle yet\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Leader bool          `json:"leader"`
			Last   daemon.Report `json:"lastCycle"`
		}{leading || !args.leaderElect, d.Last()})
	})
	mux.Handle("GET /metrics", m.Handler())
	if args.pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if args.webhookSecret != "" {
		secret, err := webhook.LoadSecret(args.webhookSecret)
		if err != nil {
			return fmt.Errorf("--webhook-secret-file: %w", err)
		}
		hook, err := webhook.New(webhook.Config{Secret: secret, Ref: args.source.Ref, Trigger: d.Trigger,
			Recorder: m, Logger: log.With("logger", "webhook")})
		if err != nil {
			return err
		}
		mux.Handle("POST /webhook", hook)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	log.Info("pgsync run", "repo", desired.DisplayRepo(args.source.Repo), "ref", args.source.Ref, "path", args.source.Path,
		"interval", args.interval.String(), "leaderElect", args.leaderElect, "http", ln.Addr().String())

	// The leader observes through watches (observe.Watch), where it may;
	// pgsync reconcile (the pgsync.io/reconcile annotation) starts a cycle
	// at once, as a push webhook does.
	lead := func(ctx context.Context) error {
		var w *observe.Watch
		if args.watch {
			w, err = observe.NewWatch(ctx, k.typed, k.metadata, args.kube.namespace, log.With("logger", "watch"))
			if err == nil {
				log.Info("watch: syncing caches")
				err = w.Start(ctx)
			}
			if err != nil {
				log.Warn("watch: not watching; every cycle lists instead", "error", err.Error())
				w = nil
			} else {
				defer w.Shutdown()
				d.Watch(w)
				// The first Lists decoded every object whole before the
				// caches trimmed them: return that at once.
				debug.FreeOSMemory()
				log.Info("watch: caches synced", "unwatched", w.Unwatched)
			}
		}
		if w != nil {
			if err := w.AddStatefulSetHandler(daemon.ReconcileHandler(d.Trigger, log.With("logger", "reconcile"))); err != nil {
				return err
			}
		} else {
			go func() {
				if err := daemon.WatchReconcile(ctx, k.typed, args.kube.namespace, d.Trigger, log.With("logger", "reconcile")); err != nil {
					log.Error("watch for reconcile requests", "error", err.Error())
				}
			}()
		}
		return d.Run(ctx)
	}
	if !args.leaderElect {
		return lead(ctx)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: args.leaseNS, Name: args.leaseName},
		Client:     k.typed.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	lost := make(chan struct{})
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true,
		// A standby replica takes over within LeaseDuration of the
		// leader's last renewal (issue: ≤ 15 s).
		LeaseDuration: 10 * time.Second, RenewDeadline: 7 * time.Second, RetryPeriod: time.Second,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				leading = true
				log.Info("leading")
				if err := lead(ctx); err != nil {
					log.Error("leading", "error", err.Error())
				}
			},
			OnStoppedLeading: func() {
				log.Info("no longer leading")
				close(lost)
			},
			OnNewLeader: func(id string) {
				if id != identity {
					log.Info("leader elected", "leader", id)
				}
			},
		},
	})
	select {
	case <-ctx.Done():
		return nil
	case <-lost:
		// Leadership lost while running: exit so no step of this replica
		// can race the new leader's; the Deployment restarts it.
		return exitError{code: 1}
	default:
		return nil
	}
}
