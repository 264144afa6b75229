package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// cgroupRoot is where the cgroup hierarchies are mounted: on these
// machines one directory per v1 controller, plus the v2 "unified" one.
const cgroupRoot = "/sys/fs/cgroup"

// containerCgroups returns the cgroup directories of the containers with
// the given IDs that exist: runc (with cgroupfs, and no parent from the
// kubelet since cgroupsPerQOS is off) puts each in /k8s.io/<id> of every
// hierarchy, and removes them only when containerd deletes the task, which
// a killed node never does.
func containerCgroups(ids []string) []string {
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	var dirs []string
	for _, h := range hierarchies {
		for _, id := range ids {
			d := filepath.Join(h, "k8s.io", id)
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// removeContainerCgroups removes the containers' cgroups once their
// processes are gone, then /k8s.io itself where it is left empty (another
// node's containers keep it).
func removeContainerCgroups(ids []string) error {
	var errs []error
	for _, d := range containerCgroups(ids) {
		if err := rmdirCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(ids) > 0 {
		parents, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "k8s.io"))
		for _, p := range parents {
			_ = syscall.Rmdir(p) // fails while other containers are in it
		}
	}
	return errors.Join(errs...)
}

// rmdirCgroup removes an empty cgroup, retrying while the kernel finishes
// with the processes that were in it (EBUSY).
func rmdirCgroup(d string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
	}
}
