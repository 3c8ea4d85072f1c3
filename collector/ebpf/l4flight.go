//go:build linux

package ebpf

import (
	"slices"

	"github.com/zerotrace/zerotrace/collector/l4flight"
	"github.com/zerotrace/zerotrace/collector/session"
)

// L4 spans of TLS connections whose plaintext is not read
// (bpf/socket/opaque.h, collector/l4flight, docs/mesh.md): a connection
// whose first bytes open a TLS handshake is followed by a flow, fed its
// syscalls' metadata, until a TLS library's plaintext of it comes (the
// plaintext spans then stand for it and the flow is dropped). Called with
// c.mu held.
//
// Only processes whose TLS is not read by configuration make flows
// (tlsUnread): their plaintext never comes, so a flow's spans go out as it
// makes them, with no wait for a plaintext that could stand for them.

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
		f = l4flight.NewFlow(c.connMeta(e, false), l4flight.Config{IDs: c.ids}, c.guarded)
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
// read call), and its plaintext then comes after ciphertext that looked
// like an exchange, as late as the process pleases: CI saw L4 spans beside
// the plaintext pairs of Python, curl and redis-cli connections (a
// one-second hold of the spans, removed, caught only the early ones). A
// library without probes (Envoy's BoringSSL) is excluded by name to get L4
// spans (docs/mesh.md). It is asked on every event (forwardNote): with TLS
// read and no process excluded, the default, it answers from a field and an
// empty list without looking at comm.
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

// flowDrop forgets k's flow: its plaintext is read (a thread whose name is
// not excluded made a TLS call of it).
func (c *Capture) flowDrop(k connKey) {
	delete(c.flows, k)
}

// flowTick ends the response flights idle for the flows' idle time.
func (c *Capture) flowTick(now int64) {
	for _, f := range c.flows {
		f.Tick(now)
	}
}
