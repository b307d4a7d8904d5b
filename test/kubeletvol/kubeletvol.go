// Package kubeletvol lays out pod volumes as the kubelet does, for tests
// that run a container's processes outside Kubernetes. A ConfigMap, Secret
// or projected volume is a directory whose keys are symlinks through
// `..data` to a hidden, timestamped directory holding the files; an update
// writes a new directory and swaps `..data` in one rename, then removes the
// old one (the kubelet's AtomicWriter). Readers of such a volume must cope
// with exactly that, so the tests give them exactly that.
//
// It must not import `pgsync/...`.
package kubeletvol

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Owner is the owner given to the files (-1 keeps the writer's).
type Owner struct{ UID, GID int }

// Write makes the volume dir hold exactly files (key → content; a key may
// be a relative path, as a projection's items are), each with mode and
// owner, as one atomic update. Other entries of dir that are not
// keys of an earlier Write are left alone.
func Write(dir string, files map[string][]byte, mode os.FileMode, owner Owner) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	top := map[string]bool{} // the first component of each path
	for key, data := range files {
		if key != filepath.Clean(key) || filepath.IsAbs(key) || strings.HasPrefix(key, "..") || strings.Contains(key, "/..") {
			return fmt.Errorf("kubeletvol: key %q is not a relative path inside the volume", key)
		}
		// As the kubelet, a path with directories (a projection's
		// items) lives in the version directory; only its first
		// component is linked from dir.
		top[strings.SplitN(key, "/", 2)[0]] = true
		p := filepath.Join(ts, key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil { // no umask
			return err
		}
		if err := os.Lchown(p, owner.UID, owner.GID); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		link := filepath.Join(dir, k)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if top[name] || strings.HasPrefix(name, "..") {
			continue
		}
		// A key of an earlier version; anything else in dir is not ours.
		if target, err := os.Readlink(filepath.Join(dir, name)); err == nil && target == filepath.Join("..data", name) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	if old != "" && old != filepath.Base(ts) {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
