package discovery

import "syscall"

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// becomeSubreaper makes this process the parent that its orphaned
// descendants are re-parented to (as if it were PID 1), so that endGroup
// and reapChildren can reap the processes a hook leaves behind. Without a
// reaper they stay zombies once they exit.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}
