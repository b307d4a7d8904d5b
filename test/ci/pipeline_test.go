package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pgsync/pgsync/test/prereq"
)

var (
	workflowFile = filepath.Join(moduleRoot, "examples/ci/github/pgsync-plan.yml")
	gitlabFile   = filepath.Join(moduleRoot, "examples/ci/gitlab/pgsync-plan.gitlab-ci.yml")
	scriptFile   = filepath.Join(moduleRoot, "examples/ci/pgsync-pr-plan.sh")
)

// actionlintVersion is the release the test installs from the Go module
// proxy when actionlint is not on PATH.
const actionlintVersion = "v1.7.12"

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var pgsyncVar = regexp.MustCompile(`\bPGSYNC_[A-Z_]+\b`)

// checkVariablesUsed fails for a PGSYNC_* variable that a pipeline file
// sets but neither the script nor the file's own commands read: a typo
// there would silently drop a setting.
func checkVariablesUsed(t *testing.T, set map[string]string, commands string) {
	t.Helper()
	script := readFile(t, scriptFile)
	for name := range set {
		if !strings.HasPrefix(name, "PGSYNC_") {
			continue
		}
		if !strings.Contains(script, "PGSYNC_"+strings.TrimPrefix(name, "PGSYNC_")) && !strings.Contains(commands, name) {
			t.Errorf("%s is set but neither the script nor the pipeline's commands read it", name)
		}
	}
	for _, name := range pgsyncVar.FindAllString(commands, -1) {
		if _, ok := set[name]; !ok && !strings.Contains(script, name) {
			t.Errorf("the pipeline's commands read %s, which nothing sets", name)
		}
	}
}

// bashSyntax fails when the commands do not parse as bash.
func bashSyntax(t *testing.T, what, commands string) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(commands)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: bash -n: %v\n%s\n--- commands:\n%s", what, err, out, commands)
	}
}

var (
	// githubEnvWrite is a step setting a variable for the later ones.
	githubEnvWrite = regexp.MustCompile(`(?m)^\s*echo "([A-Z_]+)=.*>>\s*"\$GITHUB_ENV"`)
	runsScript     = regexp.MustCompile(`(?m)^\s*bash "[^"]*(pgsync-pr-plan\.sh|\$PGSYNC_SCRIPT)"`)
)

type workflow struct {
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]struct {
		Steps []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			With map[string]any    `yaml:"with"`
			Env  map[string]string `yaml:"env"`
			Run  string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestGitHubWorkflow checks the workflow against what the script needs:
// it runs on pull requests, may write their comments, checks out the whole
// history of the head, and gives the script its variables.
func TestGitHubWorkflow(t *testing.T) {
	requireTools(t, "bash")
	var wf workflow
	if err := yaml.Unmarshal([]byte(readFile(t, workflowFile)), &wf); err != nil {
		t.Fatalf("%s: %v", workflowFile, err)
	}
	if _, ok := wf.On["pull_request"]; !ok {
		t.Errorf("on: %v, want pull_request", wf.On)
	}
	if wf.Permissions["pull-requests"] != "write" {
		t.Errorf("permissions: %v, want pull-requests: write (to comment)", wf.Permissions)
	}
	job, ok := wf.Jobs["plan"]
	if !ok {
		t.Fatalf("no job plan in %v", wf.Jobs)
	}
	set := map[string]string{}
	for k, v := range wf.Env {
		set[k] = v
	}
	var commands strings.Builder
	var sawCheckout, sawScript bool
	for _, s := range job.Steps {
		if strings.HasPrefix(s.Uses, "actions/checkout@") {
			sawCheckout = true
			if d, _ := s.With["fetch-depth"].(int); d != 0 || s.With["fetch-depth"] == nil {
				t.Errorf("checkout fetch-depth %v, want 0: the merge base needs the history", s.With["fetch-depth"])
			}
		}
		for k, v := range s.Env {
			set[k] = v
		}
		if s.Run != "" {
			commands.WriteString(s.Run + "\n")
			bashSyntax(t, "step "+s.Name, s.Run)
			for _, m := range githubEnvWrite.FindAllStringSubmatch(s.Run, -1) {
				set[m[1]] = "(from $GITHUB_ENV)"
			}
		}
		if runsScript.MatchString(s.Run) {
			sawScript = true
			for _, v := range []string{"GITHUB_TOKEN", "PGSYNC_PR", "PGSYNC_BASE", "PGSYNC_KUBECONFIG"} {
				if s.Env[v] == "" {
					t.Errorf("step %q does not set %s", s.Name, v)
				}
			}
			if s.Env["PGSYNC_MERGE_BASE"] != "true" {
				t.Errorf("step %q: PGSYNC_MERGE_BASE %q, want true (the base sha is the base branch's tip)", s.Name, s.Env["PGSYNC_MERGE_BASE"])
			}
		}
	}
	if !sawCheckout || !sawScript {
		t.Errorf("checkout step: %v, script step: %v; want both", sawCheckout, sawScript)
	}
	if set["PGSYNC_PATH"] == "" {
		t.Errorf("PGSYNC_PATH is not set")
	}
	checkVariablesUsed(t, set, commands.String())
}

// TestGitHubWorkflowActionlint runs actionlint over the workflow (and, when
// shellcheck is on PATH, actionlint runs it over the run: scripts).
func TestGitHubWorkflowActionlint(t *testing.T) {
	bin, err := exec.LookPath("actionlint")
	if err != nil {
		requireTools(t, "go")
		dir := t.TempDir()
		install := exec.Command("go", "install", "github.com/rhysd/actionlint/cmd/actionlint@"+actionlintVersion)
		install.Dir = dir // outside this module: its go.mod does not list actionlint
		install.Env = append(os.Environ(), "GOBIN="+dir)
		if out, err := install.CombinedOutput(); err != nil {
			prereq.Missing(t, "actionlint is not on PATH and go install %s failed: %v\n%s", actionlintVersion, err, out)
		}
		bin = filepath.Join(dir, "actionlint")
	}
	out, err := exec.Command(bin, "-no-color", workflowFile).CombinedOutput()
	if err != nil {
		t.Errorf("actionlint %s: %v\n%s", workflowFile, err, out)
	}
}

// gitlabJobKeys are the job keywords of GitLab CI's reference: a key
// outside it is a typo GitLab would reject.
var gitlabJobKeys = []string{
	"after_script", "allow_failure", "artifacts", "before_script", "cache", "coverage",
	"dast_configuration", "dependencies", "environment", "extends", "hooks", "id_tokens",
	"identity", "image", "inherit", "interruptible", "manual_confirmation", "needs", "pages",
	"parallel", "release", "resource_group", "retry", "rules", "run", "script", "secrets",
	"services", "stage", "tags", "timeout", "trigger", "variables", "when",
}

// TestGitLabJob parses the GitLab job and checks it against what the script
// needs: merge request pipelines only, the whole history, GitLab's merge
// base, the script called for gitlab, commands that parse as bash.
func TestGitLabJob(t *testing.T) {
	requireTools(t, "bash")
	var doc map[string]map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, gitlabFile)), &doc); err != nil {
		t.Fatalf("%s: %v", gitlabFile, err)
	}
	job, ok := doc["pgsync-plan"]
	if !ok {
		t.Fatalf("no job pgsync-plan in %s", gitlabFile)
	}
	for k := range job {
		if !slices.Contains(gitlabJobKeys, k) {
			t.Errorf("job key %q is not a GitLab CI job keyword", k)
		}
	}
	var j struct {
		Image     string              `yaml:"image"`
		Rules     []map[string]string `yaml:"rules"`
		Variables map[string]string   `yaml:"variables"`
		Script    []string            `yaml:"script"`
	}
	raw, err := yaml.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &j); err != nil {
		t.Fatalf("job pgsync-plan: %v", err)
	}
	if j.Image == "" {
		t.Errorf("no image")
	}
	if len(j.Rules) != 1 || j.Rules[0]["if"] != `$CI_PIPELINE_SOURCE == "merge_request_event"` {
		t.Errorf("rules %v, want merge request pipelines only", j.Rules)
	}
	if j.Variables["GIT_DEPTH"] != "0" {
		t.Errorf("GIT_DEPTH %q, want \"0\": the merge base must be in the clone", j.Variables["GIT_DEPTH"])
	}
	if j.Variables["PGSYNC_BASE"] != "$CI_MERGE_REQUEST_DIFF_BASE_SHA" {
		t.Errorf("PGSYNC_BASE %q, want $CI_MERGE_REQUEST_DIFF_BASE_SHA", j.Variables["PGSYNC_BASE"])
	}
	if j.Variables["PGSYNC_PATH"] == "" {
		t.Errorf("PGSYNC_PATH is not set")
	}
	if len(j.Script) == 0 || !regexp.MustCompile(`pgsync-pr-plan\.sh"? gitlab$`).MatchString(j.Script[len(j.Script)-1]) {
		t.Errorf("the script's last line must run pgsync-pr-plan.sh gitlab: %q", j.Script)
	}
	commands := strings.Join(j.Script, "\n")
	bashSyntax(t, "script", commands)
	checkVariablesUsed(t, j.Variables, commands)
}
