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

// A key with directories, as a projection's item path: its first
// component is linked through ..data, appears with the version and goes
// with it.
func TestWriteNestedKeys(t *testing.T) {
	dir := t.TempDir()
	me := Owner{-1, -1}
	if err := Write(dir, map[string][]byte{"ca.crt": []byte("1")}, 0o444, me); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, map[string][]byte{"ca.crt": []byte("1"), "gen2/ca.crt": []byte("2"), "gen2/ca.key": []byte("k")}, 0o444, me); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "gen2", "ca.crt")); err != nil || string(b) != "2" {
		t.Errorf("gen2/ca.crt = %q (%v)", b, err)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "gen2")); target != "..data/gen2" {
		t.Errorf("gen2 -> %q, want ..data/gen2", target)
	}
	if err := Write(dir, map[string][]byte{"ca.crt": []byte("1")}, 0o444, me); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "gen2")); !os.IsNotExist(err) {
		t.Errorf("gen2 is still there once its keys are gone (%v)", err)
	}
	for _, bad := range []string{"../x", "/x", "a/../../x", "a//b"} {
		if err := Write(dir, map[string][]byte{bad: nil}, 0o444, me); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}
