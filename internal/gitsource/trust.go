package gitsource

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Ancestor reports whether the commit ancestor names is the commit
// descendant names or one of its ancestors, as
// `git merge-base --is-ancestor` does. A revision that names no commit is
// an error matching ErrRevisionNotFound; so is an ancestor the walk needs
// and the repository does not have.
func (r *Repository) Ancestor(ancestor, descendant string) (bool, error) {
	defer r.release()
	a, err := r.commit(ancestor)
	if err != nil {
		return false, err
	}
	d, err := r.commit(descendant)
	if err != nil {
		return false, err
	}
	if a.Hash == d.Hash {
		return true, nil
	}
	ok, err := a.IsAncestor(d)
	if err != nil {
		return false, fmt.Errorf("walking the history of %s: %w", d.Hash, missing(err))
	}
	return ok, nil
}

// CommitVerdict is what VerifyRange found on one commit.
type CommitVerdict struct {
	// Commit is the full SHA.
	Commit string
	// Subject is the first line of the commit message.
	Subject string
	// Parents counts the commit's parents (2 or more: a merge).
	Parents int
	// Signer is the key's primary identity when Err is nil.
	Signer string
	// Err says why the commit is not trusted: it matches ErrUnsigned,
	// ErrSSHSignature or ErrX509Signature, or tells why the OpenPGP
	// signature does not verify. nil means signed by a key in the ring.
	Err error
}

// OK reports whether the commit carries a valid signature by a key in the
// ring.
func (v CommitVerdict) OK() bool { return v.Err == nil }

// String names the commit for a message: short SHA, subject, and what is
// wrong with it.
func (v CommitVerdict) String() string {
	short := v.Commit
	if len(short) > 12 {
		short = short[:12]
	}
	if v.OK() {
		return fmt.Sprintf("%s %q: signed by %s", short, v.Subject, v.Signer)
	}
	return fmt.Sprintf("%s %q: %v", short, v.Subject, v.Err)
}

// VerifyRange checks the signature of every commit reachable from to and
// not from from (`git rev-list from..to`: the commits a move of a branch
// from from to to brings in, every side of every merge included, merges
// themselves too) against the armored OpenPGP keys in armoredKeyRing, read
// as VerifyCommit reads it. from "" means every commit reachable from to.
//
// It returns one verdict per commit, to first, then in the order a
// breadth-first walk of parents meets them; a commit is trusted only when
// its verdict is OK. The error is for what stops the check itself (a
// revision not found, an unreadable key ring, a history the repository
// does not hold), never for a bad signature.
//
// The commits reachable from from are all walked to be excluded, so the
// cost grows with the length of from's history, not only with the range.
func (r *Repository) VerifyRange(from, to string, armoredKeyRing string) ([]CommitVerdict, error) {
	defer r.release()
	ring, err := joinKeyRings(armoredKeyRing)
	if err != nil {
		return nil, fmt.Errorf("verifying %s..%s: %w", from, to, err)
	}
	commits, err := r.between(from, to)
	if err != nil {
		return nil, err
	}
	verdicts := make([]CommitVerdict, 0, len(commits))
	for _, c := range commits {
		verdicts = append(verdicts, verdict(c, ring))
	}
	return verdicts, nil
}

func verdict(c *object.Commit, ring string) CommitVerdict {
	v := CommitVerdict{Commit: c.Hash.String(), Subject: subject(c.Message), Parents: c.NumParents()}
	v.Signer, v.Err = verifySignature(c, ring)
	return v
}

// Verdict checks one commit's signature as VerifyRange checks each of
// its commits: for a commit outside any range (the first commit ever
// applied, the target of a rollback). The error is for a revision not
// found or an unreadable key ring, never for a bad signature.
func (r *Repository) Verdict(commit, armoredKeyRing string) (CommitVerdict, error) {
	defer r.release()
	ring, err := joinKeyRings(armoredKeyRing)
	if err != nil {
		return CommitVerdict{}, fmt.Errorf("verifying commit %s: %w", commit, err)
	}
	c, err := r.commit(commit)
	if err != nil {
		return CommitVerdict{}, err
	}
	return verdict(c, ring), nil
}

// between returns the commits reachable from to and not from from, to
// first, breadth-first.
func (r *Repository) between(from, to string) ([]*object.Commit, error) {
	tip, err := r.commit(to)
	if err != nil {
		return nil, err
	}
	excluded := map[plumbing.Hash]bool{}
	if from != "" {
		base, err := r.commit(from)
		if err != nil {
			return nil, err
		}
		err = object.NewCommitPreorderIter(base, nil, nil).ForEach(func(c *object.Commit) error {
			excluded[c.Hash] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walking the history of %s: %w", base.Hash, missing(err))
		}
	}
	var out []*object.Commit
	seen := map[plumbing.Hash]bool{tip.Hash: true}
	queue := []*object.Commit{tip}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if excluded[c.Hash] {
			continue
		}
		out = append(out, c)
		for _, p := range c.ParentHashes {
			if seen[p] || excluded[p] {
				continue
			}
			seen[p] = true
			pc, err := r.repo.CommitObject(p)
			if err != nil {
				return nil, fmt.Errorf("reading parent %s of %s: %w", p, c.Hash, missing(err))
			}
			queue = append(queue, pc)
		}
	}
	return out, nil
}

// missing makes go-git's missing-object error match ErrRevisionNotFound,
// as a missing commit does everywhere else here.
func missing(err error) error {
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return fmt.Errorf("%w: %w", ErrRevisionNotFound, err)
	}
	return err
}

func subject(msg string) string {
	line, _, _ := strings.Cut(strings.TrimLeft(msg, "\n"), "\n")
	return strings.TrimSpace(line)
}
