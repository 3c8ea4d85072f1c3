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
}

// Lookup returns the info of pid (comm is the fallback name).
func (c *Cache) Lookup(pid uint32, comm string) Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uint32]Info{}
	}
	if i, ok := c.m[pid]; ok {
		return i
	}
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
	if len(c.m) > 65536 {
		clear(c.m)
	}
	c.m[pid] = i
	return i
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

// Forget drops what Lookup cached of pid: its process ended or exec'd
// another program, and the pid's next process is another's.
func (c *Cache) Forget(pid uint32) {
	c.mu.Lock()
	delete(c.m, pid)
	c.mu.Unlock()
}
