package gitsource

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/pgsync/pgsync/test/gittest"
)

// packs maps each pack in a bare repository's objects/pack to its object
// count.
func packs(t *testing.T, repoDir string) map[string]int64 {
	t.Helper()
	idxs, err := filepath.Glob(filepath.Join(repoDir, "objects", "pack", "*.idx"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, p := range idxs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		idx := idxfile.NewMemoryIndex()
		if err := idxfile.NewDecoder(f).Decode(idx); err != nil {
			t.Fatal(err)
		}
		f.Close()
		n, err := idx.Count()
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = n
	}
	return out
}

// manyFiles returns n small Cluster files under dir.
func manyFiles(dir string, n int) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("%s/c%04d.yaml", dir, i)] = fmt.Sprintf(
			"apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: c%04d\nspec:\n  instances: 3\n", i)
	}
	return files
}

// remote is a served repository: where to push, and the URL to open.
type remote struct {
	bareDir string
	url     string
}

func fileRemote(t *testing.T) remote {
	dir := filepath.Join(t.TempDir(), "repo.git")
	return remote{bareDir: dir, url: "file://" + dir}
}

const testToken = "ghp_T0kenThatMustNeverBePrinted"

// httpRemote serves a repository over HTTP with basic auth required
// (user "git", password testToken). Requests under /echo/ are answered 401
// with the decoded credentials in the body, as a misbehaving proxy might.
func httpRemote(t *testing.T) remote {
	t.Helper()
	requireGit(t)
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(srv.Root()) })
	srv.Auth("git", testToken)
	srv.AddHTTPMiddlewares(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/echo/") {
				user, pass, _ := r.BasicAuth()
				w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
				http.Error(w, "credentials "+user+":"+pass+" rejected", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.StopHTTP)
	return remote{bareDir: filepath.Join(srv.Root(), "repo.git"), url: srv.HTTPAddress() + "/repo.git"}
}

// TestCachedCloneFetchesIncrementally: the first Open clones, a commit
// pushed afterwards is visible after the second Open, which reuses the
// cache entry and brings only the new objects.
func TestCachedCloneFetchesIncrementally(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) remote{"file": fileRemote, "http": httpRemote} {
		t.Run(name, func(t *testing.T) {
			requireGit(t)
			hermeticEnv(t)
			t.Setenv(EnvToken, testToken)
			rem := mk(t)
			f := gittest.NewRepo(t)
			f.Write(manyFiles("clusters", 50))
			c1 := f.Commit("c1", nil)
			f.Push(rem.bareDir)

			cache := t.TempDir()
			r1 := mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
			if got := mustResolve(t, r1, "main"); got != c1 {
				t.Fatalf("main = %s, want %s", got, c1)
			}
			if filepath.Dir(r1.Dir()) != cache {
				t.Fatalf("clone at %s, want inside %s", r1.Dir(), cache)
			}
			before := packs(t, r1.Dir())
			if len(before) != 1 {
				t.Fatalf("after clone: packs %v, want one", before)
			}

			f.Write(map[string]string{"clusters/new.yaml": "name: new\n"})
			c2 := f.Commit("c2", nil)
			f.Push(rem.bareDir)

			r2 := mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
			if r2.Dir() != r1.Dir() {
				t.Fatalf("second Open used %s, want the cache entry %s", r2.Dir(), r1.Dir())
			}
			for _, rev := range []string{"main", "origin/main", "HEAD", "origin/HEAD"} {
				if got := mustResolve(t, r2, rev); got != c2 {
					t.Errorf("%s after fetch = %s, want the new commit %s", rev, got, c2)
				}
			}
			if got := mustResolve(t, r2, "HEAD~1"); got != c1 {
				t.Errorf("HEAD~1 = %s, want %s", got, c1)
			}
			after := packs(t, r2.Dir())
			for p, n := range before {
				if after[p] != n {
					t.Errorf("pack %s of the first clone is gone or changed: the cache was not reused", p)
				}
			}
			var fetched []int64
			for p, n := range after {
				if _, ok := before[p]; !ok {
					fetched = append(fetched, n)
				}
			}
			// The new commit, its root tree, the clusters tree and one blob.
			if len(fetched) != 1 || fetched[0] != 4 {
				t.Errorf("fetch added packs with %v objects, want one pack of 4 (first clone had %v)", fetched, before)
			}
			files, err := r2.Files(c2, "clusters")
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 51 {
				t.Errorf("Files at c2: %d, want 51", len(files))
			}

			// Nothing new: a third Open fetches nothing.
			r3 := mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
			if got := packs(t, r3.Dir()); len(got) != len(after) {
				t.Errorf("an up-to-date fetch added packs: %v → %v", after, got)
			}
		})
	}
}

// TestCachedCloneRefs: every revision form on a clone, and branches and
// tags that the remote deletes or adds.
func TestCachedCloneRefs(t *testing.T) {
	requireGit(t)
	hermeticEnv(t)
	rem := fileRemote(t)
	h := newHistory(t)
	h.f.Push(rem.bareDir)
	cache := t.TempDir()
	r := mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
	for _, tc := range []struct{ rev, want string }{
		{"main", h.c3}, {"origin/main", h.c3}, {"refs/remotes/origin/main", h.c3},
		{"feature", h.c2}, {"origin/feature", h.c2},
		{"v1", h.c1}, {"v2", h.c2}, {"v2~1", h.c1},
		{h.c2, h.c2}, {h.c1[:7], h.c1},
		{"HEAD", h.c3}, {"HEAD~2", h.c1}, {"main^", h.c2}, {"origin/main~1", h.c2},
	} {
		if got := mustResolve(t, r, tc.rev); got != tc.want {
			t.Errorf("Resolve(%q) = %s, want %s", tc.rev, got, tc.want)
		}
	}
	if _, err := r.Resolve("origin/nope"); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("origin/nope: %v", err)
	}

	// The remote drops feature and v1, adds release and v3.
	h.f.DeleteRef(rem.bareDir, "refs/heads/feature")
	h.f.DeleteRef(rem.bareDir, "refs/tags/v1")
	h.f.SetBranch("release", h.c1)
	h.f.Tag("v3", h.c3)
	h.f.Push(rem.bareDir)
	r = mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
	for rev, want := range map[string]string{"release": h.c1, "origin/release": h.c1, "v3": h.c3} {
		if got := mustResolve(t, r, rev); got != want {
			t.Errorf("after fetch, %s = %s, want %s", rev, got, want)
		}
	}
	for _, rev := range []string{"feature", "origin/feature", "v1"} {
		if _, err := r.Resolve(rev); !errors.Is(err, ErrRevisionNotFound) {
			t.Errorf("after the remote deleted it, Resolve(%q) err = %v, want not found", rev, err)
		}
	}

	// A force-push rewinds main: the cache follows, as the remote says.
	h.f.SetBranch("main", h.c1)
	h.f.Push(rem.bareDir)
	r = mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
	for _, rev := range []string{"main", "origin/main", "HEAD"} {
		if got := mustResolve(t, r, rev); got != h.c1 {
			t.Errorf("after a force-push, %s = %s, want %s", rev, got, h.c1)
		}
	}
}

// TestCachedCloneRemoteWithoutHEAD: a bare repository whose HEAD names a
// branch nobody pushed (git init --bare, then push main) still clones.
func TestCachedCloneRemoteWithoutHEAD(t *testing.T) {
	requireGit(t)
	hermeticEnv(t)
	rem := fileRemote(t)
	f := gittest.NewRepo(t)
	f.Write(map[string]string{"a.yaml": "a: 1\n"})
	c1 := f.Commit("c1", nil)
	f.Push(rem.bareDir)
	bare := mustOpen(t, Options{Repo: rem.bareDir})
	if err := bare.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/master")); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	for range 2 { // clone, then fetch
		r := mustOpen(t, Options{Repo: rem.url, CacheDir: cache})
		if got := mustResolve(t, r, "main"); got != c1 {
			t.Fatalf("main = %s, want %s", got, c1)
		}
		if _, err := r.Resolve("HEAD"); !errors.Is(err, ErrRevisionNotFound) {
			t.Fatalf("HEAD of a remote without HEAD: err %v, want not found", err)
		}
	}
}

func TestConcurrentOpensShareOneClone(t *testing.T) {
	requireGit(t)
	hermeticEnv(t)
	rem := fileRemote(t)
	f := gittest.NewRepo(t)
	f.Write(manyFiles("c", 20))
	c1 := f.Commit("c1", nil)
	f.Push(rem.bareDir)
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	dirs := make([]string, 4)
	for i := range errs {
		wg.Go(func() {
			r, err := Open(t.Context(), Options{Repo: rem.url, CacheDir: cache})
			if err != nil {
				errs[i] = err
				return
			}
			dirs[i] = r.Dir()
			sha, err := r.Resolve("main")
			if err == nil && sha != c1 {
				err = errors.New("main = " + sha)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
		if dirs[i] != dirs[0] {
			t.Errorf("Open %d used %s, Open 0 %s", i, dirs[i], dirs[0])
		}
	}
	entries, _ := os.ReadDir(cache)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) != 2 || !strings.HasSuffix(names[1], ".lock") {
		t.Errorf("cache holds %v, want one clone and its lock file (no leftover temporary clones)", names)
	}
}

func TestHTTPAuthAndSecrecy(t *testing.T) {
	requireGit(t)
	rem := httpRemote(t)
	f := gittest.NewRepo(t)
	f.Write(map[string]string{"a.yaml": "a: 1\n"})
	c1 := f.Commit("c1", nil)
	f.Push(rem.bareDir)
	withCreds := strings.Replace(rem.url, "http://", "http://git:"+testToken+"@", 1)
	echoURL := strings.Replace(rem.url, "/repo.git", "/echo/repo.git", 1)

	for _, tc := range []struct {
		name    string
		env     map[string]string
		auth    Auth
		url     string
		wantErr error // nil: Open succeeds
	}{
		{name: "token from env", env: map[string]string{EnvToken: testToken}, url: rem.url},
		{name: "token and user from env", env: map[string]string{EnvToken: testToken, EnvUsername: "git"}, url: rem.url},
		{name: "token in Options", auth: Auth{Token: testToken}, url: rem.url},
		{name: "token in the URL", url: withCreds},
		{name: "no token", url: rem.url, wantErr: transport.ErrAuthenticationRequired},
		{name: "wrong user", env: map[string]string{EnvToken: testToken, EnvUsername: "someone"}, url: rem.url, wantErr: transport.ErrAuthenticationRequired},
		{name: "wrong token", env: map[string]string{EnvToken: "wrong-" + testToken}, url: rem.url, wantErr: transport.ErrAuthenticationRequired},
		{name: "server echoes the token", env: map[string]string{EnvToken: testToken}, url: echoURL, wantErr: transport.ErrAuthenticationRequired},
		{name: "server echoes the URL's token", url: strings.Replace(echoURL, "http://", "http://git:"+testToken+"@", 1), wantErr: transport.ErrAuthenticationRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hermeticEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cache := t.TempDir()
			r, err := Open(t.Context(), Options{Repo: tc.url, CacheDir: cache, Auth: tc.auth, Logger: logger})
			secrets := []string{testToken, base64.StdEncoding.EncodeToString([]byte("git:" + testToken))}
			for _, s := range secrets {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error leaks the token: %v", err)
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("log leaks the token: %s", logs.String())
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(tc.name, "echoes") && !strings.Contains(err.Error(), "credentials git:*** rejected") {
					t.Fatalf("err = %v, want the server's message with the token masked", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mustResolve(t, r, "main"); got != c1 {
				t.Fatalf("main = %s, want %s", got, c1)
			}
			if strings.Contains(r.Location(), testToken) {
				t.Errorf("Location() leaks the token: %s", r.Location())
			}
			if !strings.Contains(logs.String(), "cloned repository") {
				t.Errorf("no clone record in the log: %s", logs.String())
			}
			// The token is not stored on disk: not in the cache's Git config,
			// not in any file name.
			cfg, err := os.ReadFile(filepath.Join(r.Dir(), "config"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(cfg), testToken) || !strings.Contains(string(cfg), rem.url) {
				t.Errorf("cache config:\n%s\nwant the URL %s without the token", cfg, rem.url)
			}
		})
	}
}

func TestHTTPTokenInURLSharesCacheWithEnvToken(t *testing.T) {
	requireGit(t)
	hermeticEnv(t)
	rem := httpRemote(t)
	f := gittest.NewRepo(t)
	f.Write(map[string]string{"a.yaml": "a: 1\n"})
	f.Commit("c1", nil)
	f.Push(rem.bareDir)
	cache := t.TempDir()
	a := mustOpen(t, Options{Repo: rem.url, CacheDir: cache, Auth: Auth{Token: testToken}})
	b := mustOpen(t, Options{Repo: strings.Replace(rem.url, "http://", "http://git:"+testToken+"@", 1), CacheDir: cache})
	if a.Dir() != b.Dir() {
		t.Errorf("same repository, two cache entries: %s and %s", a.Dir(), b.Dir())
	}
}

// TestOpenWaitsForTheCacheLock: while another process holds a cache entry
// (here: the lock taken directly), Open waits, and gives up with the
// context.
func TestOpenWaitsForTheCacheLock(t *testing.T) {
	requireGit(t)
	hermeticEnv(t)
	rem := fileRemote(t)
	f := gittest.NewRepo(t)
	f.Write(map[string]string{"a.yaml": "a: 1\n"})
	c1 := f.Commit("c1", nil)
	f.Push(rem.bareDir)
	cache := t.TempDir()
	loc, err := parseLocation(rem.url)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(t.Context(), filepath.Join(cache, loc.cacheKey()+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, Options{Repo: rem.url, CacheDir: cache}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open with the entry locked: err %v, want the context's deadline", err)
	}
	done := make(chan error, 1)
	go func() {
		r, err := Open(t.Context(), Options{Repo: rem.url, CacheDir: cache})
		if err == nil {
			var sha string
			if sha, err = r.Resolve("main"); err == nil && sha != c1 {
				err = errors.New("main = " + sha)
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Open returned (%v) while the lock was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("Open after the lock was released: %v", err)
	}
}
