//go:build linux

package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zerotrace/zerotrace/collector/cgroup"
)

// hostPIDNamespace is the inode of the kernel's initial PID namespace
// (PROC_PID_INIT_INO).
const hostPIDNamespace = 0xEFFFFFFC

// cgroupChecks: the cgroup hierarchy, the containers the processes'
// cgroups name (by runtime) and whether this process sees the host's
// processes.
func cgroupChecks(procRoot, cgroupRoot string) []Check {
	return []Check{cgroupLayout(cgroupRoot), containers(procRoot), pidNamespace(procRoot)}
}

func cgroupLayout(root string) Check {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return unknown("cgroup layout", err.Error())
	}
	switch {
	case st.Type == unix.CGROUP2_SUPER_MAGIC:
		return ok("cgroup layout", "cgroup v2 (unified) at "+root)
	case st.Type == unix.TMPFS_MAGIC:
		var u unix.Statfs_t
		if unix.Statfs(filepath.Join(root, "unified"), &u) == nil && u.Type == unix.CGROUP2_SUPER_MAGIC {
			return ok("cgroup layout", "hybrid: cgroup v1 controllers and v2 at "+filepath.Join(root, "unified")+" (containers are found in either)")
		}
		return ok("cgroup layout", "cgroup v1 at "+root+" (containers are found in the controllers' paths)")
	}
	return unknown("cgroup layout", fmt.Sprintf("%s is no cgroup filesystem (type %#x)", root, st.Type))
}

// containers reads every process's cgroup as the capture does
// (collector/cgroup): how many run in containers of which runtime, and how
// many cgroups name a runtime or the kubelet in a layout it cannot read.
func containers(procRoot string) Check {
	const name = "containers"
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return unknown(name, err.Error())
	}
	byRuntime := map[string]int{}
	procs, inContainers, pods, unreadable := 0, 0, 0, 0
	var unknownLayout []string
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		c, err := cgroup.Read(procRoot, uint32(pid))
		switch {
		case errors.Is(err, cgroup.ErrUnknownLayout):
			if len(unknownLayout) < 3 {
				unknownLayout = append(unknownLayout, e.Name())
			}
			procs++
			continue
		case err != nil:
			unreadable++ // exited meanwhile, or not ours to read
			continue
		}
		procs++
		if c.ID == "" {
			continue
		}
		inContainers++
		rt := c.Runtime
		if rt == "" {
			rt = "cgroupfs driver"
		}
		byRuntime[rt]++
		if c.PodUID != "" {
			pods++
		}
	}
	var rts []string
	for rt, n := range byRuntime {
		rts = append(rts, fmt.Sprintf("%s %d", rt, n))
	}
	sort.Strings(rts)
	detail := fmt.Sprintf("%d of %d processes in containers", inContainers, procs)
	if len(rts) > 0 {
		detail += " (" + strings.Join(rts, ", ") + fmt.Sprintf("; %d in Kubernetes pods)", pods)
	} else {
		detail += ": spans are named by process (and by the pods: mapping outside Kubernetes)"
	}
	if len(unknownLayout) > 0 {
		return degraded(name, detail+fmt.Sprintf("; pids %s… in cgroups of a runtime or the kubelet whose layout names no container",
			strings.Join(unknownLayout, ", ")), "their spans carry no container id, so no pod or workload name")
	}
	return ok(name, detail)
}

// pidNamespace: the eBPF events carry the host's pids, which the collector
// looks up in /proc.
func pidNamespace(procRoot string) Check {
	const name = "pid namespace"
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(procRoot, "self/ns/pid"), &st); err != nil {
		return unknown(name, err.Error())
	}
	if st.Ino == hostPIDNamespace {
		return ok(name, "the host's: /proc shows the processes the events name")
	}
	return degraded(name, fmt.Sprintf("not the host's (inode %d)", st.Ino),
		"events name host pids this /proc does not show: no process names, containers or pods (run with hostPID: true)")
}
