package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Options says which repository to open and how.
type Options struct {
	// Repo is a local path (any directory inside a work tree; the .git
	// directory is searched upwards) or a URL: file://, https://, http://
	// (loopback only when a token is set), ssh://, or scp-like
	// user@host:path.
	Repo string
	// CacheDir holds remote clones; "" means os.UserCacheDir()/pgsync/git.
	CacheDir string
	// Auth holds credentials; the zero value reads them from the
	// environment (AuthFromEnv).
	Auth Auth
	// Logger receives debug and info records; nil discards them. Records
	// never contain credentials.
	Logger *slog.Logger
}

// Repository is an opened repository: a local one in place, or the cached
// clone of a remote one. Its methods only read; they are safe to call from
// one goroutine at a time.
type Repository struct {
	repo  *git.Repository
	store *filesystem.Storage
	loc   location
	dir   string // the work tree / repository directory, or the cache entry
}

// Dir is the directory the repository is read from: the local repository,
// or the cache entry of a remote one.
func (r *Repository) Dir() string { return r.dir }

// Location is the repository as given, with any password removed.
func (r *Repository) Location() string { return r.loc.String() }

// Remote refs are fetched under refs/remotes/origin and copied to local
// branches, so both "main" and "origin/main" resolve in a cached clone, as
// they do in a fresh `git clone`.
const remoteName = "origin"

var (
	fetchSpecs = []config.RefSpec{
		"+refs/heads/*:refs/remotes/origin/*",
		"+refs/tags/*:refs/tags/*",
	}
	headSpec   = config.RefSpec("+HEAD:refs/remotes/origin/HEAD")
	originHEAD = plumbing.ReferenceName("refs/remotes/" + remoteName + "/HEAD")
)

// Open opens a local repository in place, or clones a remote one into the
// cache (the first time) and fetches all its branches and tags (every later
// time, incrementally). Errors never contain credentials.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	loc, err := parseLocation(opts.Repo)
	if err != nil {
		return nil, err
	}
	if loc.kind == kindLocal {
		return openLocal(loc)
	}

	a := opts.Auth
	if a == (Auth{}) {
		a = AuthFromEnv(os.Getenv)
	}
	secrets := a.secrets(loc)
	r, err := openRemote(ctx, loc, a, opts.CacheDir, log)
	if err != nil {
		return nil, scrub(err, secrets)
	}
	return r, nil
}

func openLocal(loc location) (*Repository, error) {
	abs, err := filepath.Abs(loc.path)
	if err != nil {
		return nil, fmt.Errorf("repository path %s: %w", loc.path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("repository path: %w", err)
	}
	// The directory itself first (a work tree's root or a bare
	// repository), then upwards for a .git (go-git's upward search does
	// not recognise bare repositories).
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	}
	if err != nil {
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("%s is not inside a git repository", loc.path)
		}
		return nil, fmt.Errorf("opening repository %s: %w", loc.path, err)
	}
	dir := abs
	if wt, err := repo.Worktree(); err == nil {
		dir = wt.Filesystem.Root()
	}
	return newRepository(repo, loc, dir)
}

func openRemote(ctx context.Context, loc location, a Auth, cacheDir string, log *slog.Logger) (*Repository, error) {
	auth, err := transportAuth(loc, a)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("finding the cache directory: %w (set Options.CacheDir)", err)
		}
		cacheDir = filepath.Join(base, "pgsync", "git")
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	dir := filepath.Join(cacheDir, loc.cacheKey())

	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return nil, fmt.Errorf("locking cache entry %s: %w", dir, err)
	}
	defer unlock()

	start := time.Now()
	repo, err := git.PlainOpen(dir)
	switch {
	case errors.Is(err, git.ErrRepositoryNotExists):
		repo, err = cloneInto(ctx, loc, auth, dir)
		if err != nil {
			return nil, fmt.Errorf("cloning %s: %w", loc, err)
		}
		log.Info("cloned repository", "repo", loc.String(), "cache", dir, "duration", time.Since(start))
	case err != nil:
		return nil, fmt.Errorf("opening cached clone %s of %s: %w (remove it to clone again)", dir, loc, err)
	default:
		updated, err := fetch(ctx, repo, auth)
		if err != nil {
			return nil, fmt.Errorf("fetching %s into %s: %w", loc, dir, err)
		}
		log.Info("fetched repository", "repo", loc.String(), "cache", dir, "updated", updated, "duration", time.Since(start))
	}
	return newRepository(repo, loc, dir)
}

// newRepository reopens repo's storage for reading with its packfile
// descriptors kept open between object reads (go-git otherwise opens the
// pack once per object: 1,000 files cost ~4x more). Every public read
// method closes them again when it returns.
func newRepository(opened *git.Repository, loc location, dir string) (*Repository, error) {
	st, ok := opened.Storer.(*filesystem.Storage)
	if !ok {
		return nil, fmt.Errorf("opening %s: unexpected storage %T", loc, opened.Storer)
	}
	keep := filesystem.NewStorageWithOptions(st.Filesystem(), cache.NewObjectLRUDefault(), filesystem.Options{KeepDescriptors: true})
	repo, err := git.Open(keep, nil)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", loc, err)
	}
	return &Repository{repo: repo, store: keep, loc: loc, dir: dir}, nil
}

// release closes the packfiles a read kept open.
func (r *Repository) release() { _ = r.store.Close() }

// cloneInto clones into a temporary sibling of dir and renames it into
// place, so an interrupted clone never leaves a half-filled cache entry.
func cloneInto(ctx context.Context, loc location, auth transport.AuthMethod, dir string) (*git.Repository, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename

	repo, err := git.PlainInit(tmp, true)
	if err != nil {
		return nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{loc.url},
		Fetch: fetchSpecs,
	}); err != nil {
		return nil, err
	}
	if _, err := fetch(ctx, repo, auth); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return git.PlainOpen(dir)
}

// fetch brings all branches and tags up to date (pruning deleted ones) and
// the remote's HEAD, then points local branches and HEAD at the remote's. It
// reports whether any ref changed.
func fetch(ctx context.Context, repo *git.Repository, auth transport.AuthMethod) (bool, error) {
	withHead := append(append([]config.RefSpec{}, fetchSpecs...), headSpec)
	updated, err := fetchRefs(ctx, repo, auth, withHead)
	if errors.Is(err, git.NoMatchingRefSpecError{}) {
		// The remote's HEAD names a branch that does not exist (a bare
		// repository whose default branch was never pushed). Branches and
		// tags still resolve; "HEAD" then does not.
		if err := repo.Storer.RemoveReference(originHEAD); err != nil {
			return false, err
		}
		updated, err = fetchRefs(ctx, repo, auth, fetchSpecs)
	}
	if err != nil {
		return false, err
	}
	if err := alignBranches(repo); err != nil {
		return false, fmt.Errorf("updating local branches: %w", err)
	}
	return updated, nil
}

func fetchRefs(ctx context.Context, repo *git.Repository, auth transport.AuthMethod, specs []config.RefSpec) (bool, error) {
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   specs,
		Auth:       auth,
		Tags:       git.AllTags,
		Prune:      true,
		Force:      true,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return false, nil
	}
	return err == nil, err
}

// alignBranches makes refs/heads/X equal refs/remotes/origin/X for every
// remote branch, removes local branches the remote no longer has, and makes
// HEAD follow the remote's HEAD. The cache is pgsync's own; nothing else
// writes to its branches.
func alignBranches(repo *git.Repository) error {
	const remotePrefix = "refs/remotes/" + remoteName + "/"
	refs, err := repo.References()
	if err != nil {
		return err
	}
	remote := map[string]plumbing.Hash{}
	var local []plumbing.ReferenceName
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		name := ref.Name().String()
		switch {
		case ref.Type() != plumbing.HashReference:
		case strings.HasPrefix(name, remotePrefix) && ref.Name() != originHEAD:
			remote[strings.TrimPrefix(name, remotePrefix)] = ref.Hash()
		case ref.Name().IsBranch():
			local = append(local, ref.Name())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range local {
		if _, ok := remote[name.Short()]; !ok {
			if err := repo.Storer.RemoveReference(name); err != nil {
				return err
			}
		}
	}
	for branch, hash := range remote {
		ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), hash)
		if err := repo.Storer.SetReference(ref); err != nil {
			return err
		}
	}
	head := plumbing.NewSymbolicReference(plumbing.HEAD, originHEAD)
	return repo.Storer.SetReference(head)
}
