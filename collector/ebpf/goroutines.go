//go:build linux

package ebpf

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// goTracker attaches the goroutine uprobe (runtime.send,
// bpf/socket/handoff.h) to each Go executable once, and lists Go processes
// in the go_procs map so the BPF programs key their contexts by goroutine. It works on a goroutine of
// its own: reading a large executable's symbol table takes long, and the
// ring buffer reader must not wait for it. Until a process is tracked, the
// causality guard uses none of its context ids. An executable whose
// goroutines cannot be tracked (stripped, or runtime.g.goid's offset not
// known: goid.go) is logged once and counted; its processes keep their
// syscall spans, without context (containment).
type goTracker struct {
	queue     chan uint32      // Go processes to track
	attached  map[exeID]error  // per executable: nil once attached, else why not
	goids     map[exeID]uint16 // per attached executable: runtime.g.goid's offset
	gen       uint32           // the go_gen map's value: bumped after each go_procs change
	untracked atomic.Uint64    // Go executables whose goroutines are not tracked
}

// GoUntracked returns the Go executables whose goroutines are not tracked
// (/metrics zerotrace_ebpf_go_untracked_total).
func (c *Capture) GoUntracked() uint64 {
	return c.gos.untracked.Load()
}

// goTrack is the tracker's goroutine.
func (c *Capture) goTrack() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case pid := <-c.gos.queue:
			c.trackGoTLS(pid) // its crypto/tls plaintext (gotls.go)
			if why := c.trackGo(pid); why == "" {
				c.guard.TrackGoroutines(pid)
				c.opt.Logger.Debug("goroutines tracked", "pid", pid)
			} else {
				c.guard.NoGoroutines(pid, why)
			}
		}
	}
}

// trackGo attaches the uprobes to pid's executable (once per executable)
// and lists pid; it returns "" when its goroutines are tracked, else why not.
func (c *Capture) trackGo(pid uint32) string {
	// The pidfd holds this process, whatever later takes its pid: it tells
	// below whether the process ended before its entry was made (its end
	// removed nothing then: bpf/socket/procs.h).
	pfd, err := unix.PidfdOpen(int(pid), 0)
	if err != nil {
		return fmt.Sprintf("opening pid %d: %v", pid, err)
	}
	defer unix.Close(pfd)
	exe := filepath.Join("/proc", strconv.Itoa(int(pid)), "exe")
	if c.gos.attached == nil {
		c.gos.attached = map[exeID]error{}
		c.gos.goids = map[exeID]uint16{}
	}
	err, first := attachOnce(c.gos.attached, exe, c.attachGo)
	if first && err != nil {
		c.gos.untracked.Add(1)
		c.opt.Logger.Info("goroutines not tracked in a Go program; causality falls back to containment",
			"pid", pid, "exe", exePath(exe), "err", err)
	}
	if err != nil {
		return err.Error()
	}
	id, err := exeIDOf(exe)
	if err != nil {
		return err.Error()
	}
	off, ok := c.gos.goids[id]
	if !ok {
		return "runtime.g.goid's offset not known"
	}
	if err := c.objs.GoProcs.Put(pid, off); err != nil {
		return fmt.Sprintf("listing pid %d: %v", pid, err)
	}
	if err := c.goGenBump(pid); err != nil {
		return err.Error()
	}
	if again, err := exeIDOf(exe); exited(pfd) || err != nil || again != id {
		// It ended or exec'd while it was looked at: the entry would
		// outlive it and be taken for the pid's next program.
		c.objs.GoProcs.Delete(pid)
		c.goGenBump(pid)
		return "the process ended or exec'd while its goroutines were being tracked"
	}
	return ""
}

// goGenBump announces a change of go_procs: threads cache whether their
// process is listed until this moves (bpf/socket/goroutine.h thread_key).
func (c *Capture) goGenBump(pid uint32) error {
	c.gos.gen++
	if err := c.objs.GoGen.Put(uint32(0), c.gos.gen); err != nil {
		return fmt.Errorf("announcing pid %d: %w", pid, err)
	}
	return nil
}

// exited reports whether the process of pidfd fd has exited (its pidfd
// polls readable from then on, zombie or reaped).
func exited(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0
}

func (c *Capture) attachGo(exe string) error {
	// Goroutines are keyed by their goid (bpf/socket/goroutine.h
	// goroutine_key), read at this offset of their g.
	off, err := goidOffset(exe)
	if err != nil {
		return fmt.Errorf("finding runtime.g.goid: %w", err)
	}
	id, err := exeIDOf(exe)
	if err != nil {
		return err
	}
	ex, err := link.OpenExecutable(exe)
	if err != nil {
		return fmt.Errorf("opening executable: %w", err)
	}
	// runtime.send: a goroutine hands a value to one waiting on the channel.
	l, err := ex.Uprobe("runtime.send", c.objs.GoRuntimeSend, nil)
	if err != nil {
		return fmt.Errorf("uprobe on runtime.send (a stripped binary has no symbol table): %w", err)
	}
	c.gos.goids[id] = off
	c.addLinks(l)
	return nil
}
