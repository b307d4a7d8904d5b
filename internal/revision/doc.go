// Package revision owns the two revisions pgsync compares to decide what an
// instance needs (DESIGN.md invariant 8): Restart, what only a restart can
// change (the image, the restart-only parameters, resources, placement), and
// Config, what a reload applies (the reload-only parameters, the pg_hba
// rules). It also owns the split of spec.postgresql.parameters into
// restart-only and reload-only, taken from internal/pgconf.
//
// A revision is a version prefix ("v1-") and a hash of a hand-written,
// canonical list of name=value lines over named fields, never of a
// struct's JSON: adding a field to the Cluster type must not change the
// revision of any running cluster, or a pgsync upgrade alone would restart
// every cluster. docs/revisions.md is the rule for changing the encoding;
// testdata/examples.golden pins it.
//
// It must not import `internal/plan`, `internal/kube`, `internal/instance/...`,
// `k8s.io/client-go/...`, `github.com/jackc/pgx/...` or `github.com/go-git/...`.
package revision
