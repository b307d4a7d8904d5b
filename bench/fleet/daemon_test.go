package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The daemon under measurement: its port, its process's
// CPU and memory, its heap profiles, and what its /status says.

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// daemon is the running `pgsync run` as the benchmark sees it.
type daemon struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	log  string // its stderr (JSON lines)

	mu     sync.Mutex
	rssMax int64 // kB
	rssNow int64
}

// cpuTicks is utime+stime of pid.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after its ")".
	rest := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, err := strconv.ParseInt(rest[11], 10, 64)
	if err != nil {
		return 0, err
	}
	st, err := strconv.ParseInt(rest[12], 10, 64)
	return ut + st, err
}

// procStatus reads a "kB" field of /proc/PID/status.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func (d *daemon) sampleRSS(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if kb := procStatus(d.cmd.Process.Pid, "VmRSS"); kb > 0 {
			d.mu.Lock()
			d.rssNow = kb
			d.rssMax = max(d.rssMax, kb)
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *daemon) rss() (now, peak int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rssNow, d.rssMax
}

func (d *daemon) get(path string) ([]byte, error) {
	resp, err := http.Get(d.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// heapTop is the top of the daemon's heap profile (in-use space), as
// go tool pprof prints it.
func (d *daemon) heapTop(b *testing.B, bin, dir string) string {
	body, err := d.get("/debug/pprof/heap?gc=1")
	if err != nil {
		return "no profile: " + err.Error()
	}
	prof := filepath.Join(dir, "heap.pprof")
	if err := os.WriteFile(prof, body, 0o644); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=15", bin, prof).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	return string(out)
}

// saveHeapProfiles saves the daemon's heap profile (as of its last GC;
// alloc_space shows what was allocated up to then) every 100 ms until ctx
// ends, named by the milliseconds since start.
func (d *daemon) saveHeapProfiles(ctx context.Context, dir string, start time.Time) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if body, err := d.get("/debug/pprof/heap"); err == nil {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("heap-%06d.pprof", time.Since(start).Milliseconds())), body, 0o644)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cycles is pgsync_cycle_duration_seconds' count and sum.
func (d *daemon) cycles() (int, float64, error) {
	body, err := d.get("/metrics")
	if err != nil {
		return 0, 0, err
	}
	var count int
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "pgsync_cycle_duration_seconds_count "); ok {
			count, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if v, ok := strings.CutPrefix(line, "pgsync_cycle_duration_seconds_sum "); ok {
			sum, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return count, sum, nil
}

type report struct {
	Last struct {
		Started  time.Time     `json:"started"`
		Duration time.Duration `json:"duration"`
		Commit   string        `json:"commit"`
		Err      string        `json:"error"`
		Clusters []struct {
			Cluster string `json:"cluster"`
			Outcome string `json:"outcome"`
			Step    string `json:"step"`
			Reason  string `json:"reason"`
		} `json:"clusters"`
	} `json:"lastCycle"`
}

func (d *daemon) status() (report, error) {
	var r report
	body, err := d.get("/status")
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(body, &r)
}

// outcomes counts the last cycle's outcomes.
func (r report) outcomes() map[string]int {
	m := map[string]int{}
	for _, c := range r.Last.Clusters {
		m[c.Outcome]++
	}
	return m
}

// loads counts the daemon's "new commit" log lines: it logs one right
// after each load of a moved commit (internal/daemon load → HeadSince:
// read and decode every file), and none when the commit did not move.
func (d *daemon) loads(b *testing.B) int {
	b.Helper()
	data, err := os.ReadFile(d.log)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"msg":"new commit"`) {
			n++
		}
	}
	return n
}

// waitCycles waits until the daemon has finished at least n cycles,
// recording each finished cycle's report.
func (d *daemon) waitCycles(b *testing.B, n int, timeout time.Duration, seen func(report)) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	last := -1
	for {
		count, _, err := d.cycles()
		if err == nil && count != last {
			last = count
			if count > 0 && seen != nil {
				if r, err := d.status(); err == nil {
					seen(r)
				}
			}
		}
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the daemon finished %d cycles in %s, want %d; log tail:\n%s", count, timeout, n, tail(d.log))
		}
		time.Sleep(time.Second)
	}
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

func fmts(xs []float64, format string) string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf(format, x))
	}
	return strings.Join(out, " ")
}
