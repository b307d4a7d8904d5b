package ci

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const marker = "<!-- pgsync-plan -->"

// platformCase is how one CI platform calls the script.
type platformCase struct {
	name   string
	token  string
	edit   string // the method that updates a comment
	tokEnv string
	// env is what the platform's job gives the script, base being the tip
	// of the target branch and mergeBase where the pull request left it.
	env func(f *forge, base, mergeBase string) map[string]string
}

var platforms = []platformCase{
	{
		name: "github", token: "ghs_s3cretGitHubToken0123456789", edit: "PATCH", tokEnv: "GITHUB_TOKEN",
		// As the workflow does: the base branch's tip, and the script
		// computes the merge base.
		env: func(f *forge, base, _ string) map[string]string {
			return map[string]string{
				"GITHUB_TOKEN":      f.token,
				"GITHUB_API_URL":    f.apiURL(),
				"GITHUB_REPOSITORY": ghRepo,
				"PGSYNC_PR":         ghPR,
				"PGSYNC_BASE":       base,
				"PGSYNC_MERGE_BASE": "true",
				"PGSYNC_PATH":       "clusters",
			}
		},
	},
	{
		name: "gitlab", token: "glpat-s3cretGitLabToken0123456789", edit: "PUT", tokEnv: "GITLAB_TOKEN",
		// As the job does: GitLab's CI_MERGE_REQUEST_DIFF_BASE_SHA is the
		// merge base already.
		env: func(f *forge, _, mergeBase string) map[string]string {
			return map[string]string{
				"GITLAB_TOKEN":         f.token,
				"CI_API_V4_URL":        f.apiURL(),
				"CI_PROJECT_ID":        glProj,
				"CI_MERGE_REQUEST_IID": glMR,
				"CI_JOB_URL":           "https://gitlab.example.com/acme/db/-/jobs/9",
				"PGSYNC_BASE":          mergeBase,
				"PGSYNC_PATH":          "clusters",
			}
		},
	},
}

// prRepo is a repository whose main branch has the shop cluster on 15.18
// (the merge base), then moved on with a new billing cluster after the
// branch "pr" was cut; "pr" is checked out, detached as CI checks it out.
type prRepo struct {
	*gitRepo
	mergeBase, baseTip string
}

func newPRRepo(t *testing.T) prRepo {
	t.Helper()
	r := newGitRepo(t)
	mergeBase := r.commit("shop on 15.18", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:15.18", "20Gi")})
	r.git("branch", "pr")
	baseTip := r.commit("billing cluster", map[string]string{
		"clusters/billing/billing.yaml": strings.ReplaceAll(shopCluster("localhost:5000/postgresql:15.18", "5Gi"), "shop", "billing"),
	})
	r.git("checkout", "-q", "pr")
	return prRepo{r, mergeBase, baseTip}
}

// push commits on the pull request's branch and checks the commit out
// detached.
func (r prRepo) push(msg string, files map[string]string) string {
	r.t.Helper()
	r.git("checkout", "-q", "pr")
	sha := r.commit(msg, files)
	r.git("checkout", "-q", "--detach", sha)
	return sha
}

// checkRun asserts what every run must: the exit code, the token in the
// Authorization header of every request and in none of the script's output.
func checkRun(t *testing.T, f *forge, res result, wantCode int) {
	t.Helper()
	for _, out := range []string{res.stdout, res.stderr} {
		if strings.Contains(out, f.token) {
			t.Errorf("the token appears in the script's output:\n%s", out)
		}
	}
	reqs := f.allRequests()
	if len(reqs) == 0 {
		t.Errorf("no request reached the API")
	}
	for _, r := range reqs {
		if r.Authorization != "Bearer "+f.token {
			t.Errorf("%s %s: Authorization %q, want the bearer token", r.Method, r.Path, r.Authorization)
		}
	}
	if res.code != wantCode {
		t.Fatalf("exit %d, want %d", res.code, wantCode)
	}
}

// onlyBotComment is the one comment the bot has, failing unless there is
// exactly one.
func onlyBotComment(t *testing.T, f *forge) comment {
	t.Helper()
	got := f.botComments()
	if len(got) != 1 {
		t.Fatalf("the bot has %d comments, want exactly 1", len(got))
	}
	if !strings.HasPrefix(got[0].Body, marker+"\n") {
		t.Errorf("the comment does not start with the marker %q:\n%s", marker, got[0].Body)
	}
	return got[0]
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

// TestPullRequestComment follows one pull request through four pushes: an
// image bump (one comment posted), the same again (that comment edited, no
// second one), a refused major upgrade with a storage shrink (the comment
// says what was refused, the check fails), and a revert to the base (the
// comment says there is nothing to do). Other people's comments, one of
// them quoting the marker, come first and fill more than a page.
func TestPullRequestComment(t *testing.T) {
	requireTools(t, "bash", "curl", "git", "jq")
	for _, pc := range platforms {
		t.Run(pc.name, func(t *testing.T) {
			f := newForge(t, pc.name, pc.token)
			for i := range 120 {
				f.seed("alice", fmt.Sprintf("review remark %d", i))
			}
			f.seed("mallory", marker+"\nnot the bot's")
			r := newPRRepo(t)
			env := pc.env(f, r.baseTip, r.mergeBase)

			// 1. An image bump: one comment, posted.
			r.push("shop to 15.19", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:15.19", "20Gi")})
			res := runScript(t, r.dir, pc.name, env)
			checkRun(t, f, res, 0)
			if n := f.count("POST"); n != 1 {
				t.Fatalf("%d POSTs, want 1", n)
			}
			if n := f.count(pc.edit); n != 0 {
				t.Errorf("%d %ss on the first run, want none", n, pc.edit)
			}
			first := onlyBotComment(t, f)
			plan, err := os.ReadFile(filepath.Join(r.dir, "plan.md"))
			if err != nil {
				t.Fatalf("plan.md: %v", err)
			}
			wantContains(t, "the comment", first.Body,
				string(plan),
				"Base `"+r.mergeBase[:12]+"`",
				"| `shop/shop` | ~ update | `spec.imageName` |",
				"`localhost:5000/postgresql:15.18` | `localhost:5000/postgresql:15.19`",
				"1. **update-objects**",
				"**restart-instance** shop-2 (standby)",
				"**switchover** shop-0 (primary): shop-0 → shop-1",
			)
			if strings.Contains(first.Body, "billing") {
				t.Errorf("the plan shows the base branch's later billing cluster: it was not made against the merge base:\n%s", first.Body)
			}

			// 2. The same again: that comment is edited, no second one.
			res = runScript(t, r.dir, pc.name, env)
			checkRun(t, f, res, 0)
			if n := f.count("POST"); n != 1 {
				t.Errorf("%d POSTs after the second run, want still 1", n)
			}
			if n := f.count(pc.edit); n != 1 {
				t.Errorf("%d %ss after the second run, want 1", n, pc.edit)
			}
			if again := onlyBotComment(t, f); again.ID != first.ID {
				t.Errorf("comment %d edited, want %d", again.ID, first.ID)
			}

			// 3. A refused change: the check fails and the comment says why,
			// positioned.
			r.push("shop to 16, smaller", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:16.4", "10Gi")})
			res = runScript(t, r.dir, pc.name, env)
			checkRun(t, f, res, 1)
			refused := onlyBotComment(t, f)
			if refused.ID != first.ID {
				t.Errorf("the refusal went to comment %d, want %d", refused.ID, first.ID)
			}
			wantContains(t, "the refusal comment", refused.Body,
				"pgsync failed or refused this change",
				"clusters/shop/shop.yaml:8:14: spec.imageName: refused: a major version change (PostgreSQL 15 → 16)",
				"clusters/shop/shop.yaml:14:11: spec.storage.size: refused: storage cannot shrink (20Gi → 10Gi)",
			)
			if strings.Contains(refused.Body, "restart-instance") {
				t.Errorf("the refusal comment still shows the earlier plan:\n%s", refused.Body)
			}
			if _, err := os.Stat(filepath.Join(r.dir, "plan.md")); !os.IsNotExist(err) {
				t.Errorf("plan.md after a refused plan: %v, want it removed (a stale plan must not survive)", err)
			}

			// 4. Back to the base: nothing to do, and the comment says so.
			r.push("shop back to 15.18", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:15.18", "20Gi")})
			res = runScript(t, r.dir, pc.name, env)
			checkRun(t, f, res, 0)
			wantContains(t, "the comment after the revert", onlyBotComment(t, f).Body, "No changes.", "1 unchanged")
			if n := f.count("POST"); n != 1 {
				t.Errorf("%d POSTs in all, want 1", n)
			}
			for _, c := range f.comments {
				if c.Author == "mallory" && c.Body != marker+"\nnot the bot's" {
					t.Errorf("another author's comment with the marker was edited: %q", c.Body)
				}
			}
		})
	}
}

// TestNoOpPullRequest: a pull request that changes no cluster passes and
// posts nothing.
func TestNoOpPullRequest(t *testing.T) {
	requireTools(t, "bash", "curl", "git", "jq")
	for _, pc := range platforms {
		t.Run(pc.name, func(t *testing.T) {
			f := newForge(t, pc.name, pc.token)
			r := newPRRepo(t)
			r.push("docs only", map[string]string{"README.md": "Our databases.\n"})
			res := runScript(t, r.dir, pc.name, pc.env(f, r.baseTip, r.mergeBase))
			checkRun(t, f, res, 0)
			if n := len(f.botComments()); n != 0 {
				t.Errorf("%d comments posted for a pull request without changes, want none", n)
			}
			if n := f.count("POST") + f.count(pc.edit); n != 0 {
				t.Errorf("%d writes for a pull request without changes, want none", n)
			}
		})
	}
}

// TestAPIFailure: a rejected token or an API that does not answer fails the
// check, and the error names the request without printing the token.
func TestAPIFailure(t *testing.T) {
	requireTools(t, "bash", "curl", "git", "jq")
	for _, pc := range platforms {
		t.Run(pc.name+"/rejected", func(t *testing.T) {
			f := newForge(t, pc.name, "the-right-token")
			r := newPRRepo(t)
			r.push("shop to 15.19", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:15.19", "20Gi")})
			env := pc.env(f, r.baseTip, r.mergeBase)
			env[pc.tokEnv] = pc.token
			res := runScript(t, r.dir, pc.name, env)
			if res.code != 1 {
				t.Fatalf("exit %d with a rejected token, want 1", res.code)
			}
			wantContains(t, "stderr", res.stderr, "HTTP 401", "Bad credentials")
			if strings.Contains(res.stdout+res.stderr, pc.token) {
				t.Errorf("the rejected token appears in the output:\n%s%s", res.stdout, res.stderr)
			}
		})
		t.Run(pc.name+"/unreachable", func(t *testing.T) {
			f := newForge(t, pc.name, pc.token)
			f.srv.Close()
			r := newPRRepo(t)
			r.push("shop to 15.19", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:15.19", "20Gi")})
			res := runScript(t, r.dir, pc.name, pc.env(f, r.baseTip, r.mergeBase))
			if res.code != 1 {
				t.Fatalf("exit %d with no API, want 1", res.code)
			}
			wantContains(t, "stderr", res.stderr, "no answer")
			if strings.Contains(res.stdout+res.stderr, pc.token) {
				t.Errorf("the token appears in the output:\n%s%s", res.stdout, res.stderr)
			}
		})
	}
}

// TestLiveMode: with PGSYNC_KUBECONFIG the script plans against the live
// clusters: pgsync gets --kubeconfig (a file the script decoded from base64,
// or the file given), --context, --namespace and --status-via (proxy unless
// set: a runner is outside the cluster's network), and neither --base nor
// --offline. A recording wrapper around the real pgsync sees the arguments;
// the kubeconfig points at a closed port, so pgsync fails and the summary
// says so. The kubeconfig's credentials are never printed, and a decoded
// copy does not outlive the run.
func TestLiveMode(t *testing.T) {
	requireTools(t, "bash", "git", "jq", "base64")
	const secret = "kubeTokenThatMustNotLeak0123"
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: ci-ro
  context: {cluster: prod, user: ci}
current-context: ci-ro
users:
- name: ci
  user: {token: ` + secret + `}
`
	given := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(given, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, value string
		wantPath    string // "" when the script writes its own copy
		statusVia   string // PGSYNC_STATUS_VIA
		wantVia     string
	}{
		{"base64", base64.StdEncoding.EncodeToString([]byte(kubeconfig)), "", "", "proxy"},
		{"file", given, given, "direct", "direct"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wrapDir := t.TempDir()
			record := filepath.Join(wrapDir, "args")
			wrapper := `#!/bin/sh
printf '%s\n' "$@" >"` + record + `"
prev=
for a in "$@"; do
	if [ "$prev" = --kubeconfig ]; then cp "$a" "` + record + `.kubeconfig"; fi
	prev=$a
done
exec "` + filepath.Join(pgsyncDir(t), "pgsync") + `" "$@"
`
			if err := os.WriteFile(filepath.Join(wrapDir, "pgsync"), []byte(wrapper), 0o755); err != nil {
				t.Fatal(err)
			}
			r := newPRRepo(t)
			r.push("shop to 15.19", map[string]string{shopFile: shopCluster("localhost:5000/postgresql:15.19", "20Gi")})
			summary := filepath.Join(t.TempDir(), "summary.md")
			res := runScript(t, r.dir, "none", map[string]string{
				"PATH":                wrapDir + string(os.PathListSeparator) + os.Getenv("PATH"),
				"PGSYNC_PATH":         "clusters",
				"PGSYNC_KUBECONFIG":   c.value,
				"PGSYNC_CONTEXT":      "ci-ro",
				"PGSYNC_NAMESPACE":    "shop",
				"PGSYNC_STATUS_VIA":   c.statusVia,
				"PGSYNC_BASE":         r.mergeBase, // ignored: the live clusters are the base
				"GITHUB_STEP_SUMMARY": summary,
			})
			if res.code != 1 {
				t.Errorf("exit %d, want 1: pgsync cannot reach the cluster", res.code)
			}
			if strings.Contains(res.stdout+res.stderr, secret) {
				t.Errorf("the kubeconfig's token appears in the output")
			}
			raw, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("pgsync was not run: %v", err)
			}
			args := strings.Split(strings.TrimSpace(string(raw)), "\n")
			flag := func(name string) (string, bool) {
				for i, a := range args {
					if a == name && i+1 < len(args) {
						return args[i+1], true
					}
				}
				return "", false
			}
			for _, bad := range []string{"--base", "--offline"} {
				if _, ok := flag(bad); ok || (len(args) > 0 && args[len(args)-1] == bad) {
					t.Errorf("pgsync got %s with a kubeconfig: %q", bad, args)
				}
			}
			for name, want := range map[string]string{"--context": "ci-ro", "--namespace": "shop", "--status-via": c.wantVia, "--format": "markdown", "--path": "clusters"} {
				if got, _ := flag(name); got != want {
					t.Errorf("pgsync %s %q, want %q (args %q)", name, got, want, args)
				}
			}
			path, ok := flag("--kubeconfig")
			if !ok {
				t.Fatalf("pgsync got no --kubeconfig: %q", args)
			}
			if c.wantPath != "" && path != c.wantPath {
				t.Errorf("--kubeconfig %s, want the given file %s", path, c.wantPath)
			}
			if c.wantPath == "" {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("the decoded kubeconfig %s outlived the run (%v)", path, err)
				}
			}
			if copied, err := os.ReadFile(record + ".kubeconfig"); err != nil || string(copied) != kubeconfig {
				t.Errorf("pgsync's --kubeconfig held %q (%v), want the kubeconfig", copied, err)
			}
			body, err := os.ReadFile(summary)
			if err != nil {
				t.Fatal(err)
			}
			wantContains(t, "the job summary", string(body), marker, "pgsync failed or refused this change", "against the live clusters")
		})
	}
	t.Run("neither file nor base64", func(t *testing.T) {
		r := newPRRepo(t)
		res := runScript(t, r.dir, "none", map[string]string{"PGSYNC_PATH": "clusters", "PGSYNC_KUBECONFIG": "not*base64!"})
		if res.code != 1 {
			t.Errorf("exit %d, want 1", res.code)
		}
		wantContains(t, "stderr", res.stderr, "PGSYNC_KUBECONFIG is neither a file nor base64")
	})
}

// TestWarningsInComment: what pgsync warns about on a successful plan (here
// an image pinned only by digest) goes into the comment under the plan, and
// the job summary gets the same body.
func TestWarningsInComment(t *testing.T) {
	requireTools(t, "bash", "git", "jq")
	r := newPRRepo(t)
	r.push("shop by digest", map[string]string{shopFile: shopCluster("localhost:5000/postgresql@sha256:"+strings.Repeat("0123456789abcdef", 4), "20Gi")})
	summary := filepath.Join(t.TempDir(), "summary.md")
	res := runScript(t, r.dir, "none", map[string]string{
		"PGSYNC_PATH":         "clusters",
		"PGSYNC_BASE":         r.mergeBase,
		"GITHUB_STEP_SUMMARY": summary,
	})
	if res.code != 0 {
		t.Fatalf("exit %d, want 0", res.code)
	}
	body := readFile(t, summary)
	wantContains(t, "the comment", body,
		marker,
		"**restart-instance** shop-2 (standby)",
		"<details><summary>pgsync warnings</summary>",
		"clusters/shop/shop.yaml:8:14: warning: spec.imageName: image is pinned by digest only",
	)
}
