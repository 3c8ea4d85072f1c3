package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// The relations between two spans that put them in one trace
// (docs/assembly.md): the same request message seen at two points (tcp),
// a call made inside a server request (syscall), and the keys of
// exchange.go (X-Request-ID, trace id).

type relation int

const (
	relNone relation = iota
	relTCP
	relSyscall
	relXRequestID
	relTraceID
)

// tcpRelated: the same request message seen at two points.
func tcpRelated(cfg *Config, a, b *span.Span) bool {
	if !sameMessage(a, b) { // tlsflight.go: equal numbers, or inside a TLS flight
		return false
	}
	skew := cfg.SameNodeSkew
	if a.Node != b.Node {
		skew = cfg.CrossNodeSkew
	}
	// The point nearer the client sees the request first: the other may see
	// it up to the skew earlier and the queueing delay later.
	first, second := a, b
	if b.TapSide.Rank() < a.TapSide.Rank() {
		first, second = b, a
	}
	d := second.StartNs - first.StartNs
	late := int64(skew + cfg.QueueDelay)
	if sameConnection(a, b) {
		// One connection's byte: a receiver busy with other requests (a
		// worker pool smaller than the load) reads it as late as a request
		// may wait, never another message's.
		late = int64(skew + max(cfg.QueueDelay, cfg.Settle))
	}
	early := int64(skew)
	if first.TapSide.Rank() == second.TapSide.Rank() {
		early = late
	}
	if d > late || d < -early {
		return false
	}
	if a.L7Protocol != 0 && b.L7Protocol != 0 && a.L7Protocol != b.L7Protocol {
		return false
	}
	if a.RequestType != "" && b.RequestType != "" && a.RequestType != b.RequestType {
		return false
	}
	if a.RequestResource != "" && b.RequestResource != "" && a.RequestResource != b.RequestResource {
		return false
	}
	if a.ResponseCode != 0 && b.ResponseCode != 0 && a.ResponseCode != b.ResponseCode {
		return false
	}
	if a.TapSide == b.TapSide && a.Node == b.Node && a.CaptureNIC == b.CaptureNIC {
		return false // one observation point sees a message once
	}
	return true
}

// sameConnection: both spans name one TCP connection (client and server
// address and port, as each point saw them). A sequence number repeats on a
// connection only after 4 GiB, and across connections that reuse the ports
// only by chance of the initial sequence number.
func sameConnection(a, b *span.Span) bool {
	return a.ClientPort != 0 && a.ServerPort != 0 && a.ClientPort == b.ClientPort && a.ServerPort == b.ServerPort &&
		a.ClientIP.IsValid() && a.ClientIP.Unmap() == b.ClientIP.Unmap() && a.ServerIP.IsValid() && a.ServerIP.Unmap() == b.ServerIP.Unmap()
}

// syscallRelated: a server request and a call its process made inside it,
// sharing the request's context id (the calling thread held that request
// and only it) and no conflicting request id. Two calls sharing an id are
// siblings, found through their server request, never linked directly.
func syscallRelated(a, b *span.Span) bool {
	if a.TapSide == span.TapClientProcess {
		a, b = b, a
	}
	return a.TapSide == span.TapServerProcess && b.TapSide == span.TapClientProcess &&
		a.Node == b.Node && a.PID == b.PID && a.PID != 0 && shareSyscall(a, b) &&
		a.StartNs <= b.StartNs && b.EndNs <= a.EndNs && !xridConflict(a, b)
}

// orphan: a response seen without its request (its request frame was
// dropped, or capture began mid-exchange). Which request it answered is
// unknown, so it relates to nothing: a response id or thread context
// alone could place it under another request's span.
func orphan(s *span.Span) bool { return s.Flags.Has(span.FlagNoRequest) }

func shareSyscall(a, b *span.Span) bool {
	for _, x := range [2]uint64{a.SyscallTraceIDReq, a.SyscallTraceIDResp} {
		if x != 0 && (x == b.SyscallTraceIDReq || x == b.SyscallTraceIDResp) {
			return true
		}
	}
	return false
}

func hasXRID(s *span.Span) bool { return s.XRequestIDReq != "" || s.XRequestIDResp != "" }

// xridConflict: a client call that carries a request id (a proxy's
// outbound leg) cannot belong to a server span whose ids differ. Under
// concurrency an event-loop proxy shares syscall ids across requests; ids
// that differ do not lie. Equal ids are no evidence (a client or a gateway
// may reuse one: exchange.go), so the link still needs its own. A call
// without a request id (an application that does not forward headers) has
// no conflict.
func xridConflict(a, b *span.Span) bool {
	c := func(x, y *span.Span) bool {
		return x.TapSide == span.TapClientProcess && x.XRequestIDReq != "" && hasXRID(y) &&
			x.XRequestIDReq != y.XRequestIDReq && x.XRequestIDReq != y.XRequestIDResp
	}
	return c(a, b) || c(b, a)
}

func related(cfg *Config, a, b *span.Span) relation {
	switch {
	case orphan(a) || orphan(b):
		return relNone
	case tcpRelated(cfg, a, b):
		return relTCP
	case cfg.keys.link(span.KeyXRequestID, a, b):
		return relXRequestID
	case cfg.keys.sameTrace(a, b):
		return relTraceID
	case syscallRelated(a, b):
		return relSyscall
	}
	return relNone
}
