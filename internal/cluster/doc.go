// Package cluster owns the Cluster type — the desired state of one PostgreSQL
// cluster as written in Git — and everything that turns bytes into it: strict
// YAML decoding that reports FILE:LINE:COL and the field path, defaults,
// validation (the pgsync.io annotations a Cluster file may carry included)
// and PostgreSQL version parsing from image tags.
//
// It is pure. Of this module it imports two leaves only, both pure and
// bound to import nothing of the module themselves: internal/podcontract,
// where the annotation names live, and internal/window, whose grammar
// checks pgsync.io/maintenance-window. Checking inside Load, rather than
// through a hook each caller passes, gives every caller the same verdict
// on a file. It must not import `internal/apply`, `internal/daemon/...`,
// `internal/desired`, `internal/fleet`, `internal/gitsource`,
// `internal/instance/...`, `internal/kube`, `internal/metrics`,
// `internal/observe`, `internal/pgconf/...`, `internal/plan`,
// `internal/revision`, `internal/statusview`, `internal/webhook`,
// `cmd/...`, `bench/...`, `k8s.io/client-go/...` or
// `github.com/go-git/go-git/...` (a new package of the module belongs in
// this list). Callers hand it
// files (path relative to the repository root and content) and get back
// clusters, warnings and positioned errors.
package cluster
