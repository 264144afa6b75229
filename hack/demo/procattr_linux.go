package main

import "syscall"

// sysProcAttr gives peerdns its own process group (the terminal's Ctrl-C
// reaches the demo only, which then stops peerdns in order) and has the
// kernel kill it if the demo dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
