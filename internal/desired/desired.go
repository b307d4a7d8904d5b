// Package desired is the Git pipeline: it opens a repository, resolves a
// revision to a commit, verifies the commit's signature when asked (for
// the daemon, every commit since the one it applied last, and that the
// head descends from it), and loads and validates every Cluster under a
// directory at that commit.
// The CLI's validate and plan, and the daemon, read the desired state
// through it, so the order (resolve, verify before reading, load) exists
// once.
//
// It must not import `internal/plan`, `internal/kube`, `internal/observe`,
// `internal/apply`, `internal/instance/...` or `k8s.io/client-go/...`.
package desired

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/gitsource"
)

// Source selects the desired state in Git.
type Source struct {
	// Repo is a local path or a file://, https:// or ssh:// URL.
	Repo string
	// Ref is the branch, tag or commit to read (default HEAD).
	Ref string
	// Path is the directory holding the Cluster files ("" = the whole
	// repository).
	Path string
	// VerifyKey is a file with an armored OpenPGP public key ring; when
	// set, the Ref commit must carry a valid signature by one of its keys
	// before anything of it is read.
	VerifyKey string
	// DefaultImage is the image of Clusters that write neither imageName
	// nor imageCatalogRef (--default-image); empty means
	// cluster.DefaultImageName.
	DefaultImage string
}

// State is the desired state read at one commit.
type State struct {
	Commit string
	Set    cluster.Set
	// Rewind: HeadSince let through a head that does not descend from the
	// last applied commit (allowRewind).
	Rewind bool
}

// Reader reads a Source's repository.
type Reader struct {
	src  Source
	repo *gitsource.Repository
	log  *slog.Logger
}

// Open opens (cloning or fetching as needed) the repository of src.
func Open(ctx context.Context, src Source, log *slog.Logger) (*Reader, error) {
	repo, err := gitsource.Open(ctx, gitsource.Options{Repo: src.Repo})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", DisplayRepo(src.Repo), err)
	}
	if src.Ref == "" {
		src.Ref = "HEAD"
	}
	return &Reader{src: src, repo: repo, log: log}, nil
}

// Head reads the Source's Ref, verified when VerifyKey is set.
func (r *Reader) Head() (State, error) { return r.load(r.src.Ref, true) }

// At reads another revision (a pull request's base), never verified: it
// is what the plan starts from, not what gets applied.
func (r *Reader) At(rev string) (State, error) { return r.load(rev, false) }

// load reads and validates every Cluster under the Source's Path at rev.
// Problems come back as cluster.Errors (positioned); anything else wraps
// the cause.
func (r *Reader) load(rev string, verify bool) (State, error) {
	commit, err := r.repo.Resolve(rev)
	if err != nil {
		return State{}, err
	}
	if verify && r.src.VerifyKey != "" {
		if err := r.verify(commit); err != nil {
			return State{}, err
		}
	}
	files, err := r.repo.Files(commit, r.src.Path)
	if err != nil {
		return State{}, fmt.Errorf("read %s at %s: %w", DisplayDir(r.src.Path), ShortSHA(commit), err)
	}
	set, err := cluster.LoadWith(files, cluster.Options{DefaultImage: r.src.DefaultImage})
	for _, s := range set.Skipped {
		r.log.Debug("skipped document", "at", s.Pos.String(), "reason", s.Reason)
	}
	return State{Commit: commit, Set: set}, err
}

func (r *Reader) verify(commit string) error {
	ring, err := os.ReadFile(r.src.VerifyKey)
	if err != nil {
		return fmt.Errorf("--verify-key: %w", err)
	}
	signer, err := r.repo.VerifyCommit(commit, string(ring))
	if err != nil {
		return fmt.Errorf("commit %s of --ref %s is not signed by a key in %s: %w", ShortSHA(commit), r.src.Ref, r.src.VerifyKey, err)
	}
	r.log.Info("commit signature verified", "commit", ShortSHA(commit), "signer", signer)
	return nil
}

// DisplayRepo names a Source's Repo for messages and logs: never with a
// password or token (gitsource.Display).
func DisplayRepo(repo string) string { return gitsource.Display(repo) }

// DisplayDir names a Path for messages.
func DisplayDir(dir string) string {
	if dir == "" || dir == "." {
		return "the repository"
	}
	return dir
}

// ShortSHA abbreviates a commit for messages.
func ShortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Commit resolves the Source's Ref without reading anything at it: the
// daemon's cheap "has anything changed?" check.
func (r *Reader) Commit() (string, error) { return r.repo.Resolve(r.src.Ref) }
