package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/gitsource"
)

// sourceArgs are the flags that select the desired state in Git; validate
// and plan share them.
type sourceArgs struct {
	repo, ref, path string
	// verifyKey is an armored OpenPGP public key ring; when set, the --ref
	// commit must carry a valid signature by one of its keys.
	verifyKey string
}

func (a *sourceArgs) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.repo, "repo", ".", "Git repository: a local path, or a file://, https:// or ssh:// URL")
	cmd.Flags().StringVar(&a.ref, "ref", "HEAD", "branch, tag or commit to read")
	cmd.Flags().StringVar(&a.path, "path", "", "directory of the repository holding the Cluster files (default: the whole repository)")
	cmd.Flags().StringVar(&a.verifyKey, "verify-key", "", "armored OpenPGP public key ring: refuse to read a --ref commit that is not signed by one of its keys")
}

// verifyHead checks the signature of the commit the desired state is read
// from, when --verify-key asks for it.
func verifyHead(repo *gitsource.Repository, a sourceArgs, log *slog.Logger) func(commit string) error {
	if a.verifyKey == "" {
		return nil
	}
	return func(commit string) error { return verifySignature(repo, a, commit, log) }
}

func verifySignature(repo *gitsource.Repository, a sourceArgs, commit string, log *slog.Logger) error {
	ring, err := os.ReadFile(a.verifyKey)
	if err != nil {
		return fmt.Errorf("--verify-key: %w", err)
	}
	signer, err := repo.VerifyCommit(commit, string(ring))
	if err != nil {
		return fmt.Errorf("commit %s of --ref %s is not signed by a key in %s: %w", shortSHA(commit), a.ref, a.verifyKey, err)
	}
	log.Info("commit signature verified", "commit", shortSHA(commit), "signer", signer)
	return nil
}

// loaded is the desired state read at one commit.
type loaded struct {
	commit string
	set    cluster.Set
}

func openSource(ctx context.Context, a sourceArgs) (*gitsource.Repository, error) {
	repo, err := gitsource.Open(ctx, gitsource.Options{Repo: a.repo})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", a.repo, err)
	}
	return repo, nil
}

// loadAt reads and validates every Cluster under dir at rev. Problems come
// back as cluster.Errors (positioned), anything else wraps the cause.
// verify, when not nil, is called with the resolved commit before any of
// its content is read.
func loadAt(repo *gitsource.Repository, rev, dir string, log *slog.Logger, verify func(commit string) error) (loaded, error) {
	commit, err := repo.Resolve(rev)
	if err != nil {
		return loaded{}, err
	}
	if verify != nil {
		if err := verify(commit); err != nil {
			return loaded{}, err
		}
	}
	files, err := repo.Files(commit, dir)
	if err != nil {
		return loaded{}, fmt.Errorf("read %s at %s: %w", displayDir(dir), shortSHA(commit), err)
	}
	set, err := cluster.Load(files)
	for _, s := range set.Skipped {
		log.Debug("skipped document", "at", s.Pos.String(), "reason", s.Reason)
	}
	return loaded{commit: commit, set: set}, err
}

func displayDir(dir string) string {
	if dir == "" || dir == "." {
		return "the repository"
	}
	return dir
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
