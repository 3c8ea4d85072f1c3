//go:build linux

package ebpf

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/zerotrace/zerotrace/collector/nodejs"
)

// nodeTracker attaches the event-loop turn uprobes (bpf/socket/nodeasync.h)
// to each Node.js executable once, on a goroutine of its own (reading a
// node binary's symbol table takes a second). Until a process's turns are
// followed its loop thread's contexts are those of any thread.
type nodeTracker struct {
	queue    chan uint32
	attached map[exeID]error

	mu       sync.Mutex
	followed map[uint32]bool
}

// TurnsFollowed reports whether the event-loop turns of process pid are
// followed (its node executable's uprobes are attached).
func (c *Capture) TurnsFollowed(pid uint32) bool {
	c.nodes.mu.Lock()
	defer c.nodes.mu.Unlock()
	return c.nodes.followed[pid]
}

// nodeNewProcess queues pid when it runs a node executable (never blocking
// the reader).
func (c *Capture) nodeNewProcess(pid uint32) {
	select {
	case c.nodes.queue <- pid:
	default:
	}
}

// nodeTrack is the tracker's goroutine.
func (c *Capture) nodeTrack() {
	defer c.wg.Done()
	c.nodes.attached = map[exeID]error{}
	// Processes running before the capture started.
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if pid, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && pid != uint64(os.Getpid()) {
				c.trackNode(uint32(pid))
			}
		}
	}
	for {
		select {
		case <-c.done:
			return
		case pid := <-c.nodes.queue:
			c.trackNode(pid)
		}
	}
}

// trackNode attaches the uprobes to pid's executable if it is node's.
func (c *Capture) trackNode(pid uint32) {
	exe := filepath.Join("/proc", strconv.Itoa(int(pid)), "exe")
	if !strings.HasPrefix(filepath.Base(exePath(exe)), "node") {
		return
	}
	err, first := attachOnce(c.nodes.attached, exe, c.attachNode)
	if first && err != nil {
		c.opt.Logger.Info("Node.js event-loop turns not followed; causality falls back to headers and containment",
			"pid", pid, "exe", exePath(exe), "err", err)
	}
	if err != nil {
		c.guard.NoTasks(pid, "a Node.js event loop whose turns are not followed: "+err.Error())
		return
	}
	c.nodes.mu.Lock()
	defer c.nodes.mu.Unlock()
	if c.nodes.followed == nil || len(c.nodes.followed) > 65536 {
		c.nodes.followed = map[uint32]bool{}
	}
	c.nodes.followed[pid] = true
}

// attachNode attaches the turn uprobes to the node executable at path.
func (c *Capture) attachNode(path string) error {
	return c.attachFound(path, "the callback scope functions", func(r io.ReaderAt) ([]uprobeAt, error) {
		t, err := nodejs.FindTurns(r)
		ctxReg := uint64(0) // bpf/socket/nodeasync.h NODE_CTX_*
		if t.ScopeEnvCtxInR8 {
			ctxReg = 1
		}
		// In this order (attachAll attaches one after another while the
		// loop runs): Close()'s return, its entry, then what opens a
		// scope. A scope followed is then always seen to close; the
		// other way round, a turn between two attaches left its scope
		// open for good and every later turn unknown
		// (TestCaptureNodeLoopAttachedMidTurn). A Close() entered before
		// its entry's uprobe returns to a closing stack without it:
		// ignored (bpf/socket/nodeasync.h).
		return []uprobeAt{{c.objs.NodeClosed, true, t.Close, 0}, {c.objs.NodeClose, false, t.Close, 0},
			{c.objs.NodeMakeCallback, false, t.MakeCallback, 0}, {c.objs.NodeScopeEnv, false, t.ScopeEnv, ctxReg},
			{c.objs.NodeScopeWrap, false, t.ScopeWrap, 0}}, err
	})
}
