//go:build linux

// Package proc reads process metadata from /proc and cgroups: process name,
// command line, container id and pod UID (package cgroup). Lookups are cached per pid.
package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/zerotrace/zerotrace/collector/cgroup"
	"github.com/zerotrace/zerotrace/pkg/redact"
)

// Info is what the collector puts on a process span.
type Info struct {
	Name        string // executable base name (comm when unreadable)
	Cmdline     string // space-joined, credentials redacted (redact.Args), truncated to 256 bytes
	ContainerID string // 64-hex id from the cgroup path, if any
	PodUID      string // the kubelet's pod UID from the cgroup path, if any
	CgroupErr   error  // why the cgroup named no container (cgroup.ErrUnknownLayout, unreadable)
}

// Exec is what an exec's event tells of the new program
// (bpf/socket/procs.h note_exec), read by the kernel at the exec: it is
// there when the process is gone before user space could read /proc.
type Exec struct {
	Comm     string // the thread's name: the program's base name, cut to 15 bytes
	File     string // the program file's name, links resolved ("" when unread)
	Args     []byte // its arguments as the kernel copied them: NUL-separated, maybe cut
	CgroupID uint64 // its cgroup v2 id: the inode number of the cgroup's directory
	// ArgStart is where its arguments start in its memory (mm->arg_start,
	// /proc/<pid>/stat's arg_start): another exec of the same program
	// places them elsewhere (the stack's place is random), 0 when unknown.
	ArgStart uint64
}

// ExecOf is what an exec's event tells: its thread's name comm, its data
// (the program file's name, a NUL, then its arguments) and its cgroup id.
// Data without a NUL (cut inside the name) gives neither name nor
// arguments. Args aliases data (Keep copies it).
func ExecOf(comm string, data []byte, cgroupID uint64) Exec {
	x := Exec{Comm: comm, CgroupID: cgroupID}
	if name, args, ok := bytes.Cut(data, []byte{0}); ok {
		x.File, x.Args = string(name), args
	}
	return x
}

// Cache memoises Lookup per pid.
type Cache struct {
	Root string // "/proc" by default
	// Redact removes credentials from command lines (default:
	// redact.Default()).
	Redact *redact.Redactor
	// Cgroups finds an exec's cgroup from its id (default: one ByID on
	// the host's cgroup2 mount).
	Cgroups *cgroup.ByID
	mu      sync.Mutex
	m       map[uint32]Info
	atExec  map[uint32]Exec // Keep: the process's exec
}

// cgroups is the default Cache.Cgroups: one descriptor on the cgroup2
// mount, opened at its first use.
var cgroups cgroup.ByID

// Lookup returns the info of pid for an event its thread tid made while
// named comm (the fallback name). /proc is read after the event: when the
// thread's name is no longer comm, or its arguments are no longer where the
// exec kept for pid placed them, the process exec'd another program (or its
// pid went to another process) since, and what /proc holds is not the
// event's program. Then, or when the process is gone, the info is what the
// process's exec told (Keep), else comm alone, not cached.
func (c *Cache) Lookup(pid, tid uint32, comm string) Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.m[pid]; ok {
		return i
	}
	x, kept := c.atExec[pid]
	i, st := c.read(pid, tid, comm, x.ArgStart)
	if st != readSame {
		if !kept {
			return Info{Name: comm}
		}
		i = c.fromExec(x)
	}
	delete(c.atExec, pid)
	if c.m == nil || len(c.m) > 65536 {
		c.m = map[uint32]Info{}
	}
	c.m[pid] = i
	return i
}

// Keep keeps what pid's exec told of its new program, for the program's
// first Lookup in case the process is gone by then (a short-lived client)
// or has exec'd again. A process still there is read from /proc at its
// first Lookup: it may have moved to another cgroup since its exec, or
// rewritten its title. Args is copied.
func (c *Cache) Keep(pid uint32, x Exec) {
	x.Args = append([]byte(nil), x.Args...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.atExec == nil || len(c.atExec) > 65536 {
		c.atExec = map[uint32]Exec{}
	}
	c.atExec[pid] = x
}

// fromExec is the info an exec told: its program's name (its file's, as
// /proc/<pid>/exe would give it, else its thread's), its command line and,
// when its cgroup is still there, its container.
func (c *Cache) fromExec(x Exec) Info {
	i := Info{Name: x.File, Cmdline: c.cmdline(string(x.Args))}
	if i.Name == "" {
		i.Name = x.Comm
	}
	if x.CgroupID == 0 {
		return i
	}
	r := c.Cgroups
	if r == nil {
		r = &cgroups
	}
	p, err := r.Path(x.CgroupID)
	if err != nil {
		i.CgroupErr = err
		return i
	}
	ct, err := cgroup.ParsePath(p)
	i.ContainerID, i.PodUID, i.CgroupErr = ct.ID, ct.PodUID, err
	return i
}

// What read found.
const (
	readSame  = iota // the process, its thread tid still named comm
	readOther        // the thread has another name, or the arguments another place: another program's
	readGone         // no such process any more
)

// read reads pid's info from /proc, and whether it is still the program
// whose thread tid was named comm and whose arguments started at argStart
// (0: not known).
func (c *Cache) read(pid, tid uint32, comm string, argStart uint64) (Info, int) {
	root := c.Root
	if root == "" {
		root = "/proc"
	}
	dir := filepath.Join(root, strconv.Itoa(int(pid)))
	i := Info{Name: comm}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		i.Name = filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		i.Cmdline = c.cmdline(string(b))
	}
	ct, err := cgroup.Read(root, pid)
	i.ContainerID, i.PodUID, i.CgroupErr = ct.ID, ct.PodUID, err
	// Read last: an exec before any read above shows here. A program that
	// exec'd one of its own name (a shell's exec of a shell) keeps the
	// thread's name but places its arguments elsewhere.
	if argStart != 0 {
		if st, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
			if at, err := StatArgStart(st); err == nil && at != 0 && at != argStart {
				return i, readOther
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "task", strconv.Itoa(int(tid)), "comm"))
	switch {
	case err != nil:
		if _, err := os.Stat(dir); err != nil {
			return i, readGone
		}
	case strings.TrimSuffix(string(b), "\n") != comm:
		return i, readOther
	}
	return i, readSame
}

// cmdline is the command line of /proc/<pid>/cmdline or an exec's
// arguments (arguments ended by NULs) with its credentials redacted, cut to
// 256 bytes. A process that rewrote its title into its first argument
// (setproctitle) is redacted word by word.
func (c *Cache) cmdline(raw string) string {
	argv := strings.Split(strings.TrimRight(raw, "\x00"), "\x00")
	if len(argv) == 1 {
		argv = strings.Fields(argv[0])
	}
	r := c.Redact
	if r == nil {
		r = redact.Default()
	}
	s := strings.TrimRight(r.Cmdline(argv), " ")
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// Forget drops what Lookup cached and Keep kept of pid: its process ended
// or exec'd another program, and the pid's next process is another's.
func (c *Cache) Forget(pid uint32) {
	c.mu.Lock()
	delete(c.m, pid)
	delete(c.atExec, pid)
	c.mu.Unlock()
}
