package gittest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repo is a non-bare repository in a temporary directory, on branch main.
type Repo struct {
	t    testing.TB
	Dir  string
	Git  *git.Repository
	wt   *git.Worktree
	tick int
}

// NewRepo initialises an empty repository whose HEAD is main.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return &Repo{t: t, Dir: dir, Git: repo, wt: wt}
}

// Write sets files in the work tree (paths with /); an empty value
// removes the file.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for name, data := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if data == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit stages the whole work tree and commits it on the current branch,
// signed by key unless it is nil, and returns the commit's SHA. With
// mergeWith it is a merge: its parents are HEAD and those commits, and its
// tree is the work tree as written (write the merged files first).
// Commit times advance a minute per commit from a fixed instant, so SHAs
// are the same on every run.
func (r *Repo) Commit(msg string, key *openpgp.Entity, mergeWith ...string) string {
	r.t.Helper()
	if err := r.wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	r.tick++
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1_700_000_000+int64(r.tick)*60, 0)}
	opts := &git.CommitOptions{Author: sig, Committer: sig, SignKey: key, AllowEmptyCommits: true}
	if len(mergeWith) > 0 {
		head, err := r.Git.Head()
		if err != nil {
			r.t.Fatal(err)
		}
		opts.Parents = []plumbing.Hash{head.Hash()}
		for _, m := range mergeWith {
			opts.Parents = append(opts.Parents, plumbing.NewHash(m))
		}
	}
	h, err := r.wt.Commit(msg, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// Checkout switches the work tree to branch, creating it at HEAD when it
// does not exist.
func (r *Repo) Checkout(branch string) {
	r.t.Helper()
	name := plumbing.NewBranchReferenceName(branch)
	_, err := r.Git.Reference(name, false)
	create := err != nil
	if err := r.wt.Checkout(&git.CheckoutOptions{Branch: name, Create: create, Force: true}); err != nil {
		r.t.Fatal(err)
	}
}

// SetBranch points branch at sha, as `git branch -f` or a force-push does;
// the work tree is left alone.
func (r *Repo) SetBranch(branch, sha string) {
	r.t.Helper()
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), plumbing.NewHash(sha))
	if err := r.Git.Storer.SetReference(ref); err != nil {
		r.t.Fatal(err)
	}
}

// Push sends every branch and tag to the bare repository at bareDir
// (created, with HEAD on main, when missing) over file://, forcing, as
// `git push --force --all` and `--tags` do.
func (r *Repo) Push(bareDir string) {
	r.t.Helper()
	if _, err := os.Stat(bareDir); os.IsNotExist(err) {
		bare, err := git.PlainInit(bareDir, true)
		if err != nil {
			r.t.Fatal(err)
		}
		head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))
		if err := bare.Storer.SetReference(head); err != nil {
			r.t.Fatal(err)
		}
	}
	_ = r.Git.DeleteRemote("server")
	if _, err := r.Git.CreateRemote(&config.RemoteConfig{Name: "server", URLs: []string{"file://" + bareDir}}); err != nil {
		r.t.Fatal(err)
	}
	err := r.Git.Push(&git.PushOptions{RemoteName: "server", RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}, Force: true})
	if err != nil && err != git.NoErrAlreadyUpToDate {
		r.t.Fatal(err)
	}
}

// Tag creates a lightweight tag at sha.
func (r *Repo) Tag(name, sha string) {
	r.t.Helper()
	if _, err := r.Git.CreateTag(name, plumbing.NewHash(sha), nil); err != nil {
		r.t.Fatal(err)
	}
}

// AnnotatedTag creates an annotated tag at sha, its message its name.
func (r *Repo) AnnotatedTag(name, sha string) {
	r.t.Helper()
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1_700_000_000, 0)}
	if _, err := r.Git.CreateTag(name, plumbing.NewHash(sha), &git.CreateTagOptions{Tagger: sig, Message: name}); err != nil {
		r.t.Fatal(err)
	}
}

// DeleteRef removes ref (e.g. refs/tags/v1) here and in the bare
// repository at bareDir, as a deleting push would.
func (r *Repo) DeleteRef(bareDir, ref string) {
	r.t.Helper()
	bare, err := git.PlainOpen(bareDir)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, repo := range []*git.Repository{r.Git, bare} {
		if err := repo.Storer.RemoveReference(plumbing.ReferenceName(ref)); err != nil {
			r.t.Fatal(err)
		}
	}
}
