package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/imagegate"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
)

func init() { commands = append(commands, newPlanCmd) }

type planArgs struct {
	source           desired.Source
	kube             kubeArgs
	base             string
	offline          bool
	live             bool
	prune            bool
	format           string
	detailedExitcode bool
	out              string
	logLevel         string
	window           windowFlag
	imagePolicy      imagePolicyFlag
	instanceImage    string
}

func newPlanCmd() *cobra.Command {
	var args planArgs
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what a change in Git will do to each PostgreSQL cluster",
		Long: `Plan compares the Clusters at --ref with a starting point and prints the
ordered steps that would bring the clusters there: which instances restart,
in what order, whether the primary switches over, what reloads.

The starting point is one of:
  --base REV   the clusters at another commit, as if they had converged to it
               (primary at ordinal 0) — for pull-request reviews and CI;
  --offline    nothing: every cluster is created;
  --live       what runs in Kubernetes (implied by --kubeconfig or --context):
               the clusters pgsync manages, their pods, volumes, Lease and
               instance status, and drift in the objects pgsync owns (found
               by a server-side dry-run apply). Needs only read access plus
               dry-run patch (deploy/observer).

Exit status: 0 success, 1 error (bad input or a refused change); with
--detailed-exitcode, 2 means success with changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd, args)
		},
	}
	registerSource(cmd, &args.source)
	args.kube.register(cmd)
	f := cmd.Flags()
	f.StringVar(&args.base, "base", "", "revision to compare with (HEAD~1, a branch, a short SHA)")
	f.BoolVar(&args.offline, "offline", false, "plan against an empty Kubernetes: every cluster is created")
	f.BoolVar(&args.live, "live", false, "plan against what runs in Kubernetes (implied by --kubeconfig or --context)")
	f.BoolVar(&args.prune, "prune", false, "delete clusters removed from Git (volumes and Secrets are kept) instead of orphaning them")
	f.StringVar(&args.format, "format", "text", "output format: text, markdown or json")
	f.BoolVar(&args.detailedExitcode, "detailed-exitcode", false, "exit 2 when the plan has changes")
	f.StringVar(&args.out, "out", "", "write the plan to this file instead of stdout")
	f.StringVar(&args.logLevel, "log-level", "info", "debug, info, warn or error")
	args.window.register(f, "the plan says when it opens (a Cluster file's pgsync.io/maintenance-window is always shown)")
	args.imagePolicy.register(f)
	f.StringVar(&args.instanceImage, "instance-image", os.Getenv("PGSYNC_INSTANCE_IMAGE"), "with --image-policy: the pgsync image apply will give the pods' init container, checked and pinned by the policy (env PGSYNC_INSTANCE_IMAGE)")
	cmd.MarkFlagsMutuallyExclusive("base", "offline", "live")
	cmd.MarkFlagsMutuallyExclusive("base", "offline", "kubeconfig")
	cmd.MarkFlagsMutuallyExclusive("base", "offline", "context")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Flags().Changed("kubeconfig") || cmd.Flags().Changed("context") {
			args.live = true
		}
		if cmd.Flags().Changed("instance-image") && args.imagePolicy.file == "" {
			return errors.New("--instance-image: plan only checks it against an image policy: add --image-policy FILE")
		}
		if !args.live && args.base == "" && !args.offline {
			return errors.New("one of --base, --offline or --live (--kubeconfig, --context) is required")
		}
		if !args.live {
			for _, name := range []string{"namespace", "status-via", "status-timeout"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s needs a live plan (--live, --kubeconfig or --context)", name)
				}
			}
		}
		return nil
	}
	return cmd
}

func runPlan(cmd *cobra.Command, args planArgs) error {
	stderr := cmd.ErrOrStderr()
	switch args.format {
	case "text", "markdown", "json":
	default:
		return fmt.Errorf("--format %q: allowed: text, markdown, json", args.format)
	}
	log, err := cliLogger(stderr, args.logLevel)
	if err != nil {
		return err
	}
	defaultWindow, err := args.window.schedule()
	if err != nil {
		return err
	}
	gate, err := args.imagePolicy.gate()
	if err != nil {
		return err
	}
	repo, err := desired.Open(cmd.Context(), args.source, log)
	if err != nil {
		return err
	}
	head, err := repo.Head()
	if err != nil {
		return reportHeadProblems(stderr, head.Set, err)
	}
	for _, w := range head.Set.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", w.Pos, messageOf(w))
	}
	want := head.Set.Clusters
	var observed plan.Observed
	var baseCommit string
	mode := plan.ModeOffline
	switch {
	case args.base != "":
		mode = plan.ModeBase
		base, err := repo.At(args.base)
		if err != nil {
			return reportProblems(stderr, err, fmt.Sprintf("the base %s is invalid, so the plan cannot start from it:", args.base))
		}
		baseCommit = base.Commit
		baseClusters := base.Set.Clusters
		if gate != nil {
			// As if the base had converged under the same policy: its
			// images pinned to what they name now, so an unchanged cluster
			// plans nothing. A base image refused now stays as written
			// (its cluster then shows the change to the pinned head).
			res, err := gate.Enforce(cmd.Context(), baseClusters, "")
			if err != nil {
				return err
			}
			baseClusters = res.Clusters
		}
		observed = plan.Converged(baseClusters)
	case args.live:
		mode = plan.ModeLive
		if args.kube.namespace != "" {
			want = inNamespace(want, args.kube.namespace)
		}
		k, err := args.kube.connect()
		if err != nil {
			return err
		}
		if observed, err = observeLive(cmd.Context(), args.kube, k, log, want); err != nil {
			return err
		}
	}
	opts := plan.Options{Prune: args.prune}
	var images *imagegate.Result
	if gate != nil {
		images, err = enforceImages(cmd.Context(), stderr, gate, want, args.instanceImage, func(cs []*cluster.Cluster) error {
			_, err := plan.Make(cs, observed, opts)
			return err
		})
		if err != nil {
			return err
		}
		want = images.Clusters
	}
	p, err := plan.Make(want, observed, opts)
	if err != nil {
		return reportProblems(stderr, err, "")
	}
	p.Base, p.Head, p.Mode = baseCommit, head.Commit, mode
	withImages(p, images)
	plan.WithWindows(p, want, defaultWindow, time.Now())

	var buf bytes.Buffer
	switch args.format {
	case "json":
		err = plan.RenderJSON(&buf, p)
	case "markdown":
		err = plan.RenderMarkdown(&buf, p)
	default:
		err = plan.RenderText(&buf, p, plan.TextOptions{Color: args.out == "" && colorTerminal(cmd.OutOrStdout())})
	}
	if err != nil {
		return fmt.Errorf("render plan: %w", err)
	}
	if args.out != "" {
		if err := os.WriteFile(args.out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
	} else if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	if args.detailedExitcode && p.HasChanges() {
		return exitError{code: 2}
	}
	return nil
}

// reportProblems prints positioned problems one per line and turns them
// into exit status 1; other errors pass through.
func reportProblems(w io.Writer, err error, header string) error {
	var problems cluster.Errors
	if !errors.As(err, &problems) {
		return err
	}
	if header != "" {
		fmt.Fprintln(w, header)
	}
	for _, p := range problems {
		fmt.Fprintln(w, p.String())
	}
	return exitError{code: 1}
}

// colorTerminal reports whether w is a terminal and NO_COLOR is unset
// (https://no-color.org: any non-empty value disables colour).
func colorTerminal(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// observeLive reads what runs and the drift of the objects pgsync owns,
// and whether the API server serves PodMonitor when a cluster of want
// asks for one.
func observeLive(ctx context.Context, a kubeArgs, k *kubeClients, log *slog.Logger, want []*cluster.Cluster) (plan.Observed, error) {
	start := time.Now()
	fleet, err := observe.Observe(ctx, k.typed, a.observeOptions(k))
	if err != nil {
		return plan.Observed{}, err
	}
	for _, s := range fleet.Skipped {
		log.Warn("not a pgsync cluster", "object", s)
	}
	if err := fleet.FindDrift(ctx, k.dynamic, nil); err != nil {
		return plan.Observed{}, err
	}
	unread := 0
	total := 0
	for _, c := range fleet.Clusters {
		for _, in := range c.Instances {
			if in.PodExists {
				total++
				if in.Status == nil {
					unread++
					log.Debug("instance status unreadable", "instance", c.Key().Namespace+"/"+in.Name, "error", in.StatusError)
				}
			}
		}
	}
	if unread > 0 && unread == total && a.statusVia == "direct" {
		log.Warn("no instance status could be read from the pod IPs: outside the cluster's network use --status-via=proxy", "instances", total)
	}
	log.Debug("observed", "clusters", len(fleet.Clusters), "elapsed", time.Since(start).String())
	o := fleet.Observed()
	if plan.NeedsPodMonitor(want) {
		o.PodMonitorKind = observe.PodMonitorKind(k.typed.Discovery())
	}
	return o, nil
}

// inNamespace keeps the clusters of one namespace.
func inNamespace(cs []*cluster.Cluster, ns string) []*cluster.Cluster {
	var out []*cluster.Cluster
	for _, c := range cs {
		if c.Metadata.Namespace == ns {
			out = append(out, c)
		}
	}
	return out
}
