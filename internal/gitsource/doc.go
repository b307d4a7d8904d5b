// Package gitsource owns pgsync's access to the desired-state Git repository:
// opening a local work tree in place or cloning a remote one (file://,
// https://, ssh://, scp-like) into a cache and fetching it incrementally,
// authentication from the environment with SSH host key checking that cannot
// be switched off, resolving revision expressions to commits, listing the
// YAML files under a directory at a commit, telling whether one commit
// descends from another, and verifying OpenPGP commit signatures: of one
// commit, or of every commit a branch move brings in (merges and their
// sides included). SSH and X.509 signatures are recognised and refused,
// as go-git verifies OpenPGP only.
//
// It hands back bytes ([]cluster.File); it does not decode them. It must not
// import `k8s.io/client-go/...`, `internal/kube`, `internal/plan` or
// `internal/apply`. It never writes credentials to errors, logs or the
// cache's Git config.
//
// The steps of Open are small and named (parse the location, build the
// transport auth, lock the cache entry, clone or fetch, align local
// branches), each stopping at the first error. Everything here is tested
// against real Git servers (github.com/fluxcd/pkg/gittestserver over HTTP and
// SSH, and file:// remotes), never against mocks.
package gitsource
