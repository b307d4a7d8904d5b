// Package plan turns the desired clusters (from Git) and the observed state
// (live Kubernetes objects, or a base commit as if the cluster had converged
// to it) into an ordered, reviewable Plan, and renders it as text, Markdown
// or JSON.
//
// Plan is a pure function: no clocks, no I/O. The same function serves the
// pull-request review, the CI dry-run, the live plan and every iteration of
// the daemon, which executes only the first step and then plans again, so a
// crash anywhere resumes correctly. Step order comes from explicit phases
// (see phase), each tested.
//
// It must not import `k8s.io/client-go/...`, `github.com/go-git/go-git/...`
// or `github.com/jackc/pgx/...`.
package plan
