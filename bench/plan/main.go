// Command plan measures `pgsync plan --base HEAD~1 --format json` end to end
// on a generated Git repository of N clusters in N files, M of them changed
// between HEAD~1 and HEAD, and, in the same run, a baseline: `git grep`
// reading every file at both commits (the raw cost of getting the data out
// of Git with C git). It prints a Markdown table for docs/benchmarks.md.
//
//	go run ./bench/plan -clusters 1000 -changed 100 -runs 9
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

func main() {
	clusters := flag.Int("clusters", 1000, "clusters (one file each)")
	changed := flag.Int("changed", 100, "clusters whose image changes between HEAD~1 and HEAD")
	runs := flag.Int("runs", 9, "timed runs of each command (the median is reported)")
	bin := flag.String("pgsync", "", "pgsync binary (default: build ./cmd/pgsync)")
	flag.Parse()
	if err := run(*clusters, *changed, *runs, *bin); err != nil {
		log.Fatal(err)
	}
}

func run(clusters, changed, runs int, bin string) error {
	work, err := os.MkdirTemp("", "pgsync-bench-plan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin == "" {
		bin = filepath.Join(work, "pgsync")
		build := exec.Command("go", "build", "-o", bin, "./cmd/pgsync")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build pgsync: %v\n%s", err, out)
		}
	}
	repo := filepath.Join(work, "repo")
	if err := generate(repo, clusters, changed); err != nil {
		return err
	}

	planCmd := []string{bin, "plan", "--repo", repo, "--base", "HEAD~1", "--format", "json", "--out", os.DevNull}
	baseline := []string{"git", "-C", repo, "grep", "-c", "imageName", "HEAD~1", "HEAD", "--", "clusters"}
	planTimes, err := timeRuns(planCmd, runs)
	if err != nil {
		return err
	}
	baseTimes, err := timeRuns(baseline, runs)
	if err != nil {
		return err
	}
	pm, bm := median(planTimes), median(baseTimes)
	host, _ := os.Hostname()
	fmt.Printf("Machine: %s, %d CPUs, %s/%s, %s. Date: %s. %d runs each, median (min–max).\n\n",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02"), runs)
	fmt.Printf("| command | median | min | max | ratio to baseline |\n|---|---|---|---|---|\n")
	fmt.Printf("| `pgsync plan --base HEAD~1 --format json` (%d clusters, %d changed) | %s | %s | %s | %.1f× |\n",
		clusters, changed, ms(pm), ms(planTimes[0]), ms(planTimes[len(planTimes)-1]), float64(pm)/float64(bm))
	fmt.Printf("| baseline: `git grep` over both commits | %s | %s | %s | 1.0× |\n", ms(bm), ms(baseTimes[0]), ms(baseTimes[len(baseTimes)-1]))
	return nil
}

// generate writes a repository whose HEAD~1 has n clusters and whose HEAD
// bumps the image of the first `changed` of them.
func generate(dir string, n, changed int) error {
	if err := os.MkdirAll(filepath.Join(dir, "clusters"), 0o755); err != nil {
		return err
	}
	git := func(args ...string) error {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
			"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %v\n%s", args, err, out)
		}
		return nil
	}
	write := func(i int, tag string) error {
		path := filepath.Join(dir, "clusters", fmt.Sprintf("db-%04d.yaml", i))
		return os.WriteFile(path, []byte(clusterYAML(i, tag)), 0o644)
	}
	if err := git("init", "-q", "-b", "main"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := write(i, "15.18"); err != nil {
			return err
		}
	}
	if err := git("add", "-A"); err != nil {
		return err
	}
	if err := git("commit", "-q", "-m", "base"); err != nil {
		return err
	}
	for i := 0; i < changed; i++ {
		if err := write(i, "15.20"); err != nil {
			return err
		}
	}
	if err := git("commit", "-q", "-am", "bump"); err != nil {
		return err
	}
	return git("gc", "-q")
}

func clusterYAML(i int, tag string) string {
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: db-%04d
  namespace: team-%02d
spec:
  description: "Generated cluster %d"
  imageName: localhost:5000/postgresql:%s
  instances: 3
  storage:
    storageClass: standard
    size: 10Gi
  postgresql:
    parameters:
      shared_buffers: "256MB"
      work_mem: "8MB"
      max_connections: "200"
`, i, i%50, i, tag)
}

func timeRuns(argv []string, runs int) ([]time.Duration, error) {
	var times []time.Duration
	for i := 0; i < runs+1; i++ {
		start := time.Now()
		cmd := exec.Command(argv[0], argv[1:]...)
		out, err := cmd.CombinedOutput()
		elapsed := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		if i > 0 { // the first run warms the page cache
			times = append(times, elapsed)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times, nil
}

func median(ts []time.Duration) time.Duration { return ts[len(ts)/2] }

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
