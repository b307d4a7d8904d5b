package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// commands lists the constructors of pgsync's subcommands. Each command file
// adds its constructor in an init function, so commands that live in separate
// files stay independent of each other.
var commands []func() *cobra.Command

// exitError carries a process exit code out of a command without printing
// anything more: the command has already reported what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "pgsync",
		Short:         "GitOps reconciler for PostgreSQL clusters on Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

// run executes the command line and returns the process exit code:
// 0 success, 1 error, 2 success with changes (plan --detailed-exitcode).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "pgsync:", err)
	return 1
}
