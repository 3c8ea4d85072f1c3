//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cilium/ebpf/link"
)

// goTracker attaches the goroutine uprobes (bpf/socket/goroutine.h) to each
// Go executable once, and lists Go processes in the go_procs map so the
// BPF programs key their contexts by goroutine. It works on a goroutine of
// its own: reading a large executable's symbol table takes long, and the
// ring buffer reader must not wait for it. Until a process is tracked, the
// causality guard uses none of its context ids.
type goTracker struct {
	queue    chan uint32     // Go processes to track
	attached map[exeID]error // per executable: nil once attached, else why not
	gen      uint32          // the go_gen map's value: bumped after each go_procs change
}

// goTrack is the tracker's goroutine.
func (c *Capture) goTrack() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case pid := <-c.gos.queue:
			if why := c.trackGo(pid); why == "" {
				c.guard.TrackGoroutines(pid)
			} else {
				c.guard.NoGoroutines(pid, why)
			}
		}
	}
}

// newProcess is called for a process's first event: a Go program is
// queued for tracking (never blocking the reader).
func (c *Capture) newProcess(pid uint32) {
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

type exeID struct{ dev, ino uint64 }

// trackGo attaches the uprobes to pid's executable (once per executable)
// and lists pid; it returns "" when its goroutines are tracked, else why not.
func (c *Capture) trackGo(pid uint32) string {
	exe := filepath.Join("/proc", strconv.Itoa(int(pid)), "exe")
	if c.gos.attached == nil {
		c.gos.attached = map[exeID]error{}
	}
	err, first := attachOnce(c.gos.attached, exe, c.attachGo)
	if first && err != nil {
		c.opt.Logger.Info("goroutines not tracked in a Go program; causality falls back to containment",
			"pid", pid, "exe", exePath(exe), "err", err)
	}
	if err != nil {
		return err.Error()
	}
	if err := c.objs.GoProcs.Put(pid, uint8(1)); err != nil {
		return fmt.Sprintf("listing pid %d: %v", pid, err)
	}
	// Threads cache whether their process is listed until this moves
	// (bpf/socket/goroutine.h thread_key).
	c.gos.gen++
	if err := c.objs.GoGen.Put(uint32(0), c.gos.gen); err != nil {
		return fmt.Sprintf("announcing pid %d: %v", pid, err)
	}
	return ""
}

// attachOnce calls attach for the file at path unless the file (its device
// and inode) was attached, or failed to be, before; it returns the outcome
// and whether this call made it.
func attachOnce(attached map[exeID]error, path string, attach func(string) error) (err error, first bool) {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err), false
	}
	sys := st.Sys().(*syscall.Stat_t)
	id := exeID{uint64(sys.Dev), sys.Ino}
	if err, seen := attached[id]; seen {
		return err, false
	}
	err = attach(path)
	attached[id] = err
	return err, true
}

// exePath is the path /proc/<pid>/exe links to (the binary a user knows),
// or link itself when it cannot be read.
func exePath(link string) string {
	if p, err := os.Readlink(link); err == nil {
		return p
	}
	return link
}

func (c *Capture) attachGo(exe string) error {
	ex, err := link.OpenExecutable(exe)
	if err != nil {
		return fmt.Errorf("opening executable: %w", err)
	}
	// runtime.send: a goroutine hands a value to one waiting on the channel.
	l, err := ex.Uprobe("runtime.send", c.objs.GoRuntimeSend, nil)
	if err != nil {
		return fmt.Errorf("uprobe on runtime.send (a stripped binary has no symbol table): %w", err)
	}
	c.addLinks(l)
	return nil
}

// addLinks keeps uprobes attached after Start (closing them when the
// capture was closed meanwhile).
func (c *Capture) addLinks(ls ...link.Link) {
	c.linksMu.Lock()
	defer c.linksMu.Unlock()
	if c.linksClosed {
		for _, l := range ls {
			l.Close()
		}
		return
	}
	c.links = append(c.links, ls...)
}

// closeLinks detaches every program and uprobe; uprobes a tracker attaches
// from now on are closed at once.
func (c *Capture) closeLinks() {
	c.linksMu.Lock()
	defer c.linksMu.Unlock()
	for _, l := range c.links {
		l.Close()
	}
	c.links = nil
	c.linksClosed = true
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
