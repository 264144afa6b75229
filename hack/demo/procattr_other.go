//go:build !linux

package main

import "syscall"

// sysProcAttr gives peerdns its own process group (the terminal's Ctrl-C
// reaches the demo only, which then stops peerdns in order).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
