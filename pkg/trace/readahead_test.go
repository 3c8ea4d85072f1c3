package trace

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// keptAliveMeshHop: three sequential exchanges, 1 ms apart, on one
// mutual-TLS connection between two nginx sidecars (OpenSSL read_ahead on),
// as the mtls demo's stored spans show them: per exchange the client
// sidecar's plaintext span, the flight at the server node's NIC, and the
// server sidecar's plaintext span. Writers' numbers are exact; a reader's
// read began before the record it decrypted by reqBehind / respBehind bytes
// (the client's Finished, 80 bytes, before the first request; two session
// tickets, 799 bytes, before the first response; a 24-byte key update
// before the third). Each exchange carries its sidecar's X-Request-ID.
func keptAliveMeshHop(base int64) []span.Span {
	const ms = int64(1e6)
	cli, srv := netip.MustParseAddr("10.1.1.5"), netip.MustParseAddr("10.1.2.7")
	reqBehind := [3]uint32{80, 0, 37}
	respBehind := [3]uint32{799, 0, 24}
	var out []span.Span
	req, resp := uint32(0xffffff00), uint32(7_000) // the request numbers wrap past 2^32
	for k := range 3 {
		start := base + int64(k)*ms
		mk := func(side span.TapSide, node string, src span.SignalSource, off int64) span.Span {
			s := span.Span{SpanID: uint64(100 + 10*k + len(out)%3), Node: node, TapSide: side, SignalSource: src, L4: span.L4TCP, IPVersion: 4,
				ClientIP: cli, ClientPort: 40001, ServerIP: srv, ServerPort: 9080, StartNs: start + off, EndNs: start + 900_000 - off,
				L7Protocol: span.L7HTTP1, RequestType: "GET", RequestResource: "/details/0", Endpoint: "/details/{id}", ResponseCode: 200}
			return s
		}
		c := mk(span.TapClientProcess, "n1", span.SourceEBPF, 0)
		c.PID, c.Flags = 40, span.FlagProxy|span.FlagTLS|span.FlagTLSOpenSSL
		c.ReqTCPSeq, c.RespTCPSeq = req, resp-respBehind[k]
		c.XRequestIDReq, c.XRequestIDResp = fmt.Sprintf("rid-%d", k), fmt.Sprintf("rid-%d", k)
		out = append(out, c)
		f := mk(span.TapServerNode, "n2", span.SourcePacket, 100_000)
		f.CaptureNIC, f.Flags = "eth0", span.FlagTLS
		f.L7Protocol, f.RequestType, f.RequestResource, f.Endpoint, f.ResponseCode = 0, "", "", "", 0
		f.ReqTCPSeq, f.RequestBytes, f.RespTCPSeq, f.ResponseBytes = req, 300, resp-respBehind[k], int64(respBehind[k])+500
		out = append(out, f)
		s := mk(span.TapServerProcess, "n2", span.SourceEBPF, 200_000)
		s.PID, s.Flags = 41, span.FlagProxy|span.FlagTLS|span.FlagTLSOpenSSL
		s.ReqTCPSeq, s.RespTCPSeq = req-reqBehind[k], resp
		s.XRequestIDReq, s.XRequestIDResp = c.XRequestIDReq, c.XRequestIDResp
		out = append(out, s)
		req, resp = req+300, resp+500
	}
	return out
}

// TestReadAheadJoinsItsExchange: from any span of any exchange, the trace
// is that exchange's three spans chained by tap side, the server sidecar's
// under the flight (not a root of its own), and no span of the others.
func TestReadAheadJoinsItsExchange(t *testing.T) {
	const base = int64(1_800_000_000_000_000_000)
	hop := keptAliveMeshHop(base)
	want := `c-p@n1 GET /details/{id} <- root
s-nd@n2 GET /details/{id} <- c-p@n1 (tcp)
s-p@n2 GET /details/{id} <- s-nd@n2 (tcp)
`
	for i, seed := range hop {
		tr := assembleFrom(t, hop, seed)
		if got := describe(tr); got != want {
			t.Errorf("exchange %d from %s:\n%s\nwant\n%s", i/3, seed.TapSide.String(), got, want)
		}
		for _, s := range tr.Spans {
			if !strings.HasPrefix(fmt.Sprint(s.SpanID), fmt.Sprint(10+i/3)) {
				t.Errorf("exchange %d from %s: span %d of another exchange", i/3, seed.TapSide.String(), s.SpanID)
			}
		}
	}
}

// TestReadAheadRelation: which pairs of plaintext spans read-ahead relates.
func TestReadAheadRelation(t *testing.T) {
	const base = int64(1_800_000_000_000_000_000)
	h := keptAliveMeshHop(base)
	c0, s0, c1, s1, c2, s2 := &h[0], &h[2], &h[3], &h[5], &h[6], &h[8]
	mux := *s0
	mux.Flags |= span.FlagMultiplexed
	other := *s0
	other.ClientPort = 40002
	plain := *s0 // a syscall span (no TLS library): numbers are exact
	plain.Flags = span.FlagProxy
	ahead := *s1 // the reader's number after the writer's: not read-ahead
	ahead.ReqTCPSeq = c1.ReqTCPSeq + 5
	noResp := *s0
	noResp.RespTCPSeq = 0
	for _, tc := range []struct {
		name string
		a, b *span.Span
		want bool
	}{
		{"first exchange: Finished and tickets read ahead", c0, s0, true},
		{"second exchange: equal numbers", c1, s1, true},
		{"third exchange", c2, s2, true},
		{"server of the first, client of the second", c1, s0, false},
		{"server of the second, client of the first", c0, s1, false},
		{"server of the first, client of the third", c2, s0, false},
		{"server of the third, client of the second", c1, s2, false},
		{"multiplexed connection", c0, &mux, false},
		{"another connection", c0, &other, false},
		{"not a TLS library's span", c0, &plain, false},
		{"reader's number after the writer's", c1, &ahead, false},
		{"no response number", c0, &noResp, false},
		{"two client spans", c0, c1, false},
	} {
		if got := readAhead(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if got := readAhead(tc.b, tc.a); got != tc.want {
			t.Errorf("%s (swapped): %v, want %v", tc.name, got, tc.want)
		}
	}
}
