//go:build unix

package pgsettings

import (
	"os/exec"
	"syscall"
)

// setCredential makes cmd run as uid/gid (the caller is root).
func setCredential(cmd *exec.Cmd, uid, gid int) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
	}
}
