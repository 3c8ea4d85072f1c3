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

	"github.com/zerotrace/zerotrace/collector/tasks"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Guard tracks, per process, whether its thread contexts can be trusted.
// Safe for concurrent use.
type Guard struct {
	Root   string // "/proc" by default
	Logger *slog.Logger

	mu       sync.Mutex
	procs    map[uint32]*process
	held     map[uint32][]heldSpan // per pid: calls with a provisional handoff context
	verdicts map[uint32][]verdict  // per pid: verdicts that came before their span
	tasks    tasks.Tree            // asyncio tasks (guard_tasks.go)
}

// HandoffBit marks a context id handed to a worker, awaiting its verdict
// (bpf/socket/handoff.h).
const HandoffBit = 1 << 63

// HoldFor is how long a call waits for its worker's verdict after it ended;
// after that its provisional context is dropped. A worker hands a call's
// result back right after reading its response (milliseconds, more when it
// waits for Python's GIL): a second covers that, and bounds what the
// collector holds (every call of a pool worker waits here).
const HoldFor = time.Second

// ClaimWait is how long a claimed call waits for a second claim before it
// is linked to the one request that claimed it.
const ClaimWait = 500 * time.Millisecond

// Kind is a worker's verdict on a call (bpf/socket/handoff.h VERDICT_*).
type Kind uint8

const (
	// Refuted: the worker handed its call's result to another request than
	// the one that handed it the context.
	Refuted Kind = 0
	// Confirmed: the worker handed the result to the request that handed it
	// the context.
	Confirmed Kind = 1
	// Claimed: the worker handed the result of a call no handoff covered to
	// a request that was waiting for it since before the response began.
	Claimed Kind = 2
	// Item: the worker made the call for a work item it took from a queue,
	// put there by the owner's thread (bpf/socket/pyqueue.h). It comes when
	// the call begins, before its span, and settles the call like Confirmed.
	Item Kind = 3
	// Task: an asyncio task made the call (owner: the task's id,
	// bpf/socket/asyncio.h). It comes when the call begins; the call waits
	// until the tasks decide which request it belongs to (guard_tasks.go).
	Task Kind = 4
)

// ItemFor is how long an Item verdict waits for its call's span (the call
// must end first: a slow downstream takes seconds).
const ItemFor = 15 * time.Second

type heldSpan struct {
	s     *span.Span
	since int64
	owner uint64 // the request that claimed it (0: none yet)
	at    int64  // when it was first claimed
	torn  bool   // claimed by two requests: linked to neither
	task  uint64 // the asyncio task that made it (0: none; guard_tasks.go)
}

type verdict struct {
	tid   uint32 // the worker thread
	ctx   uint64 // the call's token
	kind  Kind
	owner uint64 // context of the request the worker woke
	at    int64
}

type process struct {
	untrusted string // why its thread contexts are not used ("" = trusted)
	goprog    bool   // a Go program
	tracked   bool   // its goroutines are tracked: ids with GoroutineBit are trusted
	ended     bool   // it ended or exec'd (Ended): the pid's next process starts afresh (Began)
}

// GoroutineBit marks a context id kept by a goroutine (bpf/socket/goroutine.h).
const GoroutineBit = 1 << 62

// TurnBit marks, in a process that is not Go's, a context id a Node.js
// event loop's turn gave a call (bpf/socket/ids.h NODE_BIT).
const TurnBit = 1 << 62

// worker reports whether thread tid, which gave a verdict, may be the
// worker of call s: a thread that moved its request or response, or in a
// Go program whose goroutines are tracked any thread. There a goroutine,
// not a thread, made the call and gives its verdict, and the scheduler moves
// it between threads at any point in between (Go's HTTP Transport: a write
// goroutine whose TLS write returned on one thread reported the write from
// another); the call's token is its own all the same.
func (p *process) worker(tid uint32, s *span.Span) bool {
	return tid == s.ReqTID || tid == s.RespTID || p.goprog && p.tracked && p.untrusted == ""
}

// IsGoProcess reports whether pid runs a Go program (looked up once).
func (g *Guard) IsGoProcess(pid uint32) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.process(pid).goprog
}

// TrackGoroutines says pid's goroutines are tracked from now on: its ids
// that a goroutine kept are trusted, the others (from before) are not.
func (g *Guard) TrackGoroutines(pid uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.process(pid)
	p.tracked = true
	p.untrusted = ""
}

// NoGoroutines records why pid's goroutines cannot be tracked.
func (g *Guard) NoGoroutines(pid uint32, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.process(pid)
	p.untrusted = "Go runtime without goroutine tracking: " + why
	g.log(pid, "", p.untrusted)
}

// Ended says pid's process ended or exec'd another program. Its spans still
// open are judged as before; the pid's next first event (Began) starts anew.
func (g *Guard) Ended(pid uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.procs[pid]; ok {
		p.ended = true
	}
}

// Began says a process's first event came for pid: what was known of an
// ended process that had the pid is dropped, and looked up again for this
// one (whether it runs Go).
func (g *Guard) Began(pid uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.procs[pid]; ok && p.ended {
		delete(g.procs, pid)
		g.tasks.Forget(pid)
	}
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
	if p.goprog {
		// Goroutine contexts: kept only when both sides were a goroutine's
		// (a message before tracking began was a thread's).
		both := (s.SyscallTraceIDReq == 0 || s.SyscallTraceIDReq&GoroutineBit != 0) &&
			(s.SyscallTraceIDResp == 0 || s.SyscallTraceIDResp&GoroutineBit != 0)
		if !p.tracked || !both {
			s.SyscallTraceIDReq, s.SyscallTraceIDResp = 0, 0
		}
		s.SyscallTraceIDReq &^= GoroutineBit
		s.SyscallTraceIDResp &^= GoroutineBit
	} else if (s.SyscallTraceIDReq|s.SyscallTraceIDResp)&TurnBit != 0 {
		// A Node.js event loop's turn gave the context (bpf/socket/nodeasync.h).
		s.SyscallTraceIDReq &^= TurnBit
		s.SyscallTraceIDResp &^= TurnBit
		s.Flags |= span.FlagCallback
	}
	if s.TapSide == span.TapServerProcess && !s.Flags.Has(span.FlagMultiplexed) {
		g.tasks.Served(s.PID, s.SyscallTraceIDReq, s.StartNs)
	}
	if p.untrusted == "" && !g.checkHandoff(s) {
		return false
	}
	if p.untrusted == "" && !p.goprog && s.TapSide == span.TapServerProcess && s.Flags.Has(span.FlagReqTIDMismatch) {
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
	ctx, ok := provisional(s)
	if !ok {
		return true
	}
	h := heldSpan{s: s, since: s.EndNs}
	settled := false
	p := g.process(s.PID)
	filter(g.verdicts, s.PID, func(v *verdict) bool {
		if settled || v.ctx != ctx || !p.worker(v.tid, s) {
			return true
		}
		settled = h.apply(*v)
		return false
	})
	if !settled && h.task != 0 {
		settled = g.decide(&h)
	}
	if settled {
		return true
	}
	if g.held == nil {
		g.held = map[uint32][]heldSpan{}
	}
	g.held[s.PID] = append(g.held[s.PID], h)
	return false
}

// apply applies verdict v to the held call and reports whether that
// settled it.
func (h *heldSpan) apply(v verdict) bool {
	switch {
	case v.kind == Task:
		h.task = v.owner
		return false
	case v.kind == Confirmed || v.kind == Item:
		settle(h.s, v.ctx, v.owner)
		return true
	case v.kind != Claimed:
		settle(h.s, v.ctx, 0)
		return true
	case h.owner == 0:
		h.owner, h.at = v.owner, v.at
	case h.owner != v.owner:
		h.torn = true
	}
	return false
}

// MayHold reports whether Check may keep s to return it later (a call
// that carries a provisional handoff context): a caller that reuses its
// span's memory hands Check a copy of such a span.
func MayHold(s *span.Span) bool { _, ok := provisional(s); return ok }

// provisional returns the handed-over context a call carries on either side.
func provisional(s *span.Span) (uint64, bool) {
	for _, id := range [2]uint64{s.SyscallTraceIDReq, s.SyscallTraceIDResp} {
		if id&HandoffBit != 0 {
			return id &^ HandoffBit, true
		}
	}
	return 0, false
}

// settle replaces the provisional context ctx on the sides that carried it
// with owner (0 drops it); a side carrying anything else drops both.
func settle(s *span.Span, ctx, owner uint64) { settleAs(s, ctx, owner, span.FlagHandoff) }

// settleAs is settle marking a kept owner with the evidence flag.
func settleAs(s *span.Span, ctx, owner uint64, flag span.Flags) {
	req, resp := s.SyscallTraceIDReq, s.SyscallTraceIDResp
	fit := func(id uint64) bool { return id == 0 || id == ctx|HandoffBit }
	if owner == 0 || !fit(req) || !fit(resp) {
		s.SyscallTraceIDReq, s.SyscallTraceIDResp = 0, 0
		return
	}
	if req != 0 {
		s.SyscallTraceIDReq = owner
	}
	if resp != 0 {
		s.SyscallTraceIDResp = owner
	}
	s.Flags |= flag
}

// Verdict records worker thread tid's verdict on its call ctx (the call's
// token, unique per call): owner is the context of the request it handed
// the result to. It returns the calls the verdict settles.
func (g *Guard) Verdict(pid, tid uint32, ctx uint64, kind Kind, owner uint64, nowNs int64) []*span.Span {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.process(pid).untrusted != "" {
		kind = Refuted
	}
	v := verdict{tid, ctx, kind, owner, nowNs}
	var out []*span.Span
	matched := false
	p := g.process(pid)
	filter(g.held, pid, func(h *heldSpan) bool {
		if c, _ := provisional(h.s); c != ctx || !p.worker(tid, h.s) {
			return true
		}
		matched = true
		if h.apply(v) || (h.task != 0 && g.decide(h)) {
			out = append(out, h.s)
			return false
		}
		return true
	})
	if !matched {
		if g.verdicts == nil {
			g.verdicts = map[uint32][]verdict{}
		}
		g.verdicts[pid] = append(g.verdicts[pid], v)
	}
	return out
}

// Expire returns the held calls that are settled by time: a call claimed by
// one request ClaimWait ago is linked to it; a call claimed by two, or with
// no verdict within HoldFor, loses its provisional context. It forgets old
// verdicts.
func (g *Guard) Expire(nowNs int64) []*span.Span {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*span.Span
	for pid := range g.held {
		filter(g.held, pid, func(h *heldSpan) bool {
			ctx, _ := provisional(h.s)
			switch {
			case h.task != 0:
				if !g.decide(h) && nowNs-h.since <= int64(TaskFor) {
					return true
				}
				if h.task != 0 { // undecided in time
					settle(h.s, ctx, 0)
				}
			case h.torn:
				settle(h.s, ctx, 0)
			case h.owner != 0 && nowNs-h.at >= int64(ClaimWait):
				settle(h.s, ctx, h.owner)
			case nowNs-h.since > int64(HoldFor):
				settle(h.s, ctx, 0)
			default:
				return true
			}
			out = append(out, h.s)
			return false
		})
	}
	for pid := range g.verdicts {
		filter(g.verdicts, pid, func(v *verdict) bool {
			return nowNs-v.at <= int64(HoldFor) || (v.kind == Item || v.kind == Task) && nowNs-v.at <= int64(ItemFor)
		})
	}
	g.tasks.Expire(nowNs)
	return out
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
		p.goprog = true
		p.untrusted = "Go runtime: goroutines move between threads (goroutine tracking not attached yet)"
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

// filter keeps the elements of m[k] for which keep is true, deleting k when
// none is left.
func filter[T any](m map[uint32][]T, k uint32, keep func(*T) bool) {
	xs := m[k]
	kept := xs[:0]
	for i := range xs {
		if keep(&xs[i]) { // keep may change the element it keeps
			kept = append(kept, xs[i])
		}
	}
	if len(kept) == 0 {
		delete(m, k)
	} else {
		m[k] = kept
	}
}
