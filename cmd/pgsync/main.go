// Command pgsync reconciles PostgreSQL clusters on Kubernetes with the
// Cluster files in a Git repository. The same binary is the instance manager
// that runs as PID 1 in every Postgres container (`pgsync instance …`).
//
// This package only turns flags into typed arguments and calls into
// internal/…; it holds no logic of its own.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// Maintenance windows name IANA zones (internal/window); embedding the
	// database makes them mean the same in a scratch image as on a laptop.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
