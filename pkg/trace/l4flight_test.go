package trace

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// l4Hop is a mesh hop whose sidecars' TLS is not read (docs/mesh.md
// "Without plaintext"), with the sequence numbers TestCaptureTLSOpaque
// (collector/ebpf) recorded on a TLS 1.3 connection between two excluded
// nginx: the client sidecar wrote its Finished (80 bytes) and the request
// (154) as one flight and read the two session tickets (542), the
// response and the server's close_notify as the other; the server read the
// Finished apart, wrote the tickets and then read the request, so its L4
// span's flights start later. Around it the plaintext legs: the client
// sidecar's inbound request (s-p, context 0x11 on its thread) and the
// server sidecar's call to its application (c-p, context 0x22 of its
// inbound request), and the TLS flights at both nodes' NICs (the packet
// capture's application part: the request without the Finished, the
// response from the first ticket). off shifts every number (another
// exchange); ctx false leaves the L4 spans without context ids (an
// event-loop proxy holding several requests).
func l4Hop(base int64, id uint64, off uint32, cport uint16, ctx bool) []span.Span {
	const ms = int64(1e6)
	cli, srv := netip.MustParseAddr("10.1.1.5"), netip.MustParseAddr("10.1.2.7")
	lo := netip.MustParseAddr("127.0.0.1")
	reqS, respT := 2168277614+off, 330279113+off
	mk := func(side span.TapSide, node, nic string, src span.SignalSource, start, end int64) span.Span {
		s := span.Span{SpanID: id, Node: node, TapSide: side, CaptureNIC: nic, SignalSource: src, L4: span.L4TCP, IPVersion: 4,
			ClientIP: cli, ClientPort: cport, ServerIP: srv, ServerPort: 9080, StartNs: base + start, EndNs: base + end,
			Flags: span.FlagTLS}
		id++
		return s
	}
	plain := func(side span.TapSide, node string, pid uint32, sys uint64, start, end int64, port uint16) span.Span {
		s := span.Span{SpanID: id, Node: node, TapSide: side, SignalSource: span.SourceEBPF, L4: span.L4TCP, IPVersion: 4,
			ClientIP: lo, ClientPort: port, ServerIP: lo, ServerPort: 15001, StartNs: base + start, EndNs: base + end,
			PID: pid, L7Protocol: span.L7HTTP1, RequestType: "GET", RequestResource: "/reviews/7", Endpoint: "/reviews/{id}",
			ResponseCode: 200, ResponseStatus: span.StatusOK, Flags: span.FlagProxy,
			SyscallTraceIDReq: sys, SyscallTraceIDResp: sys, ReqTCPSeq: 5000 + uint32(id), RespTCPSeq: 9000 + uint32(id)}
		id++
		return s
	}
	inbound := plain(span.TapServerProcess, "n1", 40, 0x11+uint64(off), 0, 30*ms, cport+1000)
	cp := mk(span.TapClientProcess, "n1", "", span.SourceEBPF, 1*ms, 28*ms)
	cp.PID, cp.ReqTCPSeq, cp.RequestBytes, cp.RespTCPSeq, cp.ResponseBytes = 40, reqS, 234, respT, 766
	c := mk(span.TapClientNIC, "n1", "veth1", span.SourcePacket, 2*ms, 27*ms)
	c.ReqTCPSeq, c.RequestBytes, c.RespTCPSeq, c.ResponseBytes = reqS+80, 154, respT, 742
	snd := mk(span.TapServerNode, "n2", "eth0", span.SourcePacket, 3*ms, 26*ms)
	snd.ReqTCPSeq, snd.RequestBytes, snd.RespTCPSeq, snd.ResponseBytes = reqS+80, 154, respT, 742
	sp := mk(span.TapServerProcess, "n2", "", span.SourceEBPF, 4*ms, 25*ms)
	sp.PID, sp.ReqTCPSeq, sp.RequestBytes, sp.RespTCPSeq, sp.ResponseBytes = 50, reqS+80, 154, respT+542, 200
	call := plain(span.TapClientProcess, "n2", 50, 0x22+uint64(off), 5*ms, 24*ms, cport+2000)
	if !ctx {
		call.SyscallTraceIDReq, call.SyscallTraceIDResp = 0, 0 // its thread held no request: the L4 inbound opens none
	}
	if ctx {
		cp.SyscallTraceIDReq, cp.SyscallTraceIDResp = inbound.SyscallTraceIDReq, inbound.SyscallTraceIDReq
		sp.SyscallTraceIDReq, sp.SyscallTraceIDResp = call.SyscallTraceIDReq, call.SyscallTraceIDReq
	}
	return []span.Span{inbound, cp, c, snd, sp, call}
}

// TestL4FlightsJoinTheHop: from each of the hop's six spans the trace is
// the hop: the client sidecar's L4 call under its plaintext request (the
// only one in flight: containment; L4 spans carry no context id), chained
// with the packet flights and the server's L4 span by the request's end
// (the first numbers differ), the server sidecar's call under its L4 span
// (containment). Fails without the L4 relation (the chain breaks at the
// server's L4 span).
func TestL4FlightsJoinTheHop(t *testing.T) {
	const base = int64(1_700_000_000_000_000_000) // settled long ago (containment)
	hop := l4Hop(base, 100, 0, 40001, false)
	want := `s-p@n1 GET /reviews/{id} <- root
c-p@n1  <- s-p@n1 (containment)
c@n1  <- c-p@n1 (tcp)
s-nd@n2  <- c@n1 (tcp)
s-p@n2  <- s-nd@n2 (tcp)
c-p@n2 GET /reviews/{id} <- s-p@n2 (containment)
`
	for _, seed := range hop {
		tr := assembleFrom(t, hop, seed)
		if got := describe(tr); got != want {
			t.Errorf("from %s@%s:\n%s\nwant:\n%s", seed.TapSide, seed.Node, got, want)
		}
	}
}

// TestL4FlightsRefuse: an exchange of the same connection whose first
// numbers are the hop's but whose request ends elsewhere (a Finished and
// the session tickets after it) joins nothing; nor does the hop's server
// span with another connection's ports.
func TestL4FlightsRefuse(t *testing.T) {
	const base = int64(1_700_000_000_000_000_000) // settled long ago (containment)
	hop := l4Hop(base, 100, 0, 40001, true)
	fin := hop[4]
	fin.SpanID, fin.ReqTCPSeq, fin.RequestBytes, fin.RespTCPSeq, fin.ResponseBytes = 300, hop[1].ReqTCPSeq, 80, hop[1].RespTCPSeq, 542
	fin.SyscallTraceIDReq, fin.SyscallTraceIDResp = 0x99, 0x99
	other := hop[4]
	other.SpanID, other.ClientPort = 301, 40999
	other.SyscallTraceIDReq, other.SyscallTraceIDResp = 0x98, 0x98
	spans := append(hop[:5:5], fin, other)
	tr := assembleFrom(t, spans, hop[1])
	for _, s := range tr.Spans {
		if s.SpanID == 300 || s.SpanID == 301 {
			t.Errorf("span %d joined the hop:\n%s", s.SpanID, describe(tr))
		}
	}
	if sameL4(&hop[1], &fin) || sameL4(&fin, &hop[1]) || sameL4(&hop[2], &other) {
		t.Error("sameL4 took equal first numbers, or another connection, for evidence")
	}
}

// TestL4FlightsAmbiguous: two requests in the client sidecar at once (an
// event loop: its calls carry no context id) and, inside both, the L4 call
// of one of them: the encrypted hop stays a separate root, the plaintext
// requests' traces hold no L4 span. Containment would take a call inside
// exactly one request; here the call lies inside both.
func TestL4FlightsAmbiguous(t *testing.T) {
	const base = int64(1_700_000_000_000_000_000) // settled long ago (containment)
	a := l4Hop(base, 100, 0, 40001, false)
	b := l4Hop(base+int64(2e6), 200, 50000, 40002, false)
	b[0].StartNs = base // b's inbound request spans a's call too
	spans := append(append([]span.Span{}, a...), b...)
	for _, seed := range []span.Span{a[0], b[0]} {
		tr := assembleFrom(t, spans, seed)
		for _, s := range tr.Spans {
			if l4Flight(&s) {
				t.Errorf("from %d: an L4 span joined an ambiguous request:\n%s", seed.SpanID, describe(tr))
				break
			}
		}
	}
	tr := assembleFrom(t, spans, a[1])
	if got := describe(tr); !strings.HasPrefix(got, "c-p@n1  <- root\n") {
		t.Errorf("from a's L4 call:\n%s\nwant it a root", got)
	}
}

// TestL4FlightsOtherLeg: a sidecar that serves its pod both ways (the
// productpage sidecar of the mesh demo): while the pod's inbound request
// (encrypted: an L4 span) is in flight, its plaintext call to the
// application and the application's own call through it (plaintext
// inbound, an encrypted L4 call out) overlap. The plaintext call goes
// under the one encrypted request, the L4 call under the one plaintext
// request; with a second encrypted request in flight the plaintext call
// stays a root. Fails without the other-leg rule (containment sees two or
// three requests in flight).
func TestL4FlightsOtherLeg(t *testing.T) {
	const base = int64(1_700_000_000_000_000_000)
	const ms = int64(1e6)
	pod, lo := netip.MustParseAddr("10.1.1.5"), netip.MustParseAddr("127.0.0.1")
	id := uint64(500)
	mk := func(side span.TapSide, l4 bool, cport uint16, from, to int64, seq uint32) span.Span {
		s := span.Span{SpanID: id, Node: "n1", TapSide: side, SignalSource: span.SourceEBPF, PID: 40, L4: span.L4TCP, IPVersion: 4,
			ClientIP: lo, ClientPort: cport, ServerIP: lo, ServerPort: 15001, StartNs: base + from*ms, EndNs: base + to*ms,
			Flags: span.FlagProxy, ReqTCPSeq: seq, RespTCPSeq: seq + 7000}
		id++
		if l4 {
			s.Flags |= span.FlagTLS
			s.ClientIP, s.ServerIP, s.ServerPort, s.RequestBytes, s.ResponseBytes = pod, pod, 9080, 200, 300
		} else {
			s.L7Protocol, s.RequestType, s.RequestResource, s.ResponseCode = span.L7HTTP1, "GET", "/productpage", 200
		}
		return s
	}
	inbound := mk(span.TapServerProcess, true, 41000, 0, 40, 1000)
	toApp := mk(span.TapClientProcess, false, 41001, 2, 38, 2000)
	fromApp := mk(span.TapServerProcess, false, 41002, 5, 20, 3000)
	fromApp.RequestResource = "/details/0"
	out := mk(span.TapClientProcess, true, 41003, 6, 19, 4000)
	spans := []span.Span{inbound, toApp, fromApp, out}
	parent := func(tr *Trace, id uint64) string {
		for i, s := range tr.Spans {
			if s.SpanID == id {
				if tr.Parents[i] < 0 {
					return "root"
				}
				return string(tr.Evidence[i]) + fmt.Sprint(tr.Spans[tr.Parents[i]].SpanID)
			}
		}
		return "absent"
	}
	tr := assembleFrom(t, spans, inbound)
	if got := parent(tr, toApp.SpanID); got != fmt.Sprint(EvidenceProxy, inbound.SpanID) {
		t.Errorf("the call to the application: parent %s, want the encrypted inbound request:\n%s", got, describe(tr))
	}
	tr = assembleFrom(t, spans, fromApp)
	if got := parent(tr, out.SpanID); got != fmt.Sprint(EvidenceProxy, fromApp.SpanID) {
		t.Errorf("the encrypted call: parent %s, want the application's request:\n%s", got, describe(tr))
	}
	second := mk(span.TapServerProcess, true, 41004, 1, 39, 5000)
	tr = assembleFrom(t, append(spans, second), toApp)
	if got := parent(tr, toApp.SpanID); got != "root" {
		t.Errorf("two encrypted requests in flight: the call's parent %s, want none:\n%s", got, describe(tr))
	}
}
