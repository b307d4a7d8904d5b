package main

import (
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/plan"
)

func init() { commands = append(commands, newValidateCmd) }

type validateArgs struct {
	source   desired.Source
	logLevel string
}

func newValidateCmd() *cobra.Command {
	var args validateArgs
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check every Cluster file of a Git repository",
		Long: `Validate loads every Cluster at --ref under --path and checks it strictly:
YAML syntax, unknown fields, types, values, PostgreSQL parameters and duplicate
clusters. Each problem is printed on stderr as FILE:LINE:COL: message, with FILE
relative to the repository root.

Exit status: 0 when every Cluster is valid, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(cmd, args)
		},
	}
	registerSource(cmd, &args.source)
	cmd.Flags().StringVar(&args.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runValidate(cmd *cobra.Command, args validateArgs) error {
	stderr := cmd.ErrOrStderr()
	log, err := cliLogger(stderr, args.logLevel)
	if err != nil {
		return err
	}
	repo, err := desired.Open(cmd.Context(), args.source, log)
	if err != nil {
		return err
	}
	got, err := repo.Head()
	var problems cluster.Errors
	if err != nil && !errors.As(err, &problems) {
		return err
	}
	warnings := got.Set.Warnings
	reported := map[cluster.Position]bool{}
	for _, p := range problems {
		reported[p.Pos] = true
	}
	for _, c := range append(got.Set.Clusters, got.Set.Invalid...) {
		w, ps := plan.CheckParameters(c)
		warnings = append(warnings, w...)
		for _, p := range ps {
			if !reported[p.Pos] { // a value the decoder already refused (not a string)
				problems = append(problems, p)
			}
		}
	}
	sortDiagnostics(warnings)
	sortDiagnostics(problems)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", w.Pos, messageOf(w))
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p.String())
	}
	if len(problems) > 0 {
		return exitError{code: 1}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d %s valid in %s at %s\n", len(got.Set.Clusters), pluralize(len(got.Set.Clusters), "cluster", "clusters"), desired.DisplayDir(args.source.Path), desired.ShortSHA(got.Commit))
	return nil
}

func messageOf(d cluster.Diagnostic) string {
	if d.Field != "" {
		return d.Field + ": " + d.Message
	}
	return d.Message
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sortDiagnostics orders diagnostics by file, line and column, so that the
// cluster's own problems and its parameters' read top to bottom.
func sortDiagnostics(ds []cluster.Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
