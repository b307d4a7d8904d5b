package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// lockFile holds the exact Debian packages of the PostgreSQL images
// (written by `make images-lock`, read by hack/kube/rootfs.sh and here).
const lockFile = "hack/kube/debian.lock"

// lockLabel is the image label recording what a PostgreSQL image was built
// from (imageKey), so a changed lock, or a change of how trees are
// packed, rebuilds the image.
const lockLabel = "io.pgsync.image.debian-lock"

// packVersion changes whenever writeTree or postgresImage would write
// other bytes from the same tree.
const packVersion = "1"

// lockedPackage is one line of the lock: MINOR PACKAGE VERSION ARCH SHA256.
type lockedPackage struct{ Name, Version, Arch, SHA256 string }

// imageLock is the parsed lock file.
type imageLock struct {
	// Epoch is the images' SOURCE_DATE_EPOCH: their creation time and
	// their files' times.
	Epoch    int64
	Packages map[string][]lockedPackage // by PostgreSQL minor, sorted
}

func readLock(path string) (imageLock, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageLock{}, fmt.Errorf("image lock: %w", err)
	}
	defer f.Close()
	l := imageLock{Epoch: -1, Packages: map[string][]lockedPackage{}}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		switch {
		case fs[0] == "epoch" && len(fs) == 2:
			e, err := strconv.ParseInt(fs[1], 10, 64)
			if err != nil || e < 0 {
				return imageLock{}, fmt.Errorf("%s:%d: epoch %q is not a Unix time", path, n, fs[1])
			}
			l.Epoch = e
		case len(fs) == 5:
			if len(fs[4]) != 64 || strings.Trim(fs[4], "0123456789abcdef") != "" {
				return imageLock{}, fmt.Errorf("%s:%d: %s: %q is not a SHA-256", path, n, fs[1], fs[4])
			}
			l.Packages[fs[0]] = append(l.Packages[fs[0]], lockedPackage{fs[1], fs[2], fs[3], fs[4]})
		default:
			return imageLock{}, fmt.Errorf("%s:%d: expected MINOR PACKAGE VERSION ARCH SHA256 or epoch N, got %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return imageLock{}, fmt.Errorf("image lock: %w", err)
	}
	if l.Epoch < 0 {
		return imageLock{}, fmt.Errorf("%s: no epoch line", path)
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		v, err := strconv.ParseInt(e, 10, 64)
		if err != nil || v < 0 {
			return imageLock{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", e)
		}
		l.Epoch = v
	}
	for m, ps := range l.Packages {
		slices.SortFunc(ps, func(a, b lockedPackage) int { return strings.Compare(a.line(), b.line()) })
		l.Packages[m] = ps
	}
	return l, nil
}

func (p lockedPackage) line() string {
	return p.Name + " " + p.Version + " " + p.Arch + " " + p.SHA256
}

// key identifies what a root file system of minor is built from: the
// epoch and the locked packages. hack/kube/rootfs.sh writes the same
// (sha256 of "epoch N" and the sorted lines) into the tree's .ready.
func (l imageLock) key(minor string) string {
	h := sha256.New()
	fmt.Fprintf(h, "epoch %d\n", l.Epoch)
	for _, p := range l.Packages[minor] {
		fmt.Fprintln(h, p.line())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// imageKey is lockLabel's value for the image of minor.
func (l imageLock) imageKey(minor string) string {
	return l.key(minor) + " pack-" + packVersion
}

// version is the locked version of a package of minor, "" when unlisted.
func (l imageLock) version(minor, pkg string) string {
	for _, p := range l.Packages[minor] {
		if p.Name == pkg {
			return p.Version
		}
	}
	return ""
}

// sourceEpoch is SOURCE_DATE_EPOCH, or def when it is unset.
func sourceEpoch(def int64) (time.Time, error) {
	e := os.Getenv("SOURCE_DATE_EPOCH")
	if e == "" {
		return time.Unix(def, 0).UTC(), nil
	}
	v, err := strconv.ParseInt(e, 10, 64)
	if err != nil || v < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", e)
	}
	return time.Unix(v, 0).UTC(), nil
}

// treeStats is what writeTree did beyond copying.
type treeStats struct {
	Entries int
	// Stripped lists the files whose setuid or setgid bit was dropped.
	Stripped []string
}

// writeTree writes the directory dir as a reproducible tar stream: entries
// in byte order of their paths, numeric owners without names, every time
// the epoch (clamping to it is not enough: what the install wrote has the
// install's time, earlier than the epoch when the build is older than the
// lock), no extended attributes (so no file capabilities),
// hard links as links, no device nodes, nothing of /proc, /sys, /dev but
// the directories, and no setuid or setgid bit on any file (a non-root
// container has no use for them; directories keep setgid, which only
// passes their group on).
func writeTree(w io.Writer, dir string, epoch time.Time) (treeStats, error) {
	var st treeStats
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	skipUnder := map[string]bool{"proc": true, "sys": true, "dev": true}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel == ".ready" {
			return nil
		}
		if top, _, nested := strings.Cut(rel, "/"); nested && skipUnder[top] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		sys, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat information", path)
		}
		h := &tar.Header{Name: rel, Uid: int(sys.Uid), Gid: int(sys.Gid), ModTime: epoch, Mode: int64(fi.Mode().Perm())}
		m := fi.Mode()
		switch {
		case m.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, rel+"/"
			if m&fs.ModeSetgid != 0 {
				h.Mode |= 0o2000
			}
			if m&fs.ModeSticky != 0 {
				h.Mode |= 0o1000
			}
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		case m.IsRegular():
			if m&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				st.Stripped = append(st.Stripped, "/"+rel)
			}
			id := [2]uint64{sys.Dev, sys.Ino}
			if first, ok := links[id]; ok && sys.Nlink > 1 {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				break
			}
			if sys.Nlink > 1 {
				links[id] = rel
			}
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		case m&fs.ModeNamedPipe != 0:
			h.Typeflag = tar.TypeFifo
		default:
			return nil // sockets and device nodes: the runtime provides /dev
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		st.Entries++
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if n != h.Size {
				return fmt.Errorf("%s: changed while read (%d bytes, %d expected)", path, n, h.Size)
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, tw.Close()
}

// writeLayer writes dir as a gzipped reproducible layer to dst. gzip's
// header carries no name and no time, so the compressed bytes depend on
// the tree and the Go version only. Both digests are computed while
// writing: the layer is not read back to hash it.
func writeLayer(dir, dst string, epoch time.Time) (treeStats, *fileLayer, error) {
	out, err := os.Create(dst)
	if err != nil {
		return treeStats{}, nil, err
	}
	defer out.Close()
	compressed := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(out, compressed)}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return treeStats{}, nil, err
	}
	uncompressed := sha256.New()
	st, err := writeTree(io.MultiWriter(zw, uncompressed), dir, epoch)
	if err != nil {
		return st, nil, fmt.Errorf("layer of %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return st, nil, fmt.Errorf("compress %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return st, nil, err
	}
	return st, &fileLayer{
		path:   dst,
		size:   cw.n,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressed.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(uncompressed.Sum(nil))},
	}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// fileLayer is a gzipped OCI layer in a file whose digests are known.
type fileLayer struct {
	path           string
	size           int64
	digest, diffID v1.Hash
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// readyKey is what rootfs.sh wrote into a built tree's .ready.
func readyKey(rootfs string) (string, error) {
	b, err := os.ReadFile(filepath.Join(rootfs, ".ready"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is not built (hack/kube/rootfs.sh)", rootfs)
	}
	return strings.TrimSpace(string(b)), err
}
