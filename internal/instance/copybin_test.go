package instance

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyBinary(t *testing.T) {
	dir := t.TempDir()
	dst, err := CopyBinary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst != filepath.Join(dir, "pgsync") {
		t.Errorf("installed at %s", dst)
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy differs from the running executable (%v)", err)
	}
	fi, _ := os.Stat(dst)
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	// Idempotent: an init container that runs again replaces the file.
	if _, err := CopyBinary(dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left temporary files: %v", ents)
	}
	if _, err := CopyBinary(filepath.Join(dir, "missing")); err == nil {
		t.Error("copy into a missing directory succeeded")
	}
}
