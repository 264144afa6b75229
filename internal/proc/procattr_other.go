//go:build !linux

package proc

import "syscall"

// sysProcAttr puts a child in its own process group. Without Linux's
// parent-death signal, children of a crashed test binary may survive it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
