package kubeletvol

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSwapsVersions(t *testing.T) {
	dir := t.TempDir()
	me := Owner{-1, -1}
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, map[string][]byte{"a": []byte("1"), "b": []byte("1")}, 0o444, me); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := Write(dir, map[string][]byte{"a": []byte("2")}, 0o444, me); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(b) != "2" {
		t.Errorf("a = %q (%v), want the new version", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Errorf("a removed key is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("the old version %s was not removed (%v)", first, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Errorf("a file that is not a key was removed: %v", err)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "a")); target != "..data/a" {
		t.Errorf("a -> %q, want ..data/a", target)
	}
	fi, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("mode %v (%v)", fi.Mode(), err)
	}
}
