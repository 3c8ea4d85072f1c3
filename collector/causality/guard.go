//go:build linux

package causality

import (
	"debug/elf"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Guard tracks, per process, whether its thread contexts can be trusted.
// Safe for concurrent use.
type Guard struct {
	Root   string // "/proc" by default
	Logger *slog.Logger

	mu       sync.Mutex
	procs    map[uint32]*process
	held     map[worker][]heldSpan // calls with a provisional handoff context
	verdicts map[worker]verdict    // verdicts that came before their span
}

// HandoffBit marks a context id handed to a worker, awaiting its verdict
// (bpf/socket/handoff.h).
const HandoffBit = 1 << 63

// HoldFor is how long a call waits for its handoff verdict; after that its
// provisional context is dropped.
const HoldFor = 3 * time.Second

type worker struct{ pid, tid uint32 }

type heldSpan struct {
	s     *span.Span
	since int64
}

type verdict struct {
	ctx       uint64
	confirmed bool
	at        int64
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
// from s whether its process runs requests across threads. It returns false
// when s waits for a handoff verdict: Verdict or Expire return it later.
func (g *Guard) Check(s *span.Span) bool {
	if s.SignalSource != span.SourceEBPF || s.PID == 0 {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.process(s.PID)
	if p.untrusted == "" && !g.checkHandoff(s) {
		return false
	}
	if p.untrusted == "" && s.TapSide == span.TapServerProcess && s.Flags.Has(span.FlagReqTIDMismatch) {
		p.untrusted = fmt.Sprintf("a server request moved between threads (tids %d, %d)", s.ReqTID, s.RespTID)
		g.log(s.PID, s.ProcessName, p.untrusted)
	}
	multiplexed := s.TapSide == span.TapServerProcess && s.Flags.Has(span.FlagMultiplexed)
	if p.untrusted != "" || multiplexed {
		s.SyscallTraceIDReq, s.SyscallTraceIDResp = 0, 0
	}
	return true
}

// checkHandoff holds a call that carries a provisional handoff context until
// its worker's verdict, or settles it with a verdict that came first.
func (g *Guard) checkHandoff(s *span.Span) bool {
	ctx := (s.SyscallTraceIDReq | s.SyscallTraceIDResp) &^ HandoffBit
	if (s.SyscallTraceIDReq|s.SyscallTraceIDResp)&HandoffBit == 0 {
		return true
	}
	w := worker{s.PID, s.RespTID}
	if s.RespTID == 0 {
		w.tid = s.ReqTID
	}
	if v, ok := g.verdicts[w]; ok && v.ctx == ctx {
		delete(g.verdicts, w)
		settle(s, ctx, v.confirmed)
		return true
	}
	if g.held == nil {
		g.held = map[worker][]heldSpan{}
	}
	g.held[w] = append(g.held[w], heldSpan{s, s.EndNs})
	return false
}

// settle keeps the handed-over context of a confirmed call and drops a
// refuted or unconfirmed one (both sides must carry exactly ctx).
func settle(s *span.Span, ctx uint64, confirmed bool) {
	ok := confirmed && s.SyscallTraceIDReq&^HandoffBit == ctx && s.SyscallTraceIDResp&^HandoffBit == ctx
	if ok {
		s.SyscallTraceIDReq, s.SyscallTraceIDResp = ctx, ctx
	} else {
		s.SyscallTraceIDReq, s.SyscallTraceIDResp = 0, 0
	}
}

// Verdict records a worker's verdict on the context handed to it and
// returns the calls it settles.
func (g *Guard) Verdict(pid, tid uint32, ctx uint64, confirmed bool, nowNs int64) []*span.Span {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := worker{pid, tid}
	if g.process(pid).untrusted != "" {
		confirmed = false
	}
	var out []*span.Span
	keep := g.held[w][:0]
	for _, h := range g.held[w] {
		if (h.s.SyscallTraceIDReq|h.s.SyscallTraceIDResp)&^HandoffBit == ctx {
			settle(h.s, ctx, confirmed)
			out = append(out, h.s)
		} else {
			keep = append(keep, h)
		}
	}
	if len(keep) == 0 {
		delete(g.held, w)
	} else {
		g.held[w] = keep
	}
	if len(out) == 0 {
		if g.verdicts == nil {
			g.verdicts = map[worker]verdict{}
		}
		g.verdicts[w] = verdict{ctx, confirmed, nowNs}
	}
	return out
}

// Expire returns the held calls whose verdict did not come within HoldFor,
// with their provisional context dropped, and forgets old verdicts.
func (g *Guard) Expire(nowNs int64) []*span.Span {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*span.Span
	for w, hs := range g.held {
		keep := hs[:0]
		for _, h := range hs {
			if nowNs-h.since > int64(HoldFor) {
				settle(h.s, 0, false)
				out = append(out, h.s)
			} else {
				keep = append(keep, h)
			}
		}
		if len(keep) == 0 {
			delete(g.held, w)
		} else {
			g.held[w] = keep
		}
	}
	for w, v := range g.verdicts {
		if nowNs-v.at > int64(HoldFor) {
			delete(g.verdicts, w)
		}
	}
	return out
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
