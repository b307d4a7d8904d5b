package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storageCorpus reads test/corpus/storage as repository files under
// clusters/.
func storageCorpus(t *testing.T) map[string]string {
	t.Helper()
	dir := "../../test/corpus/storage"
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no corpus in %s: %v", dir, err)
	}
	files := map[string]string{}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files["clusters/"+filepath.Base(n)] = string(data)
	}
	return files
}

// TestStorageCorpus: CloudNativePG's walStorage, pvcTemplate, probes and
// security-context files validate and plan offline as written; a WAL
// volume that grows between two commits is planned as resize-wal-volume
// steps, and one added to a running cluster is refused at its line.
func TestStorageCorpus(t *testing.T) {
	files := storageCorpus(t)
	repo := newGitRepo(t)
	repo.commit("corpus", files)
	res := pgsync(t, "validate", "--repo", repo.dir)
	if res.code != 0 || !strings.Contains(res.stdout, "4 clusters valid") {
		t.Fatalf("validate: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	p, res := planJSON(t, "--repo", repo.dir, "--offline")
	if res.code != 0 || len(p.Clusters) != 4 {
		t.Fatalf("plan --offline: exit %d, %d clusters\nstdout: %s\nstderr: %s", res.code, len(p.Clusters), res.stdout, res.stderr)
	}
	for _, c := range p.Clusters {
		if c.Action != "create" {
			t.Errorf("%s/%s: action %s, want create", c.Namespace, c.Name, c.Action)
		}
	}

	grown := strings.Replace(files["clusters/cluster-example-wal-storage.yaml"], "  walStorage:\n    size: 1Gi\n", "  walStorage:\n    size: 2Gi\n", 1)
	repo.commit("wal: 2Gi", map[string]string{"clusters/cluster-example-wal-storage.yaml": grown})
	p, res = planJSON(t, "--repo", repo.dir, "--base", "HEAD~1")
	if res.code != 0 {
		t.Fatalf("plan --base HEAD~1: exit %d\nstderr: %s", res.code, res.stderr)
	}
	var resized []string
	for _, c := range p.Clusters {
		for _, s := range c.Steps {
			if s.Action == "resize-wal-volume" {
				resized = append(resized, s.Instance+" "+s.From+"→"+s.To)
			}
		}
	}
	if got, want := strings.Join(resized, ", "), "separate-pgwal-volume-0 1Gi→2Gi, separate-pgwal-volume-1 1Gi→2Gi, separate-pgwal-volume-2 1Gi→2Gi"; got != want {
		t.Errorf("WAL resize steps: %s, want %s", got, want)
	}

	added := files["clusters/cluster-example-probes.yaml"] + "  walStorage:\n    size: 1Gi\n"
	repo.commit("probes: a WAL volume", map[string]string{"clusters/cluster-example-probes.yaml": added})
	res = pgsync(t, "plan", "--repo", repo.dir, "--base", "HEAD~1")
	if want := "clusters/cluster-example-probes.yaml:25:5: spec.walStorage: refused: a WAL volume cannot be added to a running cluster"; res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("plan adding walStorage: exit %d, stderr:\n%s\nwant it to contain %q", res.code, res.stderr, want)
	}
}
