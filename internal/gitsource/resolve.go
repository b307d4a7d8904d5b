package gitsource

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrRevisionNotFound is matched (errors.Is) by Resolve's error for a
// revision that names no commit.
var ErrRevisionNotFound = errors.New("revision not found")

// Resolve returns the full 40-hex SHA of the commit rev names: a branch
// (local, or origin/X in a cached clone), a tag (an annotated tag gives its
// commit), a full or short SHA, HEAD, and suffixes such as ~N, ^ and ^N.
// "" means HEAD.
func (r *Repository) Resolve(rev string) (string, error) {
	defer r.release()
	c, err := r.commit(rev)
	if err != nil {
		return "", err
	}
	return c.Hash.String(), nil
}

func (r *Repository) commit(rev string) (*object.Commit, error) {
	if rev == "" {
		rev = "HEAD"
	}
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil || h == nil || h.IsZero() {
		// go-git reports a missing ref, a missing parent (HEAD~9 of a
		// shorter history) and a missing object differently; to the user
		// they are all the same thing.
		return nil, fmt.Errorf("revision %q not found in %s: %w", rev, r.loc, ErrRevisionNotFound)
	}
	c, err := r.repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("revision %q (%s) in %s is not a commit: %w", rev, h, r.loc, err)
	}
	return c, nil
}
