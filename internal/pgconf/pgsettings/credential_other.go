//go:build !unix

package pgsettings

import "os/exec"

// setCredential is never reached off Unix: there os.Geteuid reports -1, so
// Dump never believes it runs as root.
func setCredential(*exec.Cmd, int, int) {}
