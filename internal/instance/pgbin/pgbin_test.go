package pgbin

import (
	"os"
	"path/filepath"
	"testing"
)

func fakeBin(t *testing.T, dir string, tools ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindPrefersNewestCompleteDir(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on PATH
	root := t.TempDir()
	fakeBin(t, filepath.Join(root, "9", "bin"), required...)
	fakeBin(t, filepath.Join(root, "15", "bin"), required...)
	fakeBin(t, filepath.Join(root, "17", "bin"), "postgres", "initdb") // incomplete
	d, err := Find("", []string{filepath.Join(root, "*", "bin")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin"); string(d) != want {
		t.Errorf("Find = %s, want %s", d, want)
	}
	if _, err := Find(filepath.Join(root, "17", "bin"), nil); err == nil {
		t.Error("an incomplete explicit directory was accepted")
	}
}

func TestFindOnPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin")
	fakeBin(t, dir, required...)
	t.Setenv("PATH", dir)
	d, err := Find("", nil)
	if err != nil || string(d) != dir {
		t.Errorf("Find = %q, %v; want %s", d, err, dir)
	}
}

func TestFindNothing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Find("", []string{filepath.Join(t.TempDir(), "*")}); err == nil {
		t.Error("Find succeeded with no binaries")
	}
}

func TestReadVersion(t *testing.T) {
	d := t.TempDir()
	if _, err := ReadVersion(d); err != ErrNoData {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(d, "PG_VERSION"), []byte("15\n"), 0o600)
	if v, err := ReadVersion(d); v != 15 || err != nil {
		t.Errorf("ReadVersion = %d, %v", v, err)
	}
}
