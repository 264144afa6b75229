// Command pause is the node's sandbox image: it holds a pod's namespaces by
// waiting until SIGTERM or SIGINT, and reaps the children it inherits, as
// the init of a namespace must.
//
// The node also runs it, with -node-init, as the init of its own PID
// namespace. There SIGTERM, which the kernel sends when the process holding
// the namespaces dies (unshare --kill-child=SIGTERM, which dies with the
// test that started it), first records the containers' cgroups, kills
// every process of the namespace and waits for them, then removes those
// cgroups: nobody else would, when the test was killed before its cleanup.
package main

import (
	"errors"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	nodeInit := flag.Bool("node-init", false, "run as the node's init: on SIGTERM kill the node and remove its containers' cgroups")
	flag.Parse()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			break
		}
		reap()
	}
	if *nodeInit {
		shutDownNode()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// cgroupRoot holds one hierarchy per cgroup v1 controller (and the v2
// "unified" one); runc puts each container of the node in k8s.io/<id> of
// every hierarchy.
const cgroupRoot = "/sys/fs/cgroup"

// shutDownNode kills every process of this PID namespace, waits until
// they are gone, and removes the cgroups of the containers that had a
// process in it.
func shutDownNode() {
	ids := ownContainers()
	_ = syscall.Kill(-1, syscall.SIGKILL) // from a PID namespace's init: every other process in it
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var status syscall.WaitStatus
		_, err := syscall.Wait4(-1, &status, 0, nil)
		if errors.Is(err, syscall.ECHILD) {
			break
		}
	}
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*"))
	hierarchies = append(hierarchies, cgroupRoot) // v2: k8s.io is at the root
	for _, id := range ids {
		for _, h := range hierarchies {
			rmdir(filepath.Join(h, "k8s.io", id))
		}
	}
}

// ownContainers returns the IDs of the containers with a process in this
// PID namespace: reading cgroup.procs lists only the processes this
// namespace sees.
func ownContainers() []string {
	// v1 (a pids hierarchy) or v2 (one hierarchy, where a process this
	// namespace does not see is listed as 0).
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "pids", "k8s.io", "*", "cgroup.procs"))
	if len(dirs) == 0 {
		dirs, _ = filepath.Glob(filepath.Join(cgroupRoot, "k8s.io", "*", "cgroup.procs"))
	}
	var ids []string
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil && pid > 0 {
				ids = append(ids, filepath.Base(filepath.Dir(f)))
				break
			}
		}
	}
	return ids
}

// rmdir removes an emptied cgroup, retrying while the kernel finishes with
// the processes that were in it (EBUSY).
func rmdir(d string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Rmdir(d)
		if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel; there is no event to wait on
	}
}
