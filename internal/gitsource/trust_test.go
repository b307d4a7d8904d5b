package gitsource

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/pgsync/pgsync/test/gittest"
	"github.com/pgsync/pgsync/test/prereq"
)

func TestAncestor(t *testing.T) {
	g := gittest.NewRepo(t)
	c1 := g.Commit("c1", nil)
	c2 := g.Commit("c2", nil)
	g.Checkout("side")
	s1 := g.Commit("s1", nil)
	g.Checkout("main")
	c3 := g.Commit("c3", nil)
	merge := g.Commit("merge side", nil, s1)
	r := mustOpen(t, Options{Repo: g.Dir})

	for _, tc := range []struct {
		a, d string
		want bool
	}{
		{c1, c3, true},
		{c3, c1, false},
		{c2, c2, true},
		{s1, c3, false}, // a branch beside, not under
		{c2, s1, true},
		{s1, merge, true}, // through the merge's second parent
		{c1, "main", true},
		{"main", c3, false},
	} {
		got, err := r.Ancestor(tc.a, tc.d)
		if err != nil {
			t.Fatalf("Ancestor(%.7s, %.7s): %v", tc.a, tc.d, err)
		}
		if got != tc.want {
			t.Errorf("Ancestor(%.7s, %.7s) = %v, want %v", tc.a, tc.d, got, tc.want)
		}
	}
	for _, tc := range [][2]string{{"0123456789012345678901234567890123456789", c3}, {c1, "nope"}} {
		if _, err := r.Ancestor(tc[0], tc[1]); !errors.Is(err, ErrRevisionNotFound) {
			t.Errorf("Ancestor(%s, %s): err = %v, want ErrRevisionNotFound", tc[0], tc[1], err)
		}
	}
}

// summary is a verdict list as "subject:ok" or "subject:<error>" lines.
func summary(vs []CommitVerdict) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.Subject)
		switch {
		case v.OK():
			b.WriteString(":ok")
		case errors.Is(v.Err, ErrUnsigned):
			b.WriteString(":unsigned")
		case errors.Is(v.Err, ErrSSHSignature):
			b.WriteString(":ssh")
		default:
			b.WriteString(":bad")
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

func TestVerifyRangeLinear(t *testing.T) {
	alice, ring := gittest.NewSigner(t, "Alice", "alice@example.com")
	mallory, _ := gittest.NewSigner(t, "Mallory", "mallory@example.com")
	g := gittest.NewRepo(t)
	c1 := g.Commit("c1 unsigned base", nil)
	c2 := g.Commit("c2 signed", alice)
	c3 := g.Commit("c3 unsigned", nil)
	c4 := g.Commit("c4 by mallory", mallory)
	c5 := g.Commit("c5 signed head\n\nwith a body", alice)
	r := mustOpen(t, Options{Repo: g.Dir})

	for _, tc := range []struct {
		from, to, want string
	}{
		{c1, c5, "c5 signed head:ok c4 by mallory:bad c3 unsigned:unsigned c2 signed:ok"},
		{c4, c5, "c5 signed head:ok"},
		{c5, c5, ""},
		{c5, c2, ""}, // to is behind from: nothing new
		{"", c2, "c2 signed:ok c1 unsigned base:unsigned"},
		{"HEAD~3", "main", "c5 signed head:ok c4 by mallory:bad c3 unsigned:unsigned"},
	} {
		vs, err := r.VerifyRange(tc.from, tc.to, ring)
		if err != nil {
			t.Fatalf("VerifyRange(%.7s, %.7s): %v", tc.from, tc.to, err)
		}
		if got := summary(vs); got != tc.want {
			t.Errorf("VerifyRange(%.7s, %.7s) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}

	vs, err := r.VerifyRange(c1, c5, ring)
	if err != nil {
		t.Fatal(err)
	}
	if vs[0].Commit != c5 || vs[0].Signer != "Alice <alice@example.com>" || vs[0].Parents != 1 {
		t.Errorf("head verdict = %+v", vs[0])
	}
	if s := vs[2].String(); !strings.HasPrefix(s, c3[:12]+` "c3 unsigned": `) || !strings.Contains(s, "not signed") {
		t.Errorf("unsigned verdict reads %q", s)
	}
	if s := vs[1].String(); !strings.Contains(s, "signature not valid for the given keys") {
		t.Errorf("a commit by a key outside the ring reads %q", s)
	}

	// One commit on its own, as the head of a rollback is checked.
	for rev, want := range map[string]string{c3: "c3 unsigned:unsigned", "main": "c5 signed head:ok", c4: "c4 by mallory:bad"} {
		v, err := r.Verdict(rev, ring)
		if err != nil {
			t.Fatalf("Verdict(%.7s): %v", rev, err)
		}
		if got := summary([]CommitVerdict{v}); got != want {
			t.Errorf("Verdict(%.7s) = %q, want %q", rev, got, want)
		}
	}
	if _, err := r.Verdict("nope", ring); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("Verdict(nope): %v", err)
	}
	if _, err := r.Verdict(c5, "no key here"); err == nil {
		t.Error("Verdict with no key in the ring is not an error")
	}

	if _, err := r.VerifyRange(c1, c5, ""); err == nil || !strings.Contains(err.Error(), "holds no OpenPGP public key") {
		t.Errorf("empty ring: %v", err)
	}
	if _, err := r.VerifyRange("nope", c5, ring); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("unknown from: %v", err)
	}
	if _, err := r.VerifyRange(c1, "nope", ring); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("unknown to: %v", err)
	}
}

// TestVerifyRangeMerges: a merge brings in every commit of its side
// branch, and a commit already reachable from `from` is never re-checked,
// even when a merge reaches it by another path.
func TestVerifyRangeMerges(t *testing.T) {
	alice, ring := gittest.NewSigner(t, "Alice", "alice@example.com")
	g := gittest.NewRepo(t)
	g.Write(map[string]string{"a.yaml": "a: 1\n"})
	old := g.Commit("old unsigned", nil)
	g.Checkout("unsigned-side")
	g.Write(map[string]string{"b.yaml": "b: 1\n"})
	u1 := g.Commit("side: unsigned", nil)
	g.Write(map[string]string{"b.yaml": "b: 2\n"})
	u2 := g.Commit("side: signed on top", alice)
	g.Checkout("main")
	g.Checkout("signed-side")
	g.Write(map[string]string{"c.yaml": "c: 1\n"})
	s1 := g.Commit("other side: signed", alice)
	g.Checkout("main")
	g.Write(map[string]string{"a.yaml": "a: 2\n"})
	applied := g.Commit("applied", alice)
	// Both sides merged, each merge signed, as a reviewer's merge button
	// signs it.
	g.Write(map[string]string{"c.yaml": "c: 1\n"})
	m1 := g.Commit("merge signed side", alice, s1)
	g.Write(map[string]string{"b.yaml": "b: 2\n"})
	m2 := g.Commit("merge unsigned side", alice, u2)
	r := mustOpen(t, Options{Repo: g.Dir})

	vs, err := r.VerifyRange(applied, m2, ring)
	if err != nil {
		t.Fatal(err)
	}
	want := "merge unsigned side:ok merge signed side:ok side: signed on top:ok other side: signed:ok side: unsigned:unsigned"
	if got := summary(vs); got != want {
		t.Fatalf("VerifyRange(applied, m2) = %q\nwant %q", got, want)
	}
	for _, v := range vs {
		if v.Commit == old {
			t.Errorf("%s is reachable from the applied commit and was checked again", v)
		}
		if (v.Commit == m1 || v.Commit == m2) != (v.Parents == 2) {
			t.Errorf("%s: Parents = %d", v, v.Parents)
		}
		if v.Commit == u1 && v.OK() {
			t.Errorf("the unsigned side commit passed: %s", v)
		}
	}

	// A merge with nothing unsigned but the merge itself.
	g.Write(map[string]string{"d.yaml": "d: 1\n"})
	m3 := g.Commit("unsigned merge of nothing new", nil, s1)
	vs, err = r.VerifyRange(m2, m3, ring)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(vs); got != "unsigned merge of nothing new:unsigned" {
		t.Errorf("VerifyRange(m2, m3) = %q", got)
	}
}

// TestVerifyRangeAlteredParent: a commit changed after it was signed,
// under a correctly signed head, is caught.
func TestVerifyRangeAlteredParent(t *testing.T) {
	alice, ring := gittest.NewSigner(t, "Alice", "alice@example.com")
	g := gittest.NewRepo(t)
	base := g.Commit("base", alice)
	signed := g.Commit("signed", alice)
	orig, err := g.Git.CommitObject(plumbing.NewHash(signed))
	if err != nil {
		t.Fatal(err)
	}
	forged := *orig
	forged.Message = "signed, then altered\n"
	obj := g.Git.Storer.NewEncodedObject()
	if err := forged.Encode(obj); err != nil {
		t.Fatal(err)
	}
	forgedHash, err := g.Git.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	head := commitWithParents(t, g.Git, "head over the altered commit", alice, forgedHash)
	r := mustOpen(t, Options{Repo: g.Dir})

	vs, err := r.VerifyRange(base, head.String(), ring)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(vs); got != "head over the altered commit:ok signed, then altered:bad" {
		t.Fatalf("VerifyRange = %q", got)
	}
}

// commitWithParents writes a signed commit with the given parents (and
// the work tree's tree), whatever HEAD is.
func commitWithParents(t *testing.T, repo *git.Repository, msg string, key *openpgp.Entity, parents ...plumbing.Hash) plumbing.Hash {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1_800_000_000, 0)}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, Parents: parents, SignKey: key, AllowEmptyCommits: true})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// runIn runs a command in dir with the identity and isolation gitCLI
// uses, plus env.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSSHSignedCommitsAreRefused: a commit signed by git with an SSH key
// (gpg.format=ssh, as GitHub and GitLab offer) cannot be verified with
// go-git, and is refused as such — never taken for unsigned, never passed.
func TestSSHSignedCommitsAreRefused(t *testing.T) {
	requireGit(t)
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		prereq.Missing(t, "ssh-keygen not found: git signs with SSH keys through it")
	}
	_, ring := gittest.NewSigner(t, "Alice", "alice@example.com")
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "id_ed25519")
	runIn(t, dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@example.com", "-f", key)
	runIn(t, dir, nil, "git", "init", "-q", "-b", "main")
	runIn(t, dir, nil, "git", "commit", "-q", "--allow-empty", "-m", "base")
	base := runIn(t, dir, nil, "git", "rev-parse", "HEAD")
	runIn(t, dir, nil, "git", "-c", "gpg.format=ssh", "-c", "user.signingkey="+key, "commit", "-q", "-S", "--allow-empty", "-m", "ssh-signed")
	head := runIn(t, dir, nil, "git", "rev-parse", "HEAD")
	if raw := runIn(t, dir, nil, "git", "cat-file", "commit", head); !strings.Contains(raw, "-----BEGIN SSH SIGNATURE-----") {
		t.Fatalf("git did not sign with SSH:\n%s", raw)
	}

	r := mustOpen(t, Options{Repo: dir})
	_, err := r.VerifyCommit(head, ring)
	if !errors.Is(err, ErrSSHSignature) || errors.Is(err, ErrUnsigned) {
		t.Fatalf("VerifyCommit(ssh-signed) = %v, want ErrSSHSignature", err)
	}
	if !strings.Contains(err.Error(), "signed with an SSH key") || !strings.Contains(err.Error(), "OpenPGP signatures only") {
		t.Errorf("the message does not say why: %v", err)
	}
	vs, err := r.VerifyRange(base, head, ring)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(vs); got != "ssh-signed:ssh" {
		t.Errorf("VerifyRange = %q, want the SSH-signed commit refused as such", got)
	}
}

// TestGPGSignedByGitCLI: a commit signed the way people sign — `git commit
// -S` with gpg — verifies against `gpg --export --armor` of the key.
func TestGPGSignedByGitCLI(t *testing.T) {
	requireGit(t)
	if _, err := exec.LookPath("gpg"); err != nil {
		prereq.Missing(t, "gpg not found: the test signs as a developer does")
	}
	home, err := os.MkdirTemp("", "gpg") // short: gpg-agent's socket lives here
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		_ = os.RemoveAll(home)
	})
	dir := t.TempDir()
	runIn(t, dir, env, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "Carol <carol@example.com>", "ed25519", "sign", "never")
	ring := runIn(t, dir, env, "gpg", "--armor", "--export", "carol@example.com")
	runIn(t, dir, env, "git", "init", "-q", "-b", "main")
	runIn(t, dir, env, "git", "commit", "-q", "--allow-empty", "-m", "base")
	base := runIn(t, dir, env, "git", "rev-parse", "HEAD")
	runIn(t, dir, env, "git", "-c", "user.signingkey=carol@example.com", "commit", "-q", "-S", "--allow-empty", "-m", "gpg-signed")
	head := runIn(t, dir, env, "git", "rev-parse", "HEAD")

	r := mustOpen(t, Options{Repo: dir})
	if signer, err := r.VerifyCommit(head, ring); err != nil || signer != "Carol <carol@example.com>" {
		t.Fatalf("VerifyCommit = %q, %v", signer, err)
	}
	vs, err := r.VerifyRange(base, head, ring)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(vs); got != "gpg-signed:ok" {
		t.Errorf("VerifyRange = %q", got)
	}
}
