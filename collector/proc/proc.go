//go:build linux

// Package proc reads process metadata from /proc and cgroups: process name,
// command line, container id and pod UID (package cgroup). Lookups are cached per pid.
package proc

import (
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

// Cache memoises Lookup per pid.
type Cache struct {
	Root string // "/proc" by default
	// Redact removes credentials from command lines (default:
	// redact.Default()).
	Redact *redact.Redactor
	mu     sync.Mutex
	m      map[uint32]Info
	atExec map[uint32]Info // Keep: read at the process's exec
}

// Lookup returns the info of pid for an event its thread tid made while
// named comm (the fallback name). /proc is read after the event: when the
// thread's name is no longer comm, the process exec'd another program (or
// its pid went to another process) since, and what /proc holds is not the
// event's program. Then, or when the process is gone, the info is what Keep
// kept of the process at its exec, else comm alone, not cached.
func (c *Cache) Lookup(pid, tid uint32, comm string) Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.m[pid]; ok {
		return i
	}
	i, st := c.read(pid, tid, comm)
	if st != readSame {
		var kept bool
		if i, kept = c.atExec[pid]; !kept {
			return Info{Name: comm}
		}
	}
	delete(c.atExec, pid)
	if c.m == nil || len(c.m) > 65536 {
		c.m = map[uint32]Info{}
	}
	c.m[pid] = i
	return i
}

// Read returns the info of pid from /proc, not cached, and whether its
// thread tid was still named comm once it was read (else the info may be
// another program's).
func (c *Cache) Read(pid, tid uint32, comm string) (Info, bool) {
	i, st := c.read(pid, tid, comm)
	return i, st == readSame
}

// Keep keeps what Read returned at pid's exec, for the program's first
// Lookup in case the process is gone by then (a short-lived client). A
// process still there is read again at its first Lookup: it may have
// moved to another cgroup since its exec.
func (c *Cache) Keep(pid uint32, info Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.atExec == nil || len(c.atExec) > 65536 {
		c.atExec = map[uint32]Info{}
	}
	c.atExec[pid] = info
}

// What read found.
const (
	readSame  = iota // the process, its thread tid still named comm
	readOther        // the thread has another name: another program's
	readGone         // no such process any more
)

func (c *Cache) read(pid, tid uint32, comm string) (Info, int) {
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
		s := c.cmdline(string(b))
		if len(s) > 256 {
			s = s[:256]
		}
		i.Cmdline = s
	}
	ct, err := cgroup.Read(root, pid)
	i.ContainerID, i.PodUID, i.CgroupErr = ct.ID, ct.PodUID, err
	// Read last: a change before any read above shows here.
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

// cmdline is the command line of /proc/<pid>/cmdline (arguments ended by
// NULs) with its credentials redacted. A process that rewrote its title
// into its first argument (setproctitle) is redacted word by word.
func (c *Cache) cmdline(raw string) string {
	argv := strings.Split(strings.TrimRight(raw, "\x00"), "\x00")
	if len(argv) == 1 {
		argv = strings.Fields(argv[0])
	}
	r := c.Redact
	if r == nil {
		r = redact.Default()
	}
	return strings.TrimRight(r.Cmdline(argv), " ")
}

// Forget drops what Lookup cached and Keep kept of pid: its process ended
// or exec'd another program, and the pid's next process is another's.
func (c *Cache) Forget(pid uint32) {
	c.mu.Lock()
	delete(c.m, pid)
	delete(c.atExec, pid)
	c.mu.Unlock()
}
