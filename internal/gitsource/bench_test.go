package gitsource

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgsync/pgsync/test/gittest"
)

// files1000 is a repository with 1,000 Cluster files in one commit (spread
// over 10 directories, plus non-YAML noise), opened in place (loose objects,
// as a developer's fresh commits are) and as a cached clone (one packfile,
// as the daemon and CI read it).
type files1000 struct {
	dir          string
	commit       string
	local, clone *Repository
}

func newFiles1000(tb testing.TB) files1000 {
	tb.Helper()
	requireGit(tb)
	f := gittest.NewRepo(tb)
	for d := range 10 {
		files := manyFiles("clusters/team"+string(rune('0'+d)), 100)
		for name := range files {
			files[name] = files[name] + "  # " + name + "\n"
		}
		f.Write(files)
	}
	f.Write(map[string]string{"README.md": "# fleet\n", "clusters/team0/notes.txt": "not yaml\n"})
	commit := f.Commit("1,000 clusters", nil)
	bare := filepath.Join(tb.TempDir(), "fleet.git")
	f.Push(bare)
	local, err := Open(tb.Context(), Options{Repo: f.Dir})
	if err != nil {
		tb.Fatal(err)
	}
	clone, err := Open(tb.Context(), Options{Repo: "file://" + bare, CacheDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	return files1000{dir: f.Dir, commit: commit, local: local, clone: clone}
}

func TestFiles1000(t *testing.T) {
	fx := newFiles1000(t)
	for name, r := range map[string]*Repository{"local": fx.local, "clone": fx.clone} {
		files, err := r.Files(fx.commit, "clusters")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1000 {
			t.Fatalf("%s: %d files, want 1000", name, len(files))
		}
		if files[0].Path != "clusters/team0/c0000.yaml" || files[999].Path != "clusters/team9/c0099.yaml" {
			t.Fatalf("%s: first %s, last %s", name, files[0].Path, files[999].Path)
		}
	}
}

// BenchmarkFiles1000 reads 1,000 YAML files at one commit. The baseline
// sub-benchmark reads the same files from the checked-out work tree with
// os.ReadFile, the cheapest way to get them at all.
func BenchmarkFiles1000(b *testing.B) {
	fx := newFiles1000(b)
	b.Run("baseline-worktree-readfile", func(b *testing.B) {
		for b.Loop() {
			n := 0
			err := filepath.WalkDir(filepath.Join(fx.dir, "clusters"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !isYAML(p) {
					return err
				}
				_, err = os.ReadFile(p)
				n++
				return err
			})
			if err != nil || n != 1000 {
				b.Fatal(n, err)
			}
		}
	})
	for _, bc := range []struct {
		name string
		r    *Repository
	}{{"local-loose", fx.local}, {"clone-packed", fx.clone}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				files, err := bc.r.Files(fx.commit, "clusters")
				if err != nil || len(files) != 1000 {
					b.Fatal(len(files), err)
				}
			}
		})
	}
	// What one CLI run pays: open the cache entry in place, then read, with
	// go-git's object cache empty.
	b.Run("clone-packed-cold-open", func(b *testing.B) {
		for b.Loop() {
			r, err := Open(b.Context(), Options{Repo: fx.clone.Dir()})
			if err != nil {
				b.Fatal(err)
			}
			files, err := r.Files(fx.commit, "clusters")
			if err != nil || len(files) != 1000 {
				b.Fatal(len(files), err)
			}
		}
	})
}

// BenchmarkOpenUpToDate is what every run pays on a cached clone when the
// remote has not moved: connect, compare refs, fetch nothing. The baseline
// opens the same cache entry in place, with no network round trip.
func BenchmarkOpenUpToDate(b *testing.B) {
	requireGit(b)
	f := gittest.NewRepo(b)
	f.Write(manyFiles("clusters", 1000))
	f.Commit("c1", nil)
	bare := filepath.Join(b.TempDir(), "fleet.git")
	f.Push(bare)
	cache := b.TempDir()
	r, err := Open(b.Context(), Options{Repo: "file://" + bare, CacheDir: cache})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline-open-cache-in-place", func(b *testing.B) {
		for b.Loop() {
			if _, err := Open(b.Context(), Options{Repo: r.Dir()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file-url-fetch", func(b *testing.B) {
		for b.Loop() {
			if _, err := Open(b.Context(), Options{Repo: "file://" + bare, CacheDir: cache}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
