//go:build linux

package causality

import (
	"debug/elf"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Guard tracks, per process, whether its thread contexts can be trusted.
// Safe for concurrent use.
type Guard struct {
	Root   string // "/proc" by default
	Logger *slog.Logger

	mu    sync.Mutex
	procs map[uint32]*process
}

type process struct {
	untrusted string // why its thread contexts are not used ("" = trusted)
}

// Untrusted reports why pid's thread contexts are not used, or "".
func (g *Guard) Untrusted(pid uint32) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.process(pid).untrusted
}

// Check removes the context ids of s when they cannot be trusted, and learns
// from s whether its process runs requests across threads.
func (g *Guard) Check(s *span.Span) {
	if s.SignalSource != span.SourceEBPF || s.PID == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.process(s.PID)
	if p.untrusted == "" && s.TapSide == span.TapServerProcess && s.Flags.Has(span.FlagReqTIDMismatch) {
		p.untrusted = fmt.Sprintf("a server request moved between threads (tids %d, %d)", s.ReqTID, s.RespTID)
		g.log(s.PID, s.ProcessName, p.untrusted)
	}
	multiplexed := s.TapSide == span.TapServerProcess && s.Flags.Has(span.FlagMultiplexed)
	if p.untrusted != "" || multiplexed {
		s.SyscallTraceIDReq, s.SyscallTraceIDResp = 0, 0
	}
}

// Forget drops what is known of pid (it exited).
func (g *Guard) Forget(pid uint32) {
	g.mu.Lock()
	delete(g.procs, pid)
	g.mu.Unlock()
}

func (g *Guard) process(pid uint32) *process {
	if g.procs == nil {
		g.procs = map[uint32]*process{}
	}
	if p, ok := g.procs[pid]; ok {
		return p
	}
	if len(g.procs) > 65536 {
		clear(g.procs)
	}
	p := &process{}
	root := g.Root
	if root == "" {
		root = "/proc"
	}
	exe := filepath.Join(root, strconv.Itoa(int(pid)), "exe")
	if IsGo(exe) {
		p.untrusted = "Go runtime: goroutines move between threads (goroutine tracking is not implemented)"
		g.log(pid, exe, p.untrusted)
	}
	g.procs[pid] = p
	return p
}

func (g *Guard) log(pid uint32, what, why string) {
	l := g.Logger
	if l == nil {
		l = slog.Default()
	}
	l.Info("thread contexts not used for a process; causality falls back to headers and containment",
		"pid", pid, "process", what, "why", why)
}

// IsGo reports whether the ELF file at path is a Go program (it has the
// .go.buildinfo section every Go binary since 1.13 carries, stripped or not).
func IsGo(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Section(".go.buildinfo") != nil
}
