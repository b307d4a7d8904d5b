// Package cluster owns the Cluster type — the desired state of one PostgreSQL
// cluster as written in Git — and everything that turns bytes into it: strict
// YAML decoding that reports FILE:LINE:COL and the field path, defaults,
// validation and PostgreSQL version parsing from image tags.
//
// It is pure. It must not import `pgsync/...`, `k8s.io/client-go/...` or
// `github.com/go-git/go-git/...`. Callers hand it files (path relative to the
// repository root and content) and get back clusters, warnings and
// positioned errors.
package cluster
