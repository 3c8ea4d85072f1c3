//go:build linux

package ebpf

// Process discovery: a process's first event hands it to the runtime
// trackers (Go, CPython, Node.js).

// newProcess is called for a process's first event: a Go program is
// queued for tracking (never blocking the reader).
func (c *Capture) newProcess(pid uint32) {
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
