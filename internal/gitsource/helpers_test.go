package gitsource

import (
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/pgsync/pgsync/test/prereq"
)

func TestMain(m *testing.M) {
	// gitkit (under gittestserver) logs every SSH request through the
	// standard logger; nothing in it helps read a failure here.
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// requireGit skips when the git binaries that the servers (and go-git's
// file:// transport) run are missing, unless CI demands every integration
// prerequisite.
func requireGit(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"git", "git-upload-pack", "git-receive-pack"} {
		if _, err := exec.LookPath(bin); err != nil {
			prereq.Missing(t, "%s not found on PATH: this test serves repositories with real git", bin)
		}
	}
}

// hermeticEnv clears every PGSYNC_GIT_* variable, so a developer's own
// credentials never leak into (or change) a test.
func hermeticEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{EnvToken, EnvUsername, EnvSSHKey, EnvSSHKeyPassphrase, EnvKnownHosts} {
		t.Setenv(k, "")
	}
}

// fixture is a non-bare repository built with go-git in a temp dir.
type fixture struct {
	t    testing.TB
	dir  string
	repo *git.Repository
	wt   *git.Worktree
	tick int
}

func newFixture(t testing.TB) *fixture {
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
	return &fixture{t: t, dir: dir, repo: repo, wt: wt}
}

// write sets file contents; an empty value removes the file.
func (f *fixture) write(files map[string]string) {
	f.t.Helper()
	for name, data := range files {
		p := filepath.Join(f.dir, filepath.FromSlash(name))
		if data == "" {
			if err := os.Remove(p); err != nil {
				f.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// commit stages everything and commits, signed when key is not nil; it
// returns the new commit's SHA.
func (f *fixture) commit(msg string, key *openpgp.Entity) string {
	f.t.Helper()
	if err := f.wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		f.t.Fatal(err)
	}
	f.tick++
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1_700_000_000+int64(f.tick)*60, 0)}
	h, err := f.wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key, AllowEmptyCommits: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return h.String()
}

func (f *fixture) branch(name, sha string) {
	f.t.Helper()
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), plumbing.NewHash(sha))
	if err := f.repo.Storer.SetReference(ref); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) lightweightTag(name, sha string) {
	f.t.Helper()
	if _, err := f.repo.CreateTag(name, plumbing.NewHash(sha), nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) annotatedTag(name, sha string) {
	f.t.Helper()
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1_700_000_000, 0)}
	if _, err := f.repo.CreateTag(name, plumbing.NewHash(sha), &git.CreateTagOptions{Tagger: sig, Message: name}); err != nil {
		f.t.Fatal(err)
	}
}

// push sends every branch and tag to the bare repository at dir (created
// when missing) over file://, as a developer's push would.
func (f *fixture) push(bareDir string) {
	f.t.Helper()
	if _, err := os.Stat(bareDir); os.IsNotExist(err) {
		bare, err := git.PlainInit(bareDir, true)
		if err != nil {
			f.t.Fatal(err)
		}
		head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))
		if err := bare.Storer.SetReference(head); err != nil {
			f.t.Fatal(err)
		}
	}
	_ = f.repo.DeleteRemote("server")
	if _, err := f.repo.CreateRemote(&config.RemoteConfig{Name: "server", URLs: []string{"file://" + bareDir}}); err != nil {
		f.t.Fatal(err)
	}
	err := f.repo.Push(&git.PushOptions{
		RemoteName: "server",
		RefSpecs:   []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Force:      true,
	})
	if err != nil && err != git.NoErrAlreadyUpToDate {
		f.t.Fatal(err)
	}
}

// deleteRef removes ref here and in the bare repository at bareDir.
func (f *fixture) deleteRef(bareDir, ref string) {
	f.t.Helper()
	bare, err := git.PlainOpen(bareDir)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range []*git.Repository{f.repo, bare} {
		if err := r.Storer.RemoveReference(plumbing.ReferenceName(ref)); err != nil {
			f.t.Fatal(err)
		}
	}
}

func mustOpen(t testing.TB, opts Options) *Repository {
	t.Helper()
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Repo, err)
	}
	return r
}

func mustResolve(t testing.TB, r *Repository, rev string) string {
	t.Helper()
	sha, err := r.Resolve(rev)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", rev, err)
	}
	return sha
}
