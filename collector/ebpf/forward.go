//go:build linux

package ebpf

import (
	"time"

	"github.com/zerotrace/zerotrace/collector/causality"
	"github.com/zerotrace/zerotrace/collector/session"
)

// Forwarded requests of an opaque proxy (docs/mesh.md "Without plaintext",
// docs/assembly.md "Forwarding threads"). A proxy that holds many requests
// on one thread (nginx, Envoy) leaves no request context on its calls, and
// the L4 side of a proxy whose TLS is not read has none at all. But such a
// proxy opens the upstream connection of a request while it handles the
// read that completed it: the thread reads request A's last bytes on
// socket A and, with no event of another socket in between, connect(2)s
// socket B (a TLS 1.3 server's session tickets, written on A after a read
// that took the client's Finished and the request, may come between). Then
// B's first request is A's forwarded, and both get one context id: A's
// request keeps its own (a plaintext server request's kernel id) or, an L4
// flight, takes a fresh one (l4flight.Flow.Cause); B's first request takes
// it (l4flight.Flow.Forward, or the chunks of a plaintext call's first
// request and response). Assembly's syscall relation then links them.
//
// Only where one of the two is an L4 flow (the other connections of a
// proxy keep the kernel's contexts), within forwardGap, never when an
// event of another socket of the thread (a write, a read, a close, an
// accept) came between: a proxy that connects after closing a failed
// upstream (a retry) has closed something first; and never when the
// thread went back to its event loop after the read (epoll_wait, poll or
// select: the first socket event after it carries EventWaited,
// bpf/socket/wait.h): a proxy that connects when a timer fires (a delayed
// request X, shortly after reading another request A) waited first, while
// the read that completes a request and its upstream connect are one turn
// of the loop.

// forwardGap is the longest a read may precede the connect it caused.
const forwardGap = int64(10 * time.Millisecond)

type threadKey struct{ pid, tid uint32 }

// lastRead is a thread's last socket event, a read.
type lastRead struct {
	k   connKey
	ctx uint64 // the read's context id (a server request's own)
	at  int64
}

// forwardCtx is the context id a connection's first request takes.
type forwardCtx struct {
	ctx      uint64
	l4       bool // the request it forwards is an L4 flow's
	answered bool // the response has begun
	at       int64
}

// flagBits are the context id bits the BPF programs use as flags (a
// handed-off call's token; a goroutine's or a Node.js turn's id).
const flagBits = uint64(causality.HandoffBit | causality.GoroutineBit | causality.TurnBit)

// forwardNote follows a thread's socket events (before admission: a shed
// event still moved bytes) and notes a connect that a read caused; only in
// processes whose TLS is not read (the only ones with L4 flows), so the
// capture's other events cost tlsUnread's check.
func (c *Capture) forwardNote(k connKey, e *Event, now int64) {
	if !c.tlsUnread(e.Comm) {
		return
	}
	tk := threadKey{e.PID, e.TID}
	if e.Flags&EventWaited != 0 {
		// Back to the event loop since the last read: what follows is
		// another turn's (a read with it is a new one, below).
		delete(c.reads, tk)
	}
	switch e.Dir {
	case DirIngress:
		switch r, ok := c.reads[tk]; {
		case e.Len > 0 && e.L4 == 6:
			c.reads[tk] = lastRead{k: k, ctx: e.SyscallTraceID, at: now}
		case e.Len == 0 && ok && r.k == k:
			// nothing more to read on the same socket (a read that would block)
		default:
			delete(c.reads, tk)
		}
	case DirConnected:
		r, ok := c.reads[tk]
		delete(c.reads, tk)
		delete(c.fwd, k)
		if ok && now-r.at <= forwardGap && r.k.pid == k.pid {
			c.forwardFrom(r, k, now)
		}
	case DirEgress:
		if r, ok := c.reads[tk]; ok && r.k != k {
			delete(c.reads, tk)
		}
	case DirClose, DirAccepted:
		delete(c.reads, tk)
		if e.Dir == DirClose {
			delete(c.fwd, k)
		}
	}
}

// forwardFrom gives connection b's first request the context of the
// request read on r.k, a server's.
func (c *Capture) forwardFrom(r lastRead, b connKey, now int64) {
	if f := c.flows[r.k]; f != nil {
		id := c.ids.Next() &^ flagBits
		if id == 0 {
			id = 1
		}
		if ctx := f.Cause(id); ctx != 0 && ctx&flagBits == 0 {
			c.fwd[b] = forwardCtx{ctx: ctx, l4: true, at: now}
		}
		return
	}
	if a := c.conns[r.k]; a != nil && a.Role() == session.RoleServer && a.TLS() == 0 && r.ctx != 0 && r.ctx&flagBits == 0 {
		c.fwd[b] = forwardCtx{ctx: r.ctx, at: now}
	}
}

// forwardFlow hands a new flow of k the context its connect noted.
func (c *Capture) forwardFlow(k connKey, start func(uint64)) {
	if p, ok := c.fwd[k]; ok {
		start(p.ctx)
		delete(c.fwd, k)
	}
}

// forwardChunk returns the context id a plaintext chunk of k carries: the
// noted one for its first request and response, when the request forwarded
// is an L4 flow's. The kernel's own context for them is not evidence then:
// a thread's "holds exactly one request" does not see L4 requests (a
// sidecar thread whose only plaintext request is another one, or a hold
// left by the L4 connection's handshake, before its socket was found
// opaque, gave such calls a context of no request of theirs).
func (c *Capture) forwardChunk(k connKey, e *Event) uint64 {
	if len(c.fwd) == 0 {
		return e.SyscallTraceID
	}
	p, ok := c.fwd[k]
	if !ok {
		return e.SyscallTraceID
	}
	if e.TLS != 0 || !p.l4 || (e.Dir == DirEgress && p.answered) {
		delete(c.fwd, k)
		return e.SyscallTraceID
	}
	if e.Dir == DirIngress && !p.answered {
		p.answered = true
		c.fwd[k] = p
	}
	return p.ctx
}

// forwardTick forgets reads and notes older than any use of them.
func (c *Capture) forwardTick(now int64) {
	for tk, r := range c.reads {
		if now-r.at > forwardGap {
			delete(c.reads, tk)
		}
	}
	for k, p := range c.fwd {
		if now-p.at > int64(3*c.opt.Timeout) {
			delete(c.fwd, k)
		}
	}
}
