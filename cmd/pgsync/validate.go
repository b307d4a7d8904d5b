package main

import (
	"errors"
	"fmt"
	"io"
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
	warnings, problems, err := allProblems(got.Set, err)
	if err != nil {
		return err
	}
	printDiagnostics(stderr, warnings, problems)
	if len(problems) > 0 {
		return exitError{code: 1}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d %s valid in %s at %s\n", len(got.Set.Clusters), pluralize(len(got.Set.Clusters), "cluster", "clusters"), desired.DisplayDir(args.source.Path), desired.ShortSHA(got.Commit))
	return nil
}

// allProblems gathers every problem of the loaded repository in one pass:
// Load's (decoding, values, names, duplicates) and the parameters' checks
// against PostgreSQL's tables, of the valid clusters and of the invalid
// ones as far as they decoded, each once, sorted by position. An error
// that is not a list of problems is returned as it is.
func allProblems(set cluster.Set, err error) (warnings, problems []cluster.Diagnostic, _ error) {
	var loaded cluster.Errors
	if err != nil && !errors.As(err, &loaded) {
		return nil, nil, err
	}
	problems = append(problems, loaded...)
	warnings = append(warnings, set.Warnings...)
	reported := map[cluster.Position]bool{}
	for _, p := range problems {
		reported[p.Pos] = true
	}
	for _, c := range append(append([]*cluster.Cluster(nil), set.Clusters...), set.Invalid...) {
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
	return warnings, problems, nil
}

// printDiagnostics prints warnings, then problems, one per line.
func printDiagnostics(w io.Writer, warnings, problems []cluster.Diagnostic) {
	for _, d := range warnings {
		fmt.Fprintf(w, "%s: warning: %s\n", d.Pos, messageOf(d))
	}
	for _, p := range problems {
		fmt.Fprintln(w, p.String())
	}
}

// reportHeadProblems is reportProblems for the desired state at the head:
// every problem validate would print, so plan and apply refuse a file
// exactly as validate does.
func reportHeadProblems(w io.Writer, set cluster.Set, err error) error {
	warnings, problems, err := allProblems(set, err)
	if err != nil {
		return err
	}
	printDiagnostics(w, warnings, problems)
	return exitError{code: 1}
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
