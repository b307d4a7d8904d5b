package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the refusal corpus")

// corpusDir holds Cluster files written as CloudNativePG's documentation
// writes them, one per feature pgsync refuses and one mixing problems;
// each FILE.yaml has FILE.golden, what validate prints on stderr.
const corpusDir = "../../internal/cluster/testdata/cnpg/refused"

// TestRefusalCorpus: each file of the corpus is refused by validate with
// every problem in one run (its golden output), and the offline plan
// refuses it the same way, printing no plan.
func TestRefusalCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", corpusDir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			repo := newGitRepo(t)
			repo.commit("corpus", map[string]string{"clusters/" + name + ".yaml": string(data)})

			res := pgsync(t, "validate", "--repo", repo.dir, "--path", "clusters")
			if res.code != 1 || res.stdout != "" {
				t.Errorf("validate: exit %d, stdout %q; want 1 and nothing", res.code, res.stdout)
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(res.stderr), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (write it with: go test ./cmd/pgsync -run TestRefusalCorpus -update)", err)
			}
			if res.stderr != string(want) {
				t.Errorf("validate's stderr is not %s (after a deliberate change, rewrite it with: go test ./cmd/pgsync -run TestRefusalCorpus -update, and read the diff)\ngot:\n%s\nwant:\n%s", golden, res.stderr, want)
			}

			plan := pgsync(t, "plan", "--repo", repo.dir, "--path", "clusters", "--offline")
			if plan.code != 1 || plan.stdout != "" {
				t.Errorf("plan --offline: exit %d, stdout %q; want 1 and no plan", plan.code, plan.stdout)
			}
			for _, line := range lines(string(want)) {
				if strings.Contains(line, ": warning: ") {
					continue
				}
				if !strings.Contains(plan.stderr, line) {
					t.Errorf("plan --offline does not report %q\nstderr:\n%s", line, plan.stderr)
				}
			}
		})
	}
}
