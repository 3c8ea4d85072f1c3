package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// L4 flights (docs/assembly.md "L4 flights"). An L4 span is an eBPF span of
// a TLS connection whose plaintext is not read (collector/l4flight): the
// tls flag, no library, no L7 protocol; req_tcp_seq/request_bytes and
// resp_tcp_seq/response_bytes are the request and response flights as its
// side's syscalls moved them. The two sides of one exchange need not start
// their flights at the same byte: the client writes its Finished and the
// request as one flight, a server may read the Finished, write its session
// tickets and read the request apart (its request flight then starts at the
// request), and a packet flight's application part leaves the handshake's
// records out. The request's last byte is the same at every point: the
// next request comes only after the response. So an L4 span and another L4
// span or a packet TLS flight are the same exchange when they name the
// same connection, their request ranges end at the same byte and their
// response ranges overlap. Equal first numbers alone are no evidence (a
// Finished and the tickets after it would pass).

// l4Flight: an eBPF span of a TLS connection whose plaintext is not read.
func l4Flight(s *span.Span) bool {
	return s.SignalSource == span.SourceEBPF && s.Flags.Has(span.FlagTLS) && s.Flags&span.FlagsTLSLibrary == 0 &&
		s.L7Protocol == span.L7Unknown
}

// sameL4: a and b, one of them an L4 span, carried the same exchange.
func sameL4(a, b *span.Span) bool {
	if !(l4Flight(a) || tlsFlight(a)) || !(l4Flight(b) || tlsFlight(b)) || !sameConnection(a, b) {
		return false
	}
	if a.RequestBytes <= 0 || b.RequestBytes <= 0 || a.ReqTCPSeq+uint32(a.RequestBytes) != b.ReqTCPSeq+uint32(b.RequestBytes) {
		return false
	}
	if a.RespTCPSeq == 0 || b.RespTCPSeq == 0 {
		return false
	}
	return inRange(a.RespTCPSeq, b.RespTCPSeq, b.ResponseBytes) || inRange(b.RespTCPSeq, a.RespTCPSeq, a.ResponseBytes)
}

// unionL4 joins the network sets of an L4 span and the spans whose
// exchange it carried with other numbers (equal numbers were grouped
// already, and relate only by sameL4 too).
func (l *linker) unionL4() {
	for i := range l.spans {
		if !l4Flight(l.spans[i]) {
			continue
		}
		for j := range l.spans {
			if i != j && l.spans[i].ReqTCPSeq != l.spans[j].ReqTCPSeq && tcpRelated(l.cfg, l.spans[i], l.spans[j]) {
				l.set[l.find(i)] = l.find(j)
			}
		}
	}
}

// otherLeg reports whether server request s of a proxy is on the other leg
// than its call c, one of them an L4 span: a mesh sidecar whose TLS is not
// read decrypts on one side and forwards in plaintext on the other, so an
// encrypted call forwards a plaintext request (its application's call) and
// a plaintext call an encrypted one (the pod's inbound request).
// Containment takes it when several requests are in flight and exactly one
// is on the other leg (and none forwards the call's resource).
func otherLeg(c, s *span.Span) bool {
	return c.Flags.Has(span.FlagProxy) && s.Flags.Has(span.FlagProxy) && l4Flight(c) != l4Flight(s)
}
