package instance

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgsync/pgsync/internal/instance/postmaster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeletvol"
)

var me = kubeletvol.Owner{UID: -1, GID: -1}

func writeVolume(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	b := map[string][]byte{}
	for k, v := range files {
		b[k] = []byte(v)
	}
	if err := kubeletvol.Write(dir, b, 0o444, me); err != nil {
		t.Fatal(err)
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ParametersFile: filepath.Join(dir, pc.ParamsKey)}
	f := cfg.files()
	if f.revision != filepath.Join(dir, pc.ConfigRevisionKey) || f.hba != filepath.Join(dir, pc.HBAKey) {
		t.Fatalf("default paths %+v: the revision and pg_hba keys sit next to the parameters", f)
	}

	// No ConfigMap at all: no parameters, no lines, no revision.
	snap, _, err := readConfig(f)
	if err != nil || len(snap.params) != 0 || snap.hba != nil || snap.revision != "" {
		t.Fatalf("empty volume: %+v %v", snap, err)
	}

	writeVolume(t, dir, map[string]string{pc.ParamsKey: `{"work_mem":"8MB"}`, pc.ConfigRevisionKey: "v1-abc\n",
		pc.HBAKey: `["host all app 10.0.0.0/8 scram-sha-256"]`})
	snap, raw, err := readConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if snap.params["work_mem"] != "8MB" || snap.revision != "v1-abc" || !slices.Equal(snap.hba, []string{"host all app 10.0.0.0/8 scram-sha-256"}) {
		t.Errorf("snapshot %+v", snap)
	}
	if snap.raw != raw || raw == "" {
		t.Errorf("raw %q, snapshot raw %q", raw, snap.raw)
	}

	for name, files := range map[string]map[string]string{
		"parameters not an object": {pc.ParamsKey: `["x"]`},
		"pg_hba not a list":        {pc.HBAKey: `"host all all all trust"`},
		"pg_hba line with newline": {pc.HBAKey: `["host all all 0.0.0.0/0 scram-sha-256\nlocal all all trust"]`},
		"empty pg_hba line":        {pc.HBAKey: `[" "]`},
	} {
		writeVolume(t, dir, files)
		if _, raw, err := readConfig(f); err == nil || raw == "" {
			t.Errorf("%s: accepted (raw %q)", name, raw)
		}
	}
}

// TestReadTogetherNeverMixesVersions reads while another goroutine keeps
// swapping the volume between two versions, as the kubelet does: each read
// must be one version, never the parameters of one and the revision of the
// other, and never "missing" for a key both versions have.
func TestReadTogetherNeverMixesVersions(t *testing.T) {
	dir := t.TempDir()
	version := func(v string) map[string]string {
		return map[string]string{pc.ParamsKey: `{"v":"` + v + `"}`, pc.ConfigRevisionKey: v, pc.HBAKey: `["# ` + v + `"]`}
	}
	writeVolume(t, dir, version("a"))
	f := (&Config{ParametersFile: filepath.Join(dir, pc.ParamsKey)}).files()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		var err error
		for i := 0; ctx.Err() == nil && err == nil; i++ {
			err = kubeletvol.Write(dir, map[string][]byte{
				pc.ParamsKey: []byte(version([]string{"a", "b"}[i%2])[pc.ParamsKey]),
			}, 0o444, me)
			if err == nil {
				v := version([]string{"a", "b"}[i%2])
				b := map[string][]byte{}
				for k, s := range v {
					b[k] = []byte(s)
				}
				err = kubeletvol.Write(dir, b, 0o444, me)
			}
		}
		done <- err
	}()
	// The writer alternates a version with only the parameters key (so
	// keys come and go) and a full one.
	// A read may also give up while the volume keeps changing under it
	// (this writer swaps far faster than a kubelet ever does): that is
	// an error the manager retries, never a wrong answer, so it is
	// counted, and only most reads giving up fails.
	var reads, mixed, busy int
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); reads++ {
		snap, _, err := readConfig(f)
		if err != nil && strings.Contains(err.Error(), "kept changing while being read") {
			busy++
			continue
		}
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		v := snap.params["v"]
		switch {
		case snap.revision == "" && snap.hba == nil: // the parameters-only version
		case snap.revision != v || !slices.Equal(snap.hba, []string{"# " + v}):
			mixed++
			if mixed < 5 {
				t.Errorf("read %d mixed versions: parameters %v, revision %q, pg_hba %q", reads, snap.params, snap.revision, snap.hba)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if mixed > 0 {
		t.Errorf("%d of %d reads mixed two versions", mixed, reads)
	}
	if busy > reads/2 {
		t.Errorf("%d of %d reads gave up on a changing volume", busy, reads)
	}
	t.Logf("%d reads, %d gave up", reads, busy)
}

func TestLoadedRevision(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	w := configWrite{gen: 1, revision: "v1-new", at: t0.Add(time.Hour), since: t0, hba: []string{"x"}, hbaFirst: 10}
	tests := []struct {
		name string
		w    configWrite
		fs   fullStatus
		want string
	}{
		{"loaded after the version was first written", w, fullStatus{ConfLoadTime: t0.Add(time.Millisecond)}, "v1-new"},
		{"loaded in the same microsecond", w, fullStatus{ConfLoadTime: t0.Truncate(time.Microsecond)}, "v1-new"},
		{"loaded before: an older version runs", w, fullStatus{ConfLoadTime: t0.Add(-time.Millisecond)}, ""},
		{"a value postgres refused", w, fullStatus{ConfLoadTime: t0.Add(time.Second), NotInEffect: []string{"work_mem"}, Refused: []string{"work_mem"}}, ""},
		{"overridden by postgresql.auto.conf", w, fullStatus{ConfLoadTime: t0.Add(time.Second), NotInEffect: []string{"work_mem"}}, ""},
		{"a pg_hba line refused", w, fullStatus{ConfLoadTime: t0.Add(time.Second), HBAErrorLines: []int32{10}}, ""},
		{"pending restart only: the reload applied everything it can", w, fullStatus{ConfLoadTime: t0.Add(time.Second), PendingRestart: []string{"shared_buffers"}}, "v1-new"},
		{"a parameter pgsync refused", withRefused(w, "port"), fullStatus{ConfLoadTime: t0.Add(time.Second)}, ""},
		{"no revision file", configWrite{gen: 1, since: t0}, fullStatus{ConfLoadTime: t0.Add(time.Second)}, ""},
		{"nothing written yet", configWrite{}, fullStatus{ConfLoadTime: t0}, ""},
	}
	for _, tc := range tests {
		if got := loadedRevision(tc.w, tc.fs); got != tc.want {
			t.Errorf("%s: loadedRevision = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func withRefused(w configWrite, names ...string) configWrite { w.refused = names; return w }

func TestRejectedHBA(t *testing.T) {
	w := configWrite{hba: []string{"local all all peer", "host all all bogus scram-sha-256"}, hbaFirst: 10}
	got := rejectedHBA(w, fullStatus{HBAErrorLines: []int32{11, 3}, HBAErrors: []string{`invalid IP address "bogus"`, "x"}})
	want := []string{`pg_hba[1]: invalid IP address "bogus"`, "pg_hba.conf line 3: x"}
	if !slices.Equal(got, want) {
		t.Errorf("rejectedHBA = %q, want %q", got, want)
	}
}

// TestWriteSince: rewriting the same ConfigMap version (a new upstream, a
// promotion) keeps the time that version was first written, so a reload
// that happened in between still counts; a new version starts over.
func TestWriteSince(t *testing.T) {
	var b statusBox
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.wrote(configWrite{revision: "r1", content: "c1", at: t0, refused: []string{"port"}})
	b.wrote(configWrite{revision: "r1", content: "c1", at: t0.Add(time.Minute)})
	if w := b.lastWrite(); w.since != t0 || w.gen != 2 {
		t.Errorf("same version rewritten: since %v gen %d, want %v and 2", w.since, w.gen, t0)
	}
	b.wrote(configWrite{revision: "r2", content: "c2", at: t0.Add(2 * time.Minute)})
	if w := b.lastWrite(); !w.since.Equal(t0.Add(2*time.Minute)) || w.gen != 3 {
		t.Errorf("new version: since %v gen %d", w.since, w.gen)
	}
	if got := b.Get().RejectedParameters; got != nil {
		t.Errorf("rejected parameters of an older write kept: %v", got)
	}
}

func TestUnion(t *testing.T) {
	if got := union([]string{"b", "a"}, nil, []string{"a", "c"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("union = %v", got)
	}
	if got := union(nil, nil); got != nil {
		t.Errorf("union of nothing = %#v, want nil (omitted from /status)", got)
	}
}

func TestReadTogetherMissingAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readTogether(p, filepath.Join(dir, "missing"), "")
	if err != nil || !got[0].ok || string(got[0].b) != "x" || got[1].ok || got[2].ok {
		t.Errorf("readTogether = %+v, %v", got, err)
	}
	if _, err := readTogether(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("reading a directory: %v", err)
	}
}

// hupOwner is a running postmaster owner that counts reloads.
type hupOwner struct {
	slowOwner
	hups int
}

func (o *hupOwner) State() postmaster.State { return postmaster.State{Wanted: true, Running: true} }
func (o *hupOwner) Signal(_ context.Context, sig syscall.Signal) error {
	if sig == syscall.SIGHUP {
		o.hups++
	}
	return nil
}

// TestReloadParameters: a new version is written and reloaded, the same
// one is not, and a version that did not parse at start-up does not keep
// the next valid one from being applied.
func TestReloadParameters(t *testing.T) {
	owner := &hupOwner{}
	m := testManager(t, owner, nil, time.Hour)
	for name, content := range map[string]string{"PG_VERSION": "15\n", "postgresql.conf": "# initdb's\n"} {
		if err := os.WriteFile(filepath.Join(m.cfg.PGData, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vol := t.TempDir()
	m.cfg.ParametersFile = filepath.Join(vol, pc.ParamsKey)
	reload := func() { m.nextParamsRead = time.Time{}; m.reloadParameters(context.Background()) }

	writeVolume(t, vol, map[string]string{pc.ParamsKey: `{"work_mem": }`, pc.ConfigRevisionKey: "r0", pc.HBAKey: `[]`})
	reload()
	if m.configRead || m.status.Get().LastError == "" {
		t.Fatalf("an invalid version was taken (%v) or not reported (%q)", m.configRead, m.status.Get().LastError)
	}
	if err := m.writeConfig(false, ""); err != nil { // the start, with no parameters
		t.Fatal(err)
	}
	writeVolume(t, vol, map[string]string{pc.ParamsKey: `{"work_mem": "9MB"}`, pc.ConfigRevisionKey: "r1", pc.HBAKey: `["host all app 10.0.0.0/8 reject"]`})
	reload()
	w := m.status.lastWrite()
	if w.revision != "r1" || owner.hups != 1 {
		t.Fatalf("after a valid version: written revision %q, %d reloads; want r1 and 1", w.revision, owner.hups)
	}
	conf, _ := os.ReadFile(filepath.Join(m.cfg.PGData, "pgsync.conf"))
	hba, _ := os.ReadFile(filepath.Join(m.cfg.PGData, "pg_hba.conf"))
	if !strings.Contains(string(conf), "work_mem = '9MB'") || !strings.Contains(string(hba), "\nhost all app 10.0.0.0/8 reject\n") {
		t.Errorf("files not written from r1:\n%s\n%s", conf, hba)
	}
	reload()
	if m.status.lastWrite().gen != w.gen || owner.hups != 1 {
		t.Error("the same version was written and reloaded again")
	}
}
