//go:build !linux

package proc

import "syscall"

// sysProcAttr puts a child in its own process group. Without Linux's
// parent-death signal, children of a crashed test binary may survive it.
// What base sets otherwise is kept.
func sysProcAttr(base *syscall.SysProcAttr) *syscall.SysProcAttr {
	attr := syscall.SysProcAttr{}
	if base != nil {
		attr = *base
	}
	attr.Setpgid = true
	return &attr
}
