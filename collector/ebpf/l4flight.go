//go:build linux

package ebpf

import (
	"slices"
	"time"

	"github.com/zerotrace/zerotrace/collector/l4flight"
	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// L4 spans of TLS connections whose plaintext is not read
// (bpf/socket/opaque.h, collector/l4flight, docs/mesh.md): a connection
// whose first bytes open a TLS handshake is followed by a flow, fed its
// syscalls' metadata, until a TLS library's plaintext of it comes (the
// plaintext spans then stand for it and the flow is dropped). Called with
// c.mu held.
//
// A flow's spans wait flowHold before they go out: a connection's first
// exchange can end before its plaintext's first event arrives (a client
// whose handshake came before its thread's first TLS call: OpenSSL's
// SSL_write plaintext goes out at its return, after the write(2) that
// ended the flow's Finished/session-ticket exchange). A connection whose
// plaintext comes within flowHold makes no L4 span at all.

// flowHold is how long a flow's span waits for its connection's plaintext.
const flowHold = int64(time.Second)

// heldL4 is a flow's span waiting out flowHold.
type heldL4 struct {
	k  connKey
	at int64 // wall clock when the flow made it
	s  span.Span
}

// flowFeed hands a syscall of conn to its flow, starting one at a
// connection's first bytes when they open a TLS handshake; it reports
// whether the syscall was the flow's (no session sees it).
func (c *Capture) flowFeed(k connKey, conn *session.Conn, e *Event, now int64) bool {
	if e.Dir != DirEgress && e.Dir != DirIngress {
		return false
	}
	f := c.flows[k]
	if f == nil {
		if conn.TLS() != 0 || conn.Idle() != 0 || e.L4 != 6 || !c.tlsUnread(e.Comm) {
			return false
		}
		if l4flight.Peek(e.Data, int(e.Len)) {
			return true // a server peeking at the first byte (nginx): the read after it has the bytes
		}
		if !l4flight.Starts(e.Data) {
			return false
		}
		f = l4flight.NewFlow(c.connMeta(e, false), l4flight.Config{IDs: c.ids}, func(s *span.Span) {
			c.held = append(c.held, heldL4{k: k, at: time.Now().UnixNano(), s: *s})
		})
		c.flows[k] = f
		c.forwardFlow(k, f.Forward)
	}
	dir := session.Egress
	if e.Dir == DirIngress {
		dir = session.Ingress
	}
	f.Feed(session.Chunk{Dir: dir, StartNs: now, EndNs: now, TCPSeq: e.TCPSeq, Data: e.Data, Len: int(e.Len),
		TID: e.TID, SyscallTraceID: e.SyscallTraceID})
	return true
}

// tlsUnread reports whether the TLS of process comm is not read by
// configuration (tls.enabled false, tls.exclude_processes): only such a
// process's connections make L4 spans. A process whose library is read can
// leave a socket opaque in the kernel (a handshake before its thread's first
// read call) and its plaintext then comes later than flowHold: CI saw a
// redis-cli L4 span beside its plaintext pairs. A library without probes
// (Envoy's BoringSSL) is excluded by name to get L4 spans (docs/mesh.md).
func (c *Capture) tlsUnread(comm string) bool {
	return c.opt.TLSDisabled || slices.Contains(c.opt.TLSExclude, comm)
}

// flowClose ends k's flow, emitting its last exchange.
func (c *Capture) flowClose(k connKey) {
	if f := c.flows[k]; f != nil {
		f.Close()
		delete(c.flows, k)
	}
}

// flowDrop forgets k's flow and its held spans: its plaintext is read.
func (c *Capture) flowDrop(k connKey) {
	delete(c.flows, k)
	c.held = slices.DeleteFunc(c.held, func(h heldL4) bool { return h.k == k })
}

// flowRelease sends the held spans made before the cut (wall clock).
func (c *Capture) flowRelease(cut int64) {
	n := 0
	for _, h := range c.held {
		if h.at > cut {
			break // held in the order they were made
		}
		c.guarded(&h.s)
		n++
	}
	c.held = c.held[:copy(c.held, c.held[n:])]
}

// flowTick ends the response flights idle for the flows' idle time.
func (c *Capture) flowTick(now int64) {
	for _, f := range c.flows {
		f.Tick(now)
	}
	c.flowRelease(now - flowHold)
}
