package instance

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CopyBinary is `pgsync instance bootstrap --to DIR`: the init container
// copies the running (static) executable to DIR/pgsync, atomically, so the
// postgres container can run it from a shared emptyDir.
func CopyBinary(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate own executable: %w", err)
	}
	src, err := os.Open(self)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", self, err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "pgsync")
	tmp, err := os.CreateTemp(dir, ".pgsync-*")
	if err != nil {
		return "", fmt.Errorf("create in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy to %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	return dst, nil
}
