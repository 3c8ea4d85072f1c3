package l4flight

import (
	"time"

	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TLS record content types (the first byte of a record header).
const (
	recCCS       = 0x14
	recAlert     = 0x15
	recHandshake = 0x16
	recAppData   = 0x17
)

// Starts reports whether b, the first bytes a connection moved, open a TLS
// handshake: a handshake record header (content type 22, version 3.x).
func Starts(b []byte) bool {
	return len(b) >= 3 && b[0] == recHandshake && b[1] == 3 && b[2] <= 4
}

// Peek reports whether a connection's first read, n bytes of which b was
// captured, is a look at a TLS handshake's first bytes (nginx peeks at one
// byte to tell TLS from plain HTTP): the next read takes them again.
func Peek(b []byte, n int) bool {
	return n < 3 && len(b) == n && n > 0 && b[0] == recHandshake && (n < 2 || b[1] == 3)
}

// Config tunes a Flow.
type Config struct {
	// Idle ends a response flight without a byte for this long (default
	// 1 s, as the packet capture's flights).
	Idle time.Duration
	IDs  *span.IDGenerator
}

// flight is the bytes one side sent until the other side sent some.
type flight struct {
	seq            uint32 // of its first byte
	bytes          int64
	startNs, endNs int64
	tid            uint32
	sys            uint64 // the first non-zero context id of its chunks
	kind           byte   // the first chunk's first byte: a record's content type (0: not captured)
	chunks         int
	// After a first chunk that opens with a change cipher spec (a TLS 1.3
	// peer's Finished, moved apart from the request that follows it): the
	// second chunk's number and time, and the first chunk's bytes.
	appSeq     uint32
	appStartNs int64
	headBytes  int64
}

func (f *flight) add(ch *session.Chunk) {
	if f.chunks == 0 {
		*f = flight{seq: ch.TCPSeq, startNs: ch.StartNs, tid: ch.TID}
		if len(ch.Data) > 0 {
			f.kind = ch.Data[0]
		}
	}
	f.chunks++
	if f.chunks == 2 && f.kind == recCCS {
		f.appSeq, f.appStartNs, f.headBytes = ch.TCPSeq, ch.StartNs, f.bytes
	}
	f.bytes += int64(ch.Len)
	f.endNs = ch.EndNs
	if f.sys == 0 {
		f.sys = ch.SyscallTraceID
	}
}

// Flow is one TLS connection's exchanges. Not safe for concurrent use.
type Flow struct {
	meta      session.ConnMeta
	cfg       Config
	emit      func(*span.Span)
	client    int // 1: the observed endpoint is the client; 2: the server; 0: not known yet
	req, resp flight
	held      *exchange // a server's exchange after a change cipher spec, not emitted yet
	fwd       uint64    // a client's first exchange's context id (Forward)
	last      int64     // the latest chunk's end (Last)
	out       span.Span // the span handed to emit (reused)
	// Spans counts the spans emitted; Handshakes the exchanges that were
	// the handshake's (no span).
	Spans, Handshakes int
}

// NewFlow follows the connection of meta; emit receives each span (the
// flow's own, reused after the call: emit copies what it keeps).
func NewFlow(meta session.ConnMeta, cfg Config, emit func(*span.Span)) *Flow {
	if cfg.Idle <= 0 {
		cfg.Idle = time.Second
	}
	if cfg.IDs == nil {
		cfg.IDs = span.NewIDGenerator(meta.Node, time.Now())
	}
	return &Flow{meta: meta, cfg: cfg, emit: emit}
}

// SetRole fixes the observed endpoint's role (from connect or accept).
func (f *Flow) SetRole(r session.Role) {
	switch r {
	case session.RoleClient:
		f.client = 1
	case session.RoleServer:
		f.client = 2
	}
}

// Cause gives the request of the exchange under way at a server — its
// request flight read, its response maybe begun (a TLS 1.3 server writes
// its session tickets after reading the client's Finished and, with it,
// the request) — the context id id unless it has one, and returns the
// request's id; 0 when the flow is not a server's or no request is under
// way. The proxy's call that this request caused takes the same id
// (collector/ebpf forward.go), so the two are one request's.
func (f *Flow) Cause(id uint64) uint64 {
	if f.client != 2 || f.req.chunks == 0 {
		return 0
	}
	if f.req.sys == 0 {
		f.req.sys = id
	}
	return f.req.sys
}

// Forward gives a client's first exchange (the first span it emits) the
// context id id, when its own chunks carry none: the connection was opened
// for the request of that context (collector/ebpf forward.go).
func (f *Flow) Forward(id uint64) {
	if f.Spans == 0 {
		f.fwd = id
	}
}

// Last is when the connection last moved bytes (0: never).
func (f *Flow) Last() int64 { return f.last }

// Feed consumes one chunk of the connection (a syscall's metadata and its
// first bytes).
func (f *Flow) Feed(ch session.Chunk) {
	if ch.Len <= 0 {
		return
	}
	f.last = max(f.last, ch.EndNs)
	if f.client == 0 {
		// The first bytes are the ClientHello's: their sender is the client.
		f.client = 1 + int(ch.Dir)
	}
	if alert(ch.Data, ch.Len) {
		return // a close_notify: no message, no change of direction
	}
	reqDir := session.Dir(f.client - 1)
	if ch.Dir == reqDir {
		if f.resp.chunks > 0 {
			f.end()
		}
		f.req.add(&ch)
		return
	}
	if f.req.chunks == 0 {
		return // a flight no request asked for (session tickets while the client waits)
	}
	f.resp.add(&ch)
}

// alert: a chunk that is one whole alert record — TLS 1.2's content type
// 21, or TLS 1.3's 24-byte application-data record (2 bytes of alert, the
// inner content type, a 16-byte tag) — that a side writes as it closes.
func alert(b []byte, n int) bool {
	if len(b) < 5 || b[1] != 3 {
		return false
	}
	l := int(b[3])<<8 | int(b[4])
	return n == 5+l && (b[0] == recAlert || (b[0] == recAppData && l == 19))
}

// end ends the current exchange: emitted unless it is the handshake's, has
// no response, or is held (a server's first exchange after a TLS 1.3
// client's Finished, held until the connection shows what it was).
func (f *Flow) end() {
	req, resp := f.req, f.resp
	f.req, f.resp = flight{}, flight{}
	if req.chunks == 0 || resp.chunks == 0 {
		return
	}
	if handshake(req.kind, resp.kind) {
		f.Handshakes++
		return
	}
	if f.held != nil {
		// The server's exchange after a change-cipher-spec flight was
		// followed by another: it may have been the client's Finished and
		// the session tickets the server wrote after reading it (the
		// request then came apart), which carry no message. Which, the
		// syscalls cannot tell (TLS 1.2's abbreviated handshake looks the
		// same): it makes no span.
		f.held = nil
		f.Handshakes++
	}
	if f.client == 2 && req.kind == recCCS {
		h := exchange{req, resp}
		f.held = &h
		return
	}
	f.send(req, resp)
}

// exchange is a request flight and its response flight.
type exchange struct{ req, resp flight }

// send emits the span of an exchange. A request flight whose first chunk
// opened with a change cipher spec and that went on in later chunks is the
// Finished (with a client's certificate) and then the request: the span's
// request range is the chunks after it, as the packet capture's flight of
// it leaves the handshake's records out, so that the hop's spans share the
// request's number (docs/assembly.md "L4 flights").
func (f *Flow) send(req, resp flight) {
	if req.kind == recCCS && req.chunks > 1 {
		req.seq, req.startNs, req.bytes = req.appSeq, req.appStartNs, req.bytes-req.headBytes
	}
	f.Spans++
	m := f.meta
	s := &f.out
	*s = span.Span{
		SpanID: f.cfg.IDs.Next(), Node: m.Node, SignalSource: m.Source, NetNS: m.NetNS, SocketID: m.SocketID,
		PID: m.PID, ProcessName: m.ProcessName, Comm: m.Comm, Cmdline: m.Cmdline, ContainerID: m.ContainerID,
		Namespace: m.Namespace, Pod: m.Pod, Service: m.Service, L4: m.L4,
		StartNs: req.startNs, EndNs: max(resp.endNs, req.endNs),
		ReqTID: req.tid, RespTID: resp.tid, ReqTCPSeq: req.seq, RespTCPSeq: resp.seq,
		SyscallTraceIDReq: req.sys, SyscallTraceIDResp: resp.sys,
		RequestBytes: req.bytes, ResponseBytes: resp.bytes,
		ResponseStatus: span.StatusUnknown, Flags: span.FlagTLS,
	}
	if f.fwd != 0 {
		if f.client == 1 && s.SyscallTraceIDReq == 0 {
			s.SyscallTraceIDReq = f.fwd
		}
		f.fwd = 0
	}
	if req.tid != 0 && resp.tid != 0 && req.tid != resp.tid {
		s.Flags |= span.FlagReqTIDMismatch
	}
	if m.LocalIP.Is4() || m.RemoteIP.Is4() {
		s.IPVersion = 4
	} else if m.LocalIP.IsValid() {
		s.IPVersion = 6
	}
	if f.client == 2 {
		s.TapSide = span.TapServerProcess
		s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort = m.RemoteIP, m.RemotePort, m.LocalIP, m.LocalPort
	} else {
		s.TapSide = span.TapClientProcess
		s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort = m.LocalIP, m.LocalPort, m.RemoteIP, m.RemotePort
	}
	f.emit(s)
}

// handshake: an exchange that carries no application message — a request
// flight that opens with a handshake record (ClientHello, TLS 1.2's key
// exchange) or an alert (close_notify), a response flight that opens with
// a handshake record (ServerHello) or a change cipher spec (TLS 1.2's
// Finished) or an alert.
func handshake(req, resp byte) bool {
	return req == recHandshake || req == recAlert || resp == recHandshake || resp == recCCS || resp == recAlert
}

// Tick ends a response flight idle for Config.Idle.
func (f *Flow) Tick(nowNs int64) {
	if f.resp.chunks > 0 && nowNs-f.resp.endNs > int64(f.cfg.Idle) {
		f.end()
	}
}

// Close ends the connection: an exchange with its response is emitted (a
// held one too: it was the connection's only one after the handshake).
func (f *Flow) Close() {
	f.end()
	if h := f.held; h != nil {
		f.held = nil
		f.send(h.req, h.resp)
	}
}
