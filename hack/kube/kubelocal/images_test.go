package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/pgsync/pgsync/test/prereq"
)

func TestReadLock(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, text, err string }{
		{"ok", "# c\nepoch 10\n15.18 b 1 all " + sum + "\n15.18 a 2 amd64 " + sum + "\n", ""},
		{"no epoch", "15.18 a 2 amd64 " + sum + "\n", "no epoch line"},
		{"bad epoch", "epoch -3\n", `:1: epoch "-3" is not a Unix time`},
		{"bad sum", "epoch 1\n15.18 a 2 amd64 abc\n", `:2: a: "abc" is not a SHA-256`},
		{"short line", "epoch 1\n15.18 a 2\n", ":2: expected MINOR PACKAGE VERSION ARCH SHA256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lock")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := readLock(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Epoch != 10 || len(l.Packages["15.18"]) != 2 || l.Packages["15.18"][0].Name != "a" || l.version("15.18", "b") != "1" {
				t.Fatalf("lock = %+v", l)
			}
			// rootfs.sh's key: sha256 of "epoch N" and the sorted lines.
			sh := exec.Command("sh", "-c", `(echo "epoch 10"; printf '%s\n' "b 1 all `+sum+`" "a 2 amd64 `+sum+`" | LC_ALL=C sort) | sha256sum | cut -d' ' -f1`)
			out, err := sh.Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != l.key("15.18") {
				t.Fatalf("key %s, rootfs.sh's would be %s", l.key("15.18"), got)
			}
			t.Setenv("SOURCE_DATE_EPOCH", "99")
			if l, err := readLock(path); err != nil || l.Epoch != 99 {
				t.Fatalf("SOURCE_DATE_EPOCH not honoured: %v %+v", err, l)
			}
		})
	}
}

// TestTheLock: the lock in the checkout pins postgresql-15 of each image
// at its version and parses.
func TestTheLock(t *testing.T) {
	l, err := readLock("../debian.lock")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range postgresVersions {
		if got := l.version(v, "postgresql-15"); got != v+"-0+deb12u1" {
			t.Errorf("%s: postgresql-15 locked at %q", v, got)
		}
		if len(l.Packages[v]) < 50 {
			t.Errorf("%s: %d packages locked", v, len(l.Packages[v]))
		}
	}
}

// TestWriteTree: the layer of a tree is the same bytes whatever the times
// the packages and the install left (all become the epoch) and whatever order the
// directory lists its entries in; setuid and setgid bits are dropped from
// files and kept on directories; hard links stay links; /proc, /sys and
// /dev keep only their directories.
func TestWriteTree(t *testing.T) {
	epoch := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	old := epoch.Add(-48 * time.Hour)
	mk := func(installed time.Time) string {
		dir := t.TempDir()
		for _, d := range []string{"usr/bin", "tmp", "proc/1", "dev", "run/pg"} {
			must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
		}
		must(t, os.WriteFile(filepath.Join(dir, "usr/bin/su"), []byte("su"), 0o755))
		must(t, os.Chmod(filepath.Join(dir, "usr/bin/su"), 0o4755|os.ModeSetuid))
		must(t, os.WriteFile(filepath.Join(dir, "usr/bin/expiry"), []byte("x"), 0o755))
		must(t, os.Chmod(filepath.Join(dir, "usr/bin/expiry"), 0o755|os.ModeSetgid))
		must(t, os.WriteFile(filepath.Join(dir, "usr/bin/perl"), []byte("perl"), 0o755))
		must(t, os.Link(filepath.Join(dir, "usr/bin/perl"), filepath.Join(dir, "usr/bin/perl5")))
		must(t, os.Symlink("perl", filepath.Join(dir, "usr/bin/p")))
		must(t, os.WriteFile(filepath.Join(dir, "proc/1/status"), []byte("x"), 0o644))
		must(t, os.WriteFile(filepath.Join(dir, ".ready"), []byte("k"), 0o644))
		must(t, os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky))
		must(t, os.Chmod(filepath.Join(dir, "run/pg"), 0o775|os.ModeSetgid))
		// What a package shipped has its time; what the install wrote (and
		// every directory it touched) has the install's.
		must(t, os.Chtimes(filepath.Join(dir, "usr/bin/perl"), old, old))
		for _, p := range []string{"usr/bin/su", "usr/bin/expiry", "usr/bin", "usr", "tmp", "run", "run/pg", "dev", "proc"} {
			must(t, os.Chtimes(filepath.Join(dir, p), installed, installed))
		}
		return dir
	}
	write := func(dir string) ([]byte, treeStats) {
		var b bytes.Buffer
		st, err := writeTree(&b, dir, epoch)
		if err != nil {
			t.Fatal(err)
		}
		return b.Bytes(), st
	}
	a, st := write(mk(time.Now()))
	b, _ := write(mk(old.Add(time.Hour)))
	if !bytes.Equal(a, b) {
		t.Fatal("two trees of the same files installed at different times give different layers")
	}
	if !slices.Equal(st.Stripped, []string{"/usr/bin/expiry", "/usr/bin/su"}) {
		t.Errorf("stripped %v", st.Stripped)
	}
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || len(h.PAXRecords) != 0 {
			t.Errorf("%s: host details in the header: %+v", h.Name, h)
		}
		want := map[string]int64{"usr/bin/su": 0o755, "usr/bin/expiry": 0o755, "tmp/": 0o1777, "run/pg/": 0o2775}
		if m, ok := want[h.Name]; ok && h.Mode != m {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, m)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: time %v, want the epoch", h.Name, h.ModTime)
		}
		if h.Name == "usr/bin/perl5" && (h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/perl") {
			t.Errorf("perl5: %c → %q, want a hard link to usr/bin/perl", h.Typeflag, h.Linkname)
		}
	}
	wantNames := []string{"dev/", "proc/", "run/", "run/pg/", "tmp/", "usr/", "usr/bin/", "usr/bin/expiry", "usr/bin/p", "usr/bin/perl", "usr/bin/perl5", "usr/bin/su"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("entries %v, want %v", names, wantNames)
	}
}

// TestImagesReproducible builds each image twice with `kubelocal image`
// (the functions `kubelocal images` and make images use), the PostgreSQL
// ones from the cache's root file systems of the current lock: one digest
// each, the same as the cache's layout holds when it was built from this
// lock (by kube-up or make images, at another time). Each image runs as a
// non-root user, has no setuid or setgid file, and the pgsync image holds
// its binary alone (no shell, no package manager). Then the first build is
// pushed to a registry, signed, its SBOMs attached: the attested SBOM of
// each PostgreSQL image lists postgresql-15 at the locked version.
func TestImagesReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	ctx := context.Background()
	repo, err := filepath.Abs("../../..")
	must(t, err)
	p, err := defaultPaths()
	must(t, err)
	lock, err := readLock(filepath.Join(repo, lockFile))
	must(t, err)
	if os.Geteuid() != 0 {
		prereq.Missing(t, "reading the PostgreSQL root file systems (their /etc/shadow) needs root")
	}
	refs := []string{pgsyncRef}
	for _, v := range postgresVersions {
		rootfs := filepath.Join(p.imagesDir(), "rootfs", "postgresql-"+v)
		if k, err := readyKey(rootfs); err != nil || k != lock.key(v) {
			prereq.Missing(t, "no PostgreSQL %s root file system of the current lock in %s (make kube-images or make images, as root): %v", v, rootfs, err)
		}
		refs = append(refs, "postgresql:"+v)
	}
	// pgsync is built from one copy of the checkout's files: a working
	// tree others edit between two builds is two inputs.
	snap := t.TempDir()
	cp := exec.Command("sh", "-c", `git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$0"`, snap)
	cp.Dir = repo
	if out, err := cp.CombinedOutput(); err != nil {
		prereq.Missing(t, "copy the checkout's files with git: %v\n%s", err, out)
	}
	// The builder outside the race detector: packing a PostgreSQL tree
	// (~440 MB) instrumented takes minutes.
	bin := filepath.Join(t.TempDir(), "kubelocal")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build kubelocal: %v\n%s", err, out)
	}
	caches := []string{t.TempDir(), t.TempDir()}
	digests := map[string][]string{}
	for _, ref := range refs {
		for _, c := range caches {
			t0 := time.Now()
			cmd := exec.Command(bin, "image", ref, filepath.Join(c, "images", "oci"))
			cmd.Dir = snap
			cmd.Env = append(os.Environ(), "PGSYNC_ROOT="+snap)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubelocal image %s: %v\n%s", ref, err, stderr.String())
			}
			digests[ref] = append(digests[ref], strings.TrimSpace(string(out)))
			t.Logf("%s: %s in %v", ref, strings.TrimSpace(string(out)), time.Since(t0).Round(100*time.Millisecond))
		}
		if d := digests[ref]; d[0] != d[1] {
			t.Errorf("%s: two builds, two digests: %s, %s", ref, d[0], d[1])
		}
		if ref != pgsyncRef {
			v := strings.TrimPrefix(ref, "postgresql:")
			if lp, err := layout.FromPath(p.layoutDir()); err == nil && imageLabel(lp, ref, lockLabel) == lock.imageKey(v) {
				if got := digestTag(t, lp, ref); got != strings.Replace(digests[ref][0], ":", "-", 1) {
					t.Errorf("%s: the cache's layout, built from the same lock, holds %s, this build %s", ref, got, digests[ref][0])
				}
			}
		}
	}

	lp, err := layout.FromPath(filepath.Join(caches[0], "images", "oci"))
	must(t, err)
	for _, ref := range refs {
		img := layoutImage(t, lp, ref)
		cf, err := img.ConfigFile()
		must(t, err)
		if u, _, _ := strings.Cut(cf.Config.User, ":"); u == "" || u == "0" || u == "root" {
			t.Errorf("%s runs as %q", ref, cf.Config.User)
		}
		m, err := img.Manifest()
		must(t, err)
		if len(m.Layers) != 1 {
			t.Fatalf("%s: %d layers", ref, len(m.Layers))
		}
		blob := filepath.Join(caches[0], "images", "oci", "blobs", m.Layers[0].Digest.Algorithm, m.Layers[0].Digest.Hex)
		entries := layerListing(t, blob)
		for _, e := range entries {
			if e.mode[0] != 'd' && strings.ContainsAny(e.mode[3:4]+e.mode[6:7], "sS") {
				t.Errorf("%s: %s is setuid or setgid (%s)", ref, e.name, e.mode)
			}
		}
		if ref == pgsyncRef {
			if len(entries) != 1 || entries[0].name != "pgsync" {
				t.Errorf("%s holds %v, want its binary alone", ref, entries)
			}
			for _, e := range entries {
				if b := filepath.Base(e.name); b == "sh" || b == "bash" || b == "dash" || b == "busybox" || b == "apt" || b == "dpkg" {
					t.Errorf("%s has %s", ref, e.name)
				}
			}
		} else if !slices.ContainsFunc(entries, func(e entry) bool { return e.name == "usr/lib/postgresql/15/bin/postgres" }) {
			t.Errorf("%s has no postgres binary (%d entries)", ref, len(entries))
		}
	}

	// Pushed, signed, SBOMs attached, as make images does; the SBOM read
	// back from the registry's attestation.
	pc := paths{repo: snap, cache: caches[0]}
	addr := serveLayout(t, pc)
	must(t, pushLayoutTo(ctx, pc, addr))
	must(t, attachTrust(ctx, pc, addr))
	for _, v := range postgresVersions {
		out, err := exec.Command(pc.signerBin(), "image", "verify", "--key", pc.signingPubKey(), "--sbom", "-o", "json", addr+"/postgresql:"+v).Output()
		if err != nil {
			t.Fatalf("pgsync image verify --sbom postgresql:%s: %v", v, err)
		}
		var doc struct {
			Packages []struct {
				Name        string `json:"name"`
				VersionInfo string `json:"versionInfo"`
			} `json:"packages"`
		}
		must(t, json.Unmarshal(out, &doc))
		want := lock.version(v, "postgresql-15")
		if !slices.ContainsFunc(doc.Packages, func(p struct {
			Name        string `json:"name"`
			VersionInfo string `json:"versionInfo"`
		}) bool {
			return p.Name == "postgresql-15" && p.VersionInfo == want
		}) {
			t.Errorf("postgresql:%s: the attested SBOM (%d packages) does not list postgresql-15 %s", v, len(doc.Packages), want)
		}
		if n := len(doc.Packages) - 1; n != len(lock.Packages[v]) {
			t.Errorf("postgresql:%s: the SBOM lists %d Debian packages, the lock %d", v, n, len(lock.Packages[v]))
		}
	}
}

type entry struct{ mode, name string }

// layerListing lists a gzipped layer with tar(1) (outside the race
// detector): each entry's mode string and name.
func layerListing(t *testing.T, blob string) []entry {
	t.Helper()
	out, err := exec.Command("tar", "--numeric-owner", "-tvzf", blob).Output()
	if err != nil {
		t.Fatalf("tar -tvzf %s: %v", blob, err)
	}
	var es []entry
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("tar listing line %q", l)
		}
		name := f[5]
		if i := slices.Index(f, "->"); i > 0 {
			name = strings.Join(f[5:i], " ")
		} else if i := slices.Index(f, "link"); i > 0 && f[i-1] == "" {
			name = strings.Join(f[5:i], " ")
		}
		es = append(es, entry{f[0], name})
	}
	return es
}

func layoutImage(t *testing.T, lp layout.Path, ref string) v1.Image {
	t.Helper()
	idx, err := lp.ImageIndex()
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	for _, d := range im.Manifests {
		if d.Annotations[refAnnotation] == ref {
			img, err := idx.Image(d.Digest)
			must(t, err)
			return img
		}
	}
	t.Fatalf("no %s in %s", ref, lp)
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
