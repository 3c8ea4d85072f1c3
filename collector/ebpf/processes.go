//go:build linux

package ebpf

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Process discovery: a process's first event hands it to the runtime
// trackers (Go, CPython, Node.js). A process's end or exec (DirProc,
// bpf/socket/procs.h) makes the pid's next event a first event again.

// newProcess is called for a process's first event: a Go program is
// queued for tracking (never blocking the reader).
func (c *Capture) newProcess(pid uint32) {
	c.guard.Began(pid)
	c.tlsNewProcess(pid)
	if !c.guard.IsGoProcess(pid) {
		c.pyNewProcess(pid)
		c.nodeNewProcess(pid)
		return
	}
	select {
	case c.gos.queue <- pid:
	default:
		c.guard.NoGoroutines(pid, "too many new Go processes at once")
	}
}

// seenPID reports whether pid was seen before, and remembers it.
func (c *Capture) seenPID(pid uint32) bool {
	if c.pids == nil || len(c.pids) > 65536 {
		c.pids = map[uint32]bool{}
	}
	if c.pids[pid] {
		return true
	}
	c.pids[pid] = true
	return false
}

// processEnded handles pid's DirProc event: its process ended or exec'd
// another program, after every event of it the ring held. Its name,
// command line and container are forgotten at once (no connection of it
// starts after this); the causality guard's view of it, by which its spans
// still open are judged, at the pid's next first event (newProcess).
func (c *Capture) processEnded(pid uint32) {
	delete(c.pids, pid)
	c.procs.Forget(pid)
	c.guard.Ended(pid)
}

// attachProcesses follows processes' ends and execs; without them a pid's
// cached facts outlive its process (logged once).
func (c *Capture) attachProcesses() {
	for _, p := range []*ebpf.Program{c.objs.OnProcessExit, c.objs.OnProcessExec} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			c.opt.Logger.Warn("processes' ends not followed: a reused pid may be taken for its former process", "err", err)
			return
		}
		c.links = append(c.links, l)
	}
}
