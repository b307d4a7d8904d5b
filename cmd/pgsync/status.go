package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	"github.com/pgsync/pgsync/internal/statusview"
)

func init() { commands = append(commands, newStatusCmd) }

type statusArgs struct {
	kube     kubeArgs
	source   desired.Source
	output   string
	watch    bool
	interval time.Duration
	logLevel string
	window   windowFlag
}

func newStatusCmd() *cobra.Command {
	var args statusArgs
	cmd := &cobra.Command{
		Use:   "status [NAMESPACE/NAME]",
		Short: "Show the clusters pgsync manages as they run, and what pgsync would do next",
		Long: `Status observes the clusters pgsync manages (all, those of --namespace, or
one NAMESPACE/NAME) and prints per cluster its instances — role, readiness,
image, timeline, replication lag, pending restart — the commit it was last
applied from, and the next step pgsync would take, or "converged".

The next step is planned against the spec last applied to the cluster, or,
with --repo, against the Clusters in Git at --ref under --path.

-w follows changes: the status is observed again every --interval and
printed whenever it changes.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			return runStatus(cmd, args, pos)
		},
	}
	args.kube.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&args.output, "output", "o", "", "output format: wide, json or yaml (default: a table)")
	f.BoolVarP(&args.watch, "watch", "w", false, "follow changes")
	f.DurationVar(&args.interval, "interval", 2*time.Second, "with -w, how often to observe")
	f.StringVar(&args.source.Repo, "repo", "", "plan the next step against this Git repository (default: against the spec last applied)")
	f.StringVar(&args.source.Ref, "ref", "HEAD", "with --repo: branch, tag or commit to read")
	f.StringVar(&args.source.Path, "path", "", "with --repo: directory holding the Cluster files")
	f.StringVar(&args.source.DefaultImage, "default-image", cluster.DefaultImageName, "with --repo: PostgreSQL image of Clusters that write neither imageName nor imageCatalogRef (as plan's)")
	f.StringVar(&args.logLevel, "log-level", "warn", "debug, info, warn or error")
	args.window.register(f, "status says when it opens for a cluster with a restart ahead")
	return cmd
}

func runStatus(cmd *cobra.Command, args statusArgs, pos []string) error {
	format, err := statusview.ParseFormat(args.output)
	if err != nil {
		return err
	}
	log, err := cliLogger(cmd.ErrOrStderr(), args.logLevel)
	if err != nil {
		return err
	}
	var only *cluster.Key
	if len(pos) == 1 {
		ns, name, ok := strings.Cut(pos[0], "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("%q: want NAMESPACE/NAME", pos[0])
		}
		if args.kube.namespace != "" && args.kube.namespace != ns {
			return fmt.Errorf("%s is not in --namespace %s", pos[0], args.kube.namespace)
		}
		args.kube.namespace = ns
		only = &cluster.Key{Namespace: ns, Name: name}
	}
	if args.watch && args.interval <= 0 {
		return fmt.Errorf("--interval %s: must be positive", args.interval)
	}
	k, err := args.kube.connect()
	if err != nil {
		return err
	}
	var repo *desired.Reader
	if args.source.Repo != "" {
		if repo, err = desired.Open(cmd.Context(), args.source, log); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	var last []byte
	for {
		doc, err := statusOnce(ctx, args, k, repo, only)
		if err != nil {
			if !args.watch {
				return err
			}
			log.Warn("status", "error", err.Error())
		} else {
			var buf bytes.Buffer
			if err := statusview.Render(&buf, doc, format); err != nil {
				return err
			}
			if !bytes.Equal(buf.Bytes(), last) {
				if args.watch && last != nil {
					fmt.Fprintf(out, "\n--- %s\n", time.Now().Format(time.RFC3339))
				}
				if _, err := out.Write(buf.Bytes()); err != nil {
					return err
				}
				last = buf.Bytes()
			}
			if only != nil && len(doc.Clusters) == 0 && !args.watch {
				return fmt.Errorf("no cluster %s managed by pgsync", only)
			}
		}
		if !args.watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(args.interval):
		}
	}
}

// statusOnce observes, plans and builds the document.
func statusOnce(ctx context.Context, args statusArgs, k *kubeClients, repo *desired.Reader, only *cluster.Key) (statusview.Document, error) {
	fleet, err := observe.Observe(ctx, k.typed, args.kube.observeOptions(k))
	if err != nil {
		return statusview.Document{}, err
	}
	if only != nil {
		kept := fleet.Clusters[:0]
		for _, c := range fleet.Clusters {
			if c.Key() == *only {
				kept = append(kept, c)
			}
		}
		fleet.Clusters = kept
	}
	against := "the spec last applied"
	var want []*cluster.Cluster
	if repo != nil {
		head, err := repo.Head()
		if err != nil {
			var b strings.Builder
			_ = reportProblems(&b, err, "")
			if b.Len() > 0 {
				return statusview.Document{}, fmt.Errorf("the Clusters in Git are invalid:\n%s", strings.TrimSpace(b.String()))
			}
			return statusview.Document{}, err
		}
		against = "commit " + desired.ShortSHA(head.Commit)
		for _, c := range head.Set.Clusters {
			if inFleet(fleet, c.Key()) {
				want = append(want, c)
			}
		}
	} else {
		for _, c := range fleet.Clusters {
			want = append(want, c.Observed.Spec)
		}
	}
	p, err := plan.Make(want, fleet.Observed(), plan.Options{})
	if err != nil {
		var b strings.Builder
		_ = reportProblems(&b, err, "")
		return statusview.Document{}, fmt.Errorf("cannot plan: %s", strings.TrimSpace(b.String()))
	}
	defaultWindow, err := args.window.schedule()
	if err != nil {
		return statusview.Document{}, err
	}
	plan.WithWindows(p, want, defaultWindow, time.Now())
	return statusview.Build(fleet, p, against), nil
}

func inFleet(f *observe.Fleet, k cluster.Key) bool {
	for _, c := range f.Clusters {
		if c.Key() == k {
			return true
		}
	}
	return false
}
