//go:build linux

package ebpf

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// recorder is an errorer that records failures instead of failing.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(f string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(f, a...))
}

// pair is a correct c-p / s-p pair for path as the capture should produce.
func pair(path string, reqSeq, respSeq uint32) (c, s span.Span) {
	c = span.Span{SpanID: 1, TapSide: span.TapClientProcess, StartNs: 1000, EndNs: 9_000_000, PID: 10,
		ClientIP: netip.MustParseAddr("10.201.1.1"), ClientPort: 40000,
		ServerIP: netip.MustParseAddr("10.201.1.2"), ServerPort: 8080,
		L7Protocol: span.L7HTTP1, RequestType: "GET", RequestResource: path, ResponseCode: 200,
		ReqTCPSeq: reqSeq, RespTCPSeq: respSeq}
	s = c
	s.SpanID, s.TapSide, s.StartNs, s.EndNs, s.PID = 2, span.TapServerProcess, 2_000_000, 8_000_000, 20
	return c, s
}

// TestSpanAssertions proves the runtime tests' assertions pass on correct
// spans and fail on each defect they are meant to catch.
func TestSpanAssertions(t *testing.T) {
	const p = "/m/k1"
	for _, tc := range []struct {
		name  string
		mut   func(c, s *span.Span) []span.Span
		fails bool
	}{
		{"correct", func(c, s *span.Span) []span.Span { return nil }, false},
		{"resp seq differs", func(c, s *span.Span) []span.Span { s.RespTCPSeq++; return nil }, true},
		{"req seq zero", func(c, s *span.Span) []span.Span { c.ReqTCPSeq, s.ReqTCPSeq = 0, 0; return nil }, true},
		{"wrong tap", func(c, s *span.Span) []span.Span { s.TapSide = span.TapClientProcess; return nil }, true},
		{"wrong status", func(c, s *span.Span) []span.Span { c.ResponseCode = 404; return nil }, true},
		{"wrong method", func(c, s *span.Span) []span.Span { s.RequestType = "POST"; return nil }, true},
		{"zero duration", func(c, s *span.Span) []span.Span { s.EndNs = s.StartNs; return nil }, true},
		{"server outside client", func(c, s *span.Span) []span.Span { s.EndNs = c.EndNs + 10_000_000; return nil }, true},
		{"port differs", func(c, s *span.Span) []span.Span { s.ClientPort++; return nil }, true},
		{"duplicate server span", func(c, s *span.Span) []span.Span { return []span.Span{*s} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := pair(p, 100, 200)
			extra := tc.mut(&c, &s)
			var r recorder
			checkPair(&r, append([]span.Span{c, s}, extra...), p, 200)
			if got := len(r.errs) > 0; got != tc.fails {
				t.Errorf("checkPair failed=%v, want %v: %v", got, tc.fails, r.errs)
			}
		})
	}

	// Linking: front s-p (veth) and downstream c-p (loopback) of one pid.
	link := func(frontID, downID uint64, downPID uint32) []span.Span {
		_, front := pair(p, 1, 2)
		front.SyscallTraceIDReq = frontID
		down, _ := pair(p, 3, 4)
		down.ServerIP, down.ClientIP = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")
		down.PID, down.SyscallTraceIDReq = downPID, downID
		return []span.Span{front, down}
	}
	for _, tc := range []struct {
		name  string
		spans []span.Span
		ok    bool
	}{
		{"linked", link(7, 7, 20), true},
		{"ids differ", link(7, 8, 20), false},
		{"ids zero", link(0, 0, 20), false},
		{"other process", link(7, 7, 21), false},
	} {
		var r recorder
		if got := checkLinked(&r, tc.spans, p) && len(r.errs) == 0; got != tc.ok {
			t.Errorf("checkLinked %s: ok=%v, want %v: %v", tc.name, got, tc.ok, r.errs)
		}
	}
}
