// Package instance is the instance manager: `pgsync instance run`, PID 1 in
// every Postgres container. It is wired in one place (Run) from small parts,
// each owning one duty:
//
//   - reaper: PID-1 zombie reaping (its own package, with the why);
//   - postmaster: the one goroutine that owns the postgres process;
//   - conffile, pglog, pgbin: pure configuration rendering, log relaying and
//     binary discovery;
//   - role: the pure decision "what next?" from (Lease, local postgres);
//   - lease: the Kubernetes side (Lease watch and writes, -rw routing);
//   - httpapi: /healthz, /readyz, /status;
//   - this package: the alignment loop that observes, asks role.Decide,
//     and carries the action out: manager.go (the loop), switchover.go
//     (demote, promote, route), bootstrap.go (initdb, base backup, rejoin
//     with pg_rewind), files.go (configuration files, pg_control), pg.go
//     (the local SQL session), params.go, statusloop.go, run.go (wiring
//     and signals).
//
// The loop (Manager.align) never runs a remembered list of steps: every
// iteration observes the Lease (from a watch) and postgres (over a local
// socket), asks role.Decide for one action, executes it, and observes again.
// A crash of the manager anywhere therefore resumes from what is observed.
//
// Credentials come from the environment or mounted files, never from the
// API server; nothing here logs or serves them.
//
// It must not import `internal/plan`, `internal/apply` or
// `internal/gitsource`.
package instance
