package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// TLS flights (docs/assembly.md "TLS flights"). A packet span of a TLS
// exchange (span.FlagTLS) covers a flight of records each way: req_tcp_seq
// and request_bytes, resp_tcp_seq and response_bytes give the sequence
// ranges of their application-data records. The span that wrote or read
// the same bytes (a plaintext span of a TLS library, or a ciphertext
// syscall span) carries the sequence number of its own first byte, which
// lies inside the flight: the same as the flight's start on a keep-alive
// connection, after it where the flight also carries handshake records
// (TLS 1.3 session tickets before the first response).

// tlsFlight: a packet span of a TLS exchange.
func tlsFlight(s *span.Span) bool {
	return s.Flags.Has(span.FlagTLS) && s.SignalSource == span.SourcePacket
}

// inRange: seq lies in [start, start+n) (sequence numbers wrap).
func inRange(seq, start uint32, n int64) bool {
	return n > 0 && int64(seq-start) < n
}

// sameMessage: a and b saw the same request (and response) message. Equal
// sequence numbers, as for every span; or, with a TLS flight, the other's
// numbers inside the flight's ranges, on the same connection unless one
// number is equal. A flight links no span of a connection that had another
// request in flight (HTTP/2 streams, pipelining: span.FlagMultiplexed):
// one flight may carry several of its messages, and which of them the
// flight is cannot be told.
func sameMessage(a, b *span.Span) bool {
	if a.ReqTCPSeq == 0 || b.ReqTCPSeq == 0 {
		return false
	}
	if l4Flight(a) || l4Flight(b) {
		return sameL4(a, b) // l4flight.go: the request's end, the response's range
	}
	ta, tb := tlsFlight(a), tlsFlight(b)
	if ta != tb && (a.Flags.Has(span.FlagMultiplexed) || b.Flags.Has(span.FlagMultiplexed)) {
		return false
	}
	reqEq := a.ReqTCPSeq == b.ReqTCPSeq
	respEq := a.RespTCPSeq == 0 || b.RespTCPSeq == 0 || a.RespTCPSeq == b.RespTCPSeq
	if reqEq && respEq {
		return true
	}
	if !ta && !tb && readAhead(a, b) { // readahead.go
		return true
	}
	if ta == tb {
		return false // two flights, or two plaintext spans: equal numbers only
	}
	f, o := a, b
	if tb {
		f, o = b, a
	}
	if !inRange(o.ReqTCPSeq, f.ReqTCPSeq, f.RequestBytes) {
		return false
	}
	if f.RespTCPSeq != 0 && o.RespTCPSeq != 0 && !inRange(o.RespTCPSeq, f.RespTCPSeq, f.ResponseBytes) {
		return false
	}
	return reqEq || (f.RespTCPSeq != 0 && f.RespTCPSeq == o.RespTCPSeq) || sameConnection(a, b)
}

// unionTLS joins each TLS flight to the network set of the spans whose
// message it carries by range (equal numbers joined already).
func (l *linker) unionTLS() {
	for i := range l.spans {
		if !tlsFlight(l.spans[i]) {
			continue
		}
		for j := range l.spans {
			if i != j && !tlsFlight(l.spans[j]) && l.spans[i].ReqTCPSeq != l.spans[j].ReqTCPSeq && tcpRelated(l.cfg, l.spans[i], l.spans[j]) {
				l.set[l.find(i)] = l.find(j)
			}
		}
	}
}

// nameTLS gives each TLS flight of a network set the L7 fields of the
// message it carries, from the set's span that read it in plaintext.
func (l *linker) nameTLS() {
	from := map[int]int{} // set -> the span with L7 fields
	for i := range l.spans {
		if s := l.spans[i]; s.L7Protocol != 0 && !tlsFlight(s) {
			if _, ok := from[l.find(i)]; !ok {
				from[l.find(i)] = i
			}
		}
	}
	for i := range l.spans {
		j, ok := from[l.find(i)]
		if !tlsFlight(l.spans[i]) || !ok || l.spans[i].L7Protocol != 0 {
			continue
		}
		// The linker's spans are the source's (Config.Refs, RefSource):
		// the trace gets a named copy, the source's span stays as it is.
		c := *l.spans[i]
		t, p := &c, l.spans[j]
		l.spans[i] = t
		t.L7Protocol, t.L7Version, t.RequestType, t.RequestDomain = p.L7Protocol, p.L7Version, p.RequestType, p.RequestDomain
		t.RequestResource, t.Endpoint, t.ResponseCode, t.ResponseStatus = p.RequestResource, p.Endpoint, p.ResponseCode, p.ResponseStatus
	}
}
