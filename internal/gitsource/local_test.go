package gitsource

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/test/gittest"
)

// history builds main: c1 → c2 → c3, branch feature at c2, lightweight tag
// v1 at c1, annotated tag v2 at c2. c1 and c2 carry the files Files is
// tested on.
type history struct {
	f          *gittest.Repo
	c1, c2, c3 string
}

func newHistory(t testing.TB) history {
	f := gittest.NewRepo(t)
	f.Write(map[string]string{
		"README.md":                "# repo\n",
		"top.yaml":                 "kind: Top\n",
		"clusters/a.yaml":          "name: a\n",
		"clusters/b.yml":           "name: b\n",
		"clusters/notes.txt":       "not yaml\n",
		"clusters/sub/c.yaml":      "name: c\n",
		"clusters/sub/d.json":      "{}\n",
		"clusters/a0.yaml":         "name: a0\n",
		"clusters/a-b/e.yaml":      "name: e\n",
		"other/x.yaml":             "name: x\n",
		"other/deep/er/y.YAML":     "name: y\n",
		"clusters/yaml.txt":        "named yaml but is not\n",
		"clusters/sub/.hidden.yml": "name: hidden\n",
	})
	c1 := f.Commit("c1", nil)
	f.Write(map[string]string{
		"clusters/a.yaml":       "name: a\nversion: 2\n",
		"clusters/b.yml":        "",
		"clusters/new/f.yaml":   "name: f\n",
		"clusters/sub/c.yaml":   "",
		"clusters/sub/keep.txt": "sub stays a directory\n",
	})
	// A symbolic link named like YAML: its blob is a path, not content.
	if err := os.Symlink("a.yaml", filepath.Join(f.Dir, "clusters", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	c2 := f.Commit("c2", nil)
	f.Write(map[string]string{"README.md": "# repo, third\n"})
	c3 := f.Commit("c3", nil)
	f.SetBranch("feature", c2)
	f.Tag("v1", c1)
	f.AnnotatedTag("v2", c2)
	return history{f: f, c1: c1, c2: c2, c3: c3}
}

func TestOpenLocalFromSubdirectory(t *testing.T) {
	h := newHistory(t)
	r := mustOpen(t, Options{Repo: filepath.Join(h.f.Dir, "clusters", "sub")})
	if got := mustResolve(t, r, "HEAD"); got != h.c3 {
		t.Fatalf("HEAD = %s, want %s", got, h.c3)
	}
	want, _ := filepath.EvalSymlinks(h.f.Dir)
	got, _ := filepath.EvalSymlinks(r.Dir())
	if got != want {
		t.Fatalf("Dir() = %s, want the work tree %s (opened in place)", got, want)
	}
}

func TestOpenLocalNotARepository(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(t.Context(), Options{Repo: dir})
	if err == nil || !strings.Contains(err.Error(), "not inside a git repository") {
		t.Fatalf("err = %v, want 'not inside a git repository'", err)
	}
	_, err = Open(t.Context(), Options{Repo: filepath.Join(dir, "missing")})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
}

func TestResolveLocal(t *testing.T) {
	h := newHistory(t)
	r := mustOpen(t, Options{Repo: h.f.Dir})
	for _, tc := range []struct{ rev, want string }{
		{"main", h.c3},
		{"refs/heads/main", h.c3},
		{"feature", h.c2},
		{"v1", h.c1}, // lightweight tag
		{"v2", h.c2}, // annotated tag: its commit, not the tag object
		{"refs/tags/v2", h.c2},
		{h.c1, h.c1},     // full SHA
		{h.c2[:7], h.c2}, // short SHA
		{h.c1[:9], h.c1}, // odd-length short SHA
		{"HEAD", h.c3},
		{"", h.c3},
		{"HEAD~1", h.c2},
		{"HEAD~2", h.c1},
		{"main^", h.c2},
		{"main^^", h.c1},
		{"main^1", h.c2},
		{"v2~1", h.c1},
		{"feature~1", h.c1},
	} {
		if got := mustResolve(t, r, tc.rev); got != tc.want {
			t.Errorf("Resolve(%q) = %s, want %s", tc.rev, got, tc.want)
		}
	}
	for _, rev := range []string{"nope", "origin/main", "HEAD~3", "main^2", strings.Repeat("ab", 20), "0000000", "v9"} {
		_, err := r.Resolve(rev)
		if err == nil {
			t.Errorf("Resolve(%q) succeeded, want not found", rev)
			continue
		}
		if !errors.Is(err, ErrRevisionNotFound) || !strings.Contains(err.Error(), `"`+rev+`"`) || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Resolve(%q) error = %q, want it to name the revision and say not found", rev, err)
		}
	}
}

func paths(files []cluster.File) []string {
	var p []string
	for _, f := range files {
		p = append(p, f.Path)
	}
	return p
}

func TestFiles(t *testing.T) {
	h := newHistory(t)
	r := mustOpen(t, Options{Repo: h.f.Dir})

	for _, tc := range []struct {
		name, commit, dir string
		want              []string
	}{
		{"whole tree c1", h.c1, "", []string{
			"clusters/a-b/e.yaml", "clusters/a.yaml", "clusters/a0.yaml", "clusters/b.yml",
			"clusters/sub/.hidden.yml", "clusters/sub/c.yaml", "other/deep/er/y.YAML", "other/x.yaml", "top.yaml"}},
		{"dot is the root", h.c1, ".", []string{
			"clusters/a-b/e.yaml", "clusters/a.yaml", "clusters/a0.yaml", "clusters/b.yml",
			"clusters/sub/.hidden.yml", "clusters/sub/c.yaml", "other/deep/er/y.YAML", "other/x.yaml", "top.yaml"}},
		{"dir c1", h.c1, "clusters", []string{
			"clusters/a-b/e.yaml", "clusters/a.yaml", "clusters/a0.yaml", "clusters/b.yml",
			"clusters/sub/.hidden.yml", "clusters/sub/c.yaml"}},
		{"dir c2: b removed, new added, link skipped", h.c2, "clusters", []string{
			"clusters/a-b/e.yaml", "clusters/a.yaml", "clusters/a0.yaml", "clusters/new/f.yaml",
			"clusters/sub/.hidden.yml"}},
		{"dir spelled ./x/", h.c1, "./clusters/sub/", []string{"clusters/sub/.hidden.yml", "clusters/sub/c.yaml"}},
		{"nested dir", h.c1, "other/deep", []string{"other/deep/er/y.YAML"}},
		{"a revision, not only a SHA", "v2", "clusters/new", []string{"clusters/new/f.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := r.Files(tc.commit, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, paths(files)); diff != "" {
				t.Fatalf("paths (-want +got):\n%s", diff)
			}
			if !sort.SliceIsSorted(files, func(i, j int) bool { return files[i].Path < files[j].Path }) {
				t.Fatal("files not sorted by Path")
			}
		})
	}

	// Content is the blob at that commit, not the work tree's.
	for _, tc := range []struct{ commit, want string }{
		{h.c1, "name: a\n"},
		{h.c2, "name: a\nversion: 2\n"},
	} {
		files, err := r.Files(tc.commit, "clusters")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.Path == "clusters/a.yaml" && string(f.Data) != tc.want {
				t.Errorf("a.yaml at %s = %q, want %q", tc.commit[:7], f.Data, tc.want)
			}
		}
	}
}

func TestFilesErrors(t *testing.T) {
	h := newHistory(t)
	r := mustOpen(t, Options{Repo: h.f.Dir})
	for _, tc := range []struct {
		name, commit, dir, want string
		is                      error
	}{
		{"missing dir", h.c1, "nope", `directory "nope" does not exist at commit ` + h.c1, ErrPathNotFound},
		{"dir only in a later commit", h.c1, "clusters/new", `directory "clusters/new" does not exist`, ErrPathNotFound},
		{"a file, not a dir", h.c1, "top.yaml", `"top.yaml" at commit ` + h.c1 + " is not a directory", nil},
		{"escapes the repo", h.c1, "../x", "leaves the repository", nil},
		{"absolute", h.c1, "/clusters", "relative to the repository root", nil},
		{"unknown commit", "nope", "", `revision "nope" not found`, ErrRevisionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Files(tc.commit, tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

func TestVerifyCommit(t *testing.T) {
	alice, aliceRing := gittest.NewSigner(t, "Alice", "alice@example.com")
	_, malloryRing := gittest.NewSigner(t, "Mallory", "mallory@example.com")

	f := gittest.NewRepo(t)
	f.Write(map[string]string{"a.yaml": "a: 1\n"})
	unsigned := f.Commit("unsigned", nil)
	f.Write(map[string]string{"a.yaml": "a: 2\n"})
	signed := f.Commit("signed", alice)
	// The signed commit with its message changed and Alice's signature kept.
	orig, err := f.Git.CommitObject(plumbing.NewHash(signed))
	if err != nil {
		t.Fatal(err)
	}
	forged := *orig
	forged.Message = "signed, then altered\n"
	obj := f.Git.Storer.NewEncodedObject()
	if err := forged.Encode(obj); err != nil {
		t.Fatal(err)
	}
	forgedHash, err := f.Git.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, Options{Repo: f.Dir})

	signer, err := r.VerifyCommit(signed, aliceRing)
	if err != nil {
		t.Fatalf("signed commit: %v", err)
	}
	if signer != "Alice <alice@example.com>" {
		t.Fatalf("signer = %q", signer)
	}
	// Both keys in the ring: still Alice.
	if signer, err := r.VerifyCommit("HEAD", malloryRing+"\n"+aliceRing); err != nil || signer != "Alice <alice@example.com>" {
		t.Fatalf("two-key ring: signer %q, err %v", signer, err)
	}

	for _, tc := range []struct {
		name, commit, ring, want string
		is                       error
	}{
		{"unsigned", unsigned, aliceRing, "is not signed", ErrUnsigned},
		{"wrong key", signed, malloryRing, "signature not valid", nil},
		{"altered after signing", forgedHash.String(), aliceRing, "signature not valid", nil},
		{"empty ring", signed, "", "holds no OpenPGP public key", nil},
		{"garbage ring", signed, "not a key", "holds no OpenPGP public key", nil},
		{"unknown commit", "nope", aliceRing, "not found", ErrRevisionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer, err := r.VerifyCommit(tc.commit, tc.ring)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("signer %q, err = %v, want it to contain %q", signer, err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

// gitCLI runs git in dir with a fixed identity and no user configuration.
func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestOpenGitCLIRepository: a repository as the git CLI leaves it after
// gc (packed objects and packed-refs), and a linked work tree of it (a .git
// file pointing at the common directory).
func TestOpenGitCLIRepository(t *testing.T) {
	requireGit(t)
	dir := t.TempDir()
	main := filepath.Join(dir, "main")
	if err := os.MkdirAll(filepath.Join(main, "clusters"), 0o755); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, main, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(main, "clusters", "a.yaml"), []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, main, "add", ".")
	gitCLI(t, main, "commit", "-q", "-m", "c1")
	c1 := gitCLI(t, main, "rev-parse", "HEAD")
	gitCLI(t, main, "tag", "-a", "-m", "release", "v1")
	if err := os.WriteFile(filepath.Join(main, "clusters", "b.yml"), []byte("b: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, main, "add", ".")
	gitCLI(t, main, "commit", "-q", "-m", "c2")
	c2 := gitCLI(t, main, "rev-parse", "HEAD")
	gitCLI(t, main, "branch", "feature", c1)
	gitCLI(t, main, "gc", "-q")
	if loose, _ := filepath.Glob(filepath.Join(main, ".git", "refs", "tags", "*")); len(loose) != 0 {
		t.Fatalf("git gc left loose tags %v; the test wants packed-refs", loose)
	}
	wt := filepath.Join(dir, "wt")
	gitCLI(t, main, "worktree", "add", "-q", wt, "feature")

	r := mustOpen(t, Options{Repo: main})
	for rev, want := range map[string]string{"v1": c1, "main": c2, "feature": c1, "HEAD~1": c1, c2[:8]: c2} {
		if got := mustResolve(t, r, rev); got != want {
			t.Errorf("Resolve(%q) = %s, want %s", rev, got, want)
		}
	}
	files, err := r.Files("main", "clusters")
	if err != nil || len(files) != 2 {
		t.Fatalf("Files(main): %v, %v", paths(files), err)
	}

	w := mustOpen(t, Options{Repo: filepath.Join(wt, "clusters")})
	if got := mustResolve(t, w, "HEAD"); got != c1 {
		t.Errorf("linked work tree: HEAD = %s, want feature %s", got, c1)
	}
	if got := mustResolve(t, w, "main"); got != c2 {
		t.Errorf("linked work tree: main = %s, want %s", got, c2)
	}
	files, err = w.Files("HEAD", "")
	if err != nil || len(files) != 1 {
		t.Fatalf("Files(HEAD) in the linked work tree: %v, %v", paths(files), err)
	}
}
