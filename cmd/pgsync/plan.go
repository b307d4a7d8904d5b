package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/plan"
)

func init() { commands = append(commands, newPlanCmd) }

type planArgs struct {
	source           sourceArgs
	base             string
	offline          bool
	prune            bool
	format           string
	detailedExitcode bool
	out              string
	logLevel         string
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
  --offline    nothing: every cluster is created.

Exit status: 0 success, 1 error (bad input or a refused change); with
--detailed-exitcode, 2 means success with changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd, args)
		},
	}
	args.source.register(cmd)
	f := cmd.Flags()
	f.StringVar(&args.base, "base", "", "revision to compare with (HEAD~1, a branch, a short SHA)")
	f.BoolVar(&args.offline, "offline", false, "plan against an empty Kubernetes: every cluster is created")
	f.BoolVar(&args.prune, "prune", false, "delete clusters removed from Git (volumes and Secrets are kept) instead of orphaning them")
	f.StringVar(&args.format, "format", "text", "output format: text, markdown or json")
	f.BoolVar(&args.detailedExitcode, "detailed-exitcode", false, "exit 2 when the plan has changes")
	f.StringVar(&args.out, "out", "", "write the plan to this file instead of stdout")
	f.StringVar(&args.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.MarkFlagsMutuallyExclusive("base", "offline")
	cmd.MarkFlagsOneRequired("base", "offline")
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
	repo, err := openSource(cmd.Context(), args.source)
	if err != nil {
		return err
	}
	head, err := loadAt(repo, args.source.ref, args.source.path, log, verifyHead(repo, args.source, log))
	if err != nil {
		return reportProblems(stderr, err, "")
	}
	var observed plan.Observed
	var baseCommit string
	if args.base != "" {
		base, err := loadAt(repo, args.base, args.source.path, log, nil)
		if err != nil {
			return reportProblems(stderr, err, fmt.Sprintf("the base %s is invalid, so the plan cannot start from it:", args.base))
		}
		baseCommit = base.commit
		observed = plan.Converged(base.set.Clusters)
	}
	for _, w := range head.set.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", w.Pos, messageOf(w))
	}
	p, err := plan.Make(head.set.Clusters, observed, plan.Options{Prune: args.prune})
	if err != nil {
		return reportProblems(stderr, err, "")
	}
	p.Base, p.Head = baseCommit, head.commit

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
