package proc

import "syscall"

// sysProcAttr puts a child in its own process group (so stop signals reach
// all of it) and has the kernel SIGKILL it when the thread that started it
// dies, so nothing survives a crashed or killed test binary. Go never ends
// the threads it runs goroutines on, unless a goroutine exits while locked
// to one, which this package does not do. What base sets otherwise is kept.
func sysProcAttr(base *syscall.SysProcAttr) *syscall.SysProcAttr {
	attr := syscall.SysProcAttr{}
	if base != nil {
		attr = *base
	}
	attr.Setpgid, attr.Pdeathsig = true, syscall.SIGKILL
	return &attr
}
