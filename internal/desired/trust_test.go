package desired_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/gitsource"
	"github.com/pgsync/pgsync/test/gittest"
	"github.com/pgsync/pgsync/test/prereq"
)

func clusterYAML(name, image string) string {
	return fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: %s, namespace: db}\nspec:\n  instances: 2\n  imageName: %s\n  storage: {size: 1Gi}\n", name, image)
}

// fleet is a repository of Cluster files whose commits are signed by
// Alice (trusted) or not, and a key ring file with Alice's key.
type fleet struct {
	*gittest.Repo
	alice, mallory *openpgp.Entity
	ring           string // the key ring file
	n              int
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	alice, aliceRing := gittest.NewSigner(t, "Alice", "alice@example.com")
	mallory, _ := gittest.NewSigner(t, "Mallory", "mallory@example.com")
	ring := filepath.Join(t.TempDir(), "trusted.asc")
	if err := os.WriteFile(ring, []byte(aliceRing), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fleet{Repo: gittest.NewRepo(t), alice: alice, mallory: mallory, ring: ring}
}

// bump commits a new image for cluster orders.
func (f *fleet) bump(msg string, key *openpgp.Entity, mergeWith ...string) string {
	f.n++
	f.Write(map[string]string{"clusters/orders.yaml": clusterYAML("orders", fmt.Sprintf("postgres:17.%d", f.n))})
	return f.Commit(msg, key, mergeWith...)
}

func (f *fleet) reader(t *testing.T, verify bool) *desired.Reader {
	t.Helper()
	src := desired.Source{Repo: f.Dir, Ref: "main", Path: "clusters"}
	if verify {
		src.VerifyKey = f.ring
	}
	r, err := desired.Open(t.Context(), src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func image(t *testing.T, s desired.State) string {
	t.Helper()
	if len(s.Set.Clusters) != 1 {
		t.Fatalf("state at %s holds %d clusters", s.Commit, len(s.Set.Clusters))
	}
	return s.Set.Clusters[0].Spec.ImageName
}

func refused(t *testing.T, err error) *desired.UnsignedError {
	t.Helper()
	var u *desired.UnsignedError
	if !errors.As(err, &u) {
		t.Fatalf("err = %v, want *desired.UnsignedError", err)
	}
	return u
}

func TestHeadSinceSignedChain(t *testing.T) {
	f := newFleet(t)
	f.bump("unsigned history before pgsync ran", nil)
	applied := f.bump("first applied", f.alice)
	f.bump("17.3", f.alice)
	head := f.bump("17.4", f.alice)

	r := f.reader(t, true)
	s, err := r.HeadSince(applied, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Commit != head || image(t, s) != "postgres:17.4" || s.Rewind {
		t.Fatalf("state = %s %s rewind %v", s.Commit, image(t, s), s.Rewind)
	}
	// Nothing new: the head is the last applied commit.
	if s, err := r.HeadSince(head, false); err != nil || s.Commit != head {
		t.Fatalf("HeadSince(head) = %s, %v", s.Commit, err)
	}
	// The first run checks the head alone: history before it was never
	// applied by pgsync.
	if s, err := r.HeadSince("", false); err != nil || s.Commit != head {
		t.Fatalf("first run: %s, %v", s.Commit, err)
	}
}

// TestHeadSinceSignedHeadOverUnsigned: a signed head does not vouch for
// the commits under it.
func TestHeadSinceSignedHeadOverUnsigned(t *testing.T) {
	f := newFleet(t)
	applied := f.bump("applied", f.alice)
	sneaked := f.bump("innocent-looking change", nil)
	byMallory := f.bump("signed by an untrusted key", f.mallory)
	f.bump("17.9 signed on top", f.alice)

	s, err := f.reader(t, true).HeadSince(applied, false)
	if s.Commit != "" || s.Set.Clusters != nil {
		t.Errorf("a refused head still returned a state: %+v", s)
	}
	u := refused(t, err)
	if len(u.Refused) != 2 || u.Refused[0].Commit != byMallory || u.Refused[1].Commit != sneaked || u.Checked != 3 || u.Since != applied {
		t.Fatalf("refused = %+v (checked %d, since %s)", u.Refused, u.Checked, u.Since)
	}
	msg := err.Error()
	for _, want := range []string{
		"2 of the 3 commits since the last applied commit " + desired.ShortSHA(applied) + " are not signed by a key in " + f.ring,
		desired.ShortSHA(sneaked) + ` "innocent-looking change": commit is not signed`,
		desired.ShortSHA(byMallory) + ` "signed by an untrusted key": signature not valid`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, gitsource.ErrUnsigned) {
		t.Errorf("errors.Is(err, ErrUnsigned) is false: %v", err)
	}
	// Without a key ring, the same head is applied: signatures are only
	// checked when asked for.
	if s, err := f.reader(t, false).HeadSince(applied, false); err != nil || image(t, s) != "postgres:17.4" {
		t.Fatalf("without --verify-key: %v", err)
	}
}

func TestHeadSinceForcePushToOlderCommit(t *testing.T) {
	f := newFleet(t)
	f.bump("unsigned base", nil)
	older := f.bump("17.2", f.alice)
	applied := f.bump("17.3", f.alice)
	f.SetBranch("main", older) // git push --force origin older:main

	for _, verify := range []bool{false, true} {
		r := f.reader(t, verify)
		_, err := r.HeadSince(applied, false)
		var rw *desired.RewindError
		if !errors.As(err, &rw) || rw.Missing || rw.Head != older || rw.LastApplied != applied {
			t.Fatalf("verify %v: err = %v, want a RewindError for %s under %s", verify, err, older, applied)
		}
		for _, want := range []string{"refusing commit " + desired.ShortSHA(older), "does not descend from the last applied commit " + desired.ShortSHA(applied), "--allow-rewind"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
		s, err := r.HeadSince(applied, true)
		if err != nil {
			t.Fatalf("verify %v, allowRewind: %v", verify, err)
		}
		if s.Commit != older || !s.Rewind || image(t, s) != "postgres:17.2" {
			t.Fatalf("allowRewind: %s rewind %v %s", s.Commit, s.Rewind, image(t, s))
		}
	}

	// A rewind is still verified: rolling back onto an unsigned commit is
	// refused even with allowRewind.
	f.SetBranch("main", mustResolve(t, f, "main~1"))
	_, err := f.reader(t, true).HeadSince(applied, true)
	u := refused(t, err)
	if len(u.Refused) != 1 || u.Refused[0].Subject != "unsigned base" {
		t.Fatalf("refused = %+v", u.Refused)
	}
}

// TestHeadSinceDivergedHistory: a force-push onto a rewritten history
// brings in commits the last applied one never had; with allowRewind they
// are all checked.
func TestHeadSinceDivergedHistory(t *testing.T) {
	f := newFleet(t)
	base := f.bump("base", f.alice)
	applied := f.bump("applied", f.alice)
	f.SetBranch("rewrite", base)
	f.Checkout("rewrite")
	unsigned := f.bump("rewritten, unsigned", nil)
	f.bump("rewritten, signed", f.alice)
	f.SetBranch("main", mustResolve(t, f, "rewrite"))
	f.Checkout("main")

	r := f.reader(t, true)
	var rw *desired.RewindError
	if _, err := r.HeadSince(applied, false); !errors.As(err, &rw) {
		t.Fatalf("err = %v, want a RewindError", err)
	}
	u := refused(t, func() error { _, err := r.HeadSince(applied, true); return err }())
	if len(u.Refused) != 1 || u.Refused[0].Commit != unsigned || u.Checked != 2 {
		t.Fatalf("refused = %+v, checked %d", u.Refused, u.Checked)
	}
}

// TestHeadSinceMerge: a signed merge of a signed branch and an unsigned
// one is refused, naming the unsigned commit on the merged branch.
func TestHeadSinceMerge(t *testing.T) {
	f := newFleet(t)
	applied := f.bump("applied", f.alice)
	f.Checkout("signed-branch")
	f.Write(map[string]string{"clusters/users.yaml": clusterYAML("users", "postgres:17.1")})
	signedSide := f.Commit("users: new cluster", f.alice)
	f.Checkout("main")
	f.Checkout("unsigned-branch")
	f.Write(map[string]string{"clusters/users.yaml": clusterYAML("users", "postgres:17.1"), "clusters/audit.yaml": clusterYAML("audit", "postgres:17.1")})
	unsignedSide := f.Commit("audit: new cluster", nil)
	f.Checkout("main")
	f.Write(map[string]string{"clusters/users.yaml": clusterYAML("users", "postgres:17.1")})
	f.Commit("Merge branch 'signed-branch'", f.alice, signedSide)
	f.Write(map[string]string{"clusters/audit.yaml": clusterYAML("audit", "postgres:17.1")})
	merged := f.Commit("Merge branch 'unsigned-branch'", f.alice, unsignedSide)

	_, err := f.reader(t, true).HeadSince(applied, false)
	u := refused(t, err)
	if len(u.Refused) != 1 || u.Refused[0].Commit != unsignedSide || u.Refused[0].Subject != "audit: new cluster" || u.Checked != 4 {
		t.Fatalf("refused = %+v, checked %d", u.Refused, u.Checked)
	}
	if !strings.Contains(err.Error(), "1 of the 4 commits since the last applied commit "+desired.ShortSHA(applied)+" is not signed") {
		t.Errorf("error: %v", err)
	}

	// The same history with the unsigned branch signed after all (a new
	// signed commit on it, then merged again) is still refused: the
	// unsigned commit is in the range.
	f.Checkout("unsigned-branch")
	resigned := f.Commit("audit: sign off", f.alice)
	f.Checkout("main")
	f.Commit("Merge branch 'unsigned-branch' again", f.alice, resigned)
	u = refused(t, func() error { _, err := f.reader(t, true).HeadSince(applied, false); return err }())
	if len(u.Refused) != 1 || u.Refused[0].Commit != unsignedSide {
		t.Fatalf("refused = %+v", u.Refused)
	}
	// Once the merge is applied (an operator let it through), later
	// commits are checked from there: the unsigned commit is history.
	head := f.bump("17.9", f.alice)
	s, err := f.reader(t, true).HeadSince(merged, false)
	if err != nil || s.Commit != head {
		t.Fatalf("HeadSince(merged) = %s, %v; want %s: every commit since the merge is signed", s.Commit, err, head)
	}
}

// TestHeadSinceLastAppliedMissing: the repository does not hold the last
// applied commit (a force-push removed it before this clone was made).
func TestHeadSinceLastAppliedMissing(t *testing.T) {
	f := newFleet(t)
	f.bump("unsigned base", nil)
	head := f.bump("17.2", f.alice)
	gone := "0123456789abcdef0123456789abcdef01234567"

	r := f.reader(t, true)
	_, err := r.HeadSince(gone, false)
	var rw *desired.RewindError
	if !errors.As(err, &rw) || !rw.Missing || !strings.Contains(err.Error(), "is not in the repository") {
		t.Fatalf("err = %v, want a RewindError for a missing commit", err)
	}
	s, err := r.HeadSince(gone, true)
	if err != nil || s.Commit != head || !s.Rewind {
		t.Fatalf("allowRewind: %s %v, %v", s.Commit, s.Rewind, err)
	}
}

func TestHeadSinceInvalidClusters(t *testing.T) {
	f := newFleet(t)
	applied := f.bump("applied", f.alice)
	f.Write(map[string]string{"clusters/orders.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: orders}\nspec:\n  instances: -1\n"})
	f.Commit("broken", f.alice)
	_, err := f.reader(t, true).HeadSince(applied, false)
	var problems cluster.Errors
	if !errors.As(err, &problems) {
		t.Fatalf("err = %v, want cluster.Errors", err)
	}
}

func mustResolve(t *testing.T, f *fleet, rev string) string {
	t.Helper()
	r, err := gitsource.Open(t.Context(), gitsource.Options{Repo: f.Dir})
	if err != nil {
		t.Fatal(err)
	}
	sha, err := r.Resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// TestHeadSinceFromRemote: as the daemon meets it — a clone fetched from
// a server each cycle — a push is applied, then a force-push back to an
// older commit is refused, in the cached clone (which still holds the old
// commit) and in a fresh one (which does not).
func TestHeadSinceFromRemote(t *testing.T) {
	for _, bin := range []string{"git", "git-upload-pack", "git-receive-pack"} {
		if _, err := exec.LookPath(bin); err != nil {
			prereq.Missing(t, "%s not found on PATH: the remote is served by real git", bin)
		}
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // desired.Open clones into the user cache
	f := newFleet(t)
	bare := filepath.Join(t.TempDir(), "fleet.git")
	older := f.bump("17.1", f.alice)
	f.Push(bare)
	open := func() *desired.Reader {
		t.Helper()
		r, err := desired.Open(t.Context(), desired.Source{Repo: "file://" + bare, Ref: "main", Path: "clusters", VerifyKey: f.ring}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s, err := open().HeadSince("", false)
	if err != nil || s.Commit != older {
		t.Fatalf("first run: %s, %v", s.Commit, err)
	}
	f.bump("sneaked in unsigned", nil)
	applied := f.bump("17.3", f.alice)
	f.Push(bare)
	if _, err := open().HeadSince(older, false); !errors.Is(err, gitsource.ErrUnsigned) {
		t.Fatalf("a push with an unsigned commit under a signed head: %v", err)
	}
	f.SetBranch("main", older)
	f.Push(bare) // git push --force
	var rw *desired.RewindError
	if _, err := open().HeadSince(applied, false); !errors.As(err, &rw) || rw.Missing {
		t.Fatalf("force-push, cached clone: %v, want a RewindError", err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if _, err := open().HeadSince(applied, false); !errors.As(err, &rw) || !rw.Missing {
		t.Fatalf("force-push, fresh clone: %v, want a RewindError for a missing commit", err)
	}
	if s, err := open().HeadSince(applied, true); err != nil || s.Commit != older || !s.Rewind {
		t.Fatalf("allowRewind: %s, %v", s.Commit, err)
	}
}
