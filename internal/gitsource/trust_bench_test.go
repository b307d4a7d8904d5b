package gitsource

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/pgsync/pgsync/test/gittest"
)

// longHistory is a cached clone (one packfile) of a linear history of n
// commits whose last `signed` commits are signed by the returned ring's
// key, and the SHAs of every commit, oldest first.
func longHistory(tb testing.TB, n, signed int) (*Repository, []string, string) {
	tb.Helper()
	requireGit(tb)
	key, ring := gittest.NewSigner(tb, "Alice", "alice@example.com")
	g := gittest.NewRepo(tb)
	g.Write(map[string]string{"clusters/a.yaml": "a: 1\n"})
	first := g.Commit("first", nil)
	root, err := g.Git.CommitObject(plumbing.NewHash(first))
	if err != nil {
		tb.Fatal(err)
	}
	shas := []string{first}
	parent := root.Hash
	for i := 1; i < n; i++ {
		when := time.Unix(1_700_000_000+int64(i)*60, 0)
		c := &object.Commit{
			Author:       object.Signature{Name: "Test", Email: "test@example.com", When: when},
			Committer:    object.Signature{Name: "Test", Email: "test@example.com", When: when},
			Message:      "commit\n",
			TreeHash:     root.TreeHash,
			ParentHashes: []plumbing.Hash{parent},
		}
		if i >= n-signed {
			c.PGPSignature = detachSign(tb, key, c)
		}
		obj := g.Git.Storer.NewEncodedObject()
		if err := c.Encode(obj); err != nil {
			tb.Fatal(err)
		}
		if parent, err = g.Git.Storer.SetEncodedObject(obj); err != nil {
			tb.Fatal(err)
		}
		shas = append(shas, parent.String())
	}
	g.SetBranch("main", parent.String())
	bare := filepath.Join(tb.TempDir(), "long.git")
	g.Push(bare)
	r, err := Open(tb.Context(), Options{Repo: "file://" + bare, CacheDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	return r, shas, ring
}

func detachSign(tb testing.TB, key *openpgp.Entity, c *object.Commit) string {
	tb.Helper()
	unsigned := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(unsigned); err != nil {
		tb.Fatal(err)
	}
	rd, err := unsigned.Reader()
	if err != nil {
		tb.Fatal(err)
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, key, rd, nil); err != nil {
		tb.Fatal(err)
	}
	return sig.String()
}

// BenchmarkVerifyRange10Of10000: a push of 10 signed commits onto a
// history of 10,000 (the whole history under `from` is walked to exclude
// it).
func BenchmarkVerifyRange10Of10000(b *testing.B) {
	r, shas, ring := longHistory(b, 10_000, 10)
	from, to := shas[len(shas)-11], shas[len(shas)-1]
	for b.Loop() {
		vs, err := r.VerifyRange(from, to, ring)
		if err != nil || len(vs) != 10 || !vs[9].OK() {
			b.Fatalf("%d verdicts, %v", len(vs), err)
		}
	}
}

// BenchmarkAncestor10000: descent over 10 commits, and the worst case, a
// force-push one commit back: the last applied commit is not an ancestor,
// so the head's whole history is walked.
func BenchmarkAncestor10000(b *testing.B) {
	r, shas, _ := longHistory(b, 10_000, 0)
	tip := shas[len(shas)-1]
	b.Run("near", func(b *testing.B) {
		for b.Loop() {
			if ok, err := r.Ancestor(shas[len(shas)-11], tip); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("not-an-ancestor", func(b *testing.B) {
		for b.Loop() {
			if ok, err := r.Ancestor(tip, shas[len(shas)-2]); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// TestLongHistoryFixture keeps the benchmark's fixture honest: the signed
// tail verifies and the unsigned commit under it is caught.
func TestLongHistoryFixture(t *testing.T) {
	r, shas, ring := longHistory(t, 50, 5)
	vs, err := r.VerifyRange(shas[len(shas)-7], shas[len(shas)-1], ring)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(vs); got != "commit:ok commit:ok commit:ok commit:ok commit:ok commit:unsigned" {
		t.Fatalf("VerifyRange = %q", got)
	}
}
