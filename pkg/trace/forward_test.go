package trace

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Forwarded requests of an opaque proxy (docs/assembly.md "Forwarding
// threads"): the collector gives a sidecar's inbound L4 request and the
// plaintext call it caused one context id (the read that completed the
// request, then the connect of the call, on one thread: collector/ebpf
// forward.go). Assembly's syscall relation links them, whatever else the
// proxy had in flight. The calls carry the X-Request-ID a sidecar forwards;
// nothing encrypted carries it.
func TestForwardedOpaqueRequests(t *testing.T) {
	const base = int64(1_700_000_000_000_000_000) // settled long ago
	const ms = int64(1e6)
	// Two requests through the same sidecars at once (concurrency: the
	// server sidecar holds both inbound L4 requests while each call runs).
	two := func(ctx1, ctx2 uint64) []span.Span {
		h := opaqueHop(base, 100, 5000, 40001)
		o := opaqueHop(base+2*ms, 200, 900000, 40002)
		h[1].SyscallTraceIDReq, h[2].SyscallTraceIDReq = ctx1, ctx1
		o[1].SyscallTraceIDReq, o[2].SyscallTraceIDReq = ctx2, ctx2
		h[2].XRequestIDReq, h[3].XRequestIDReq = "r1", "r1"
		o[2].XRequestIDReq, o[3].XRequestIDReq = "r2", "r2"
		return append(h, o...)
	}
	whole := `c-p@n1  <- root
s-p@n2  <- c-p@n1 (tcp)
c-p@n2 GET /reviews/{id} <- s-p@n2 (syscall)
s-p@n2 GET /reviews/{id} <- c-p@n2 (tcp)
`
	t.Run("the forwarded context links each call under its own inbound request", func(t *testing.T) {
		sp := two(11, 22)
		for i, seed := range sp {
			tr := assembleFrom(t, sp, seed)
			if got := describe(tr); got != whole {
				t.Errorf("from span %d (%s@%s):\n%s\nwant\n%s", i, seed.TapSide, seed.Node, got, whole)
			}
			own := map[uint64]bool{}
			for _, s := range sp[i/4*4 : i/4*4+4] {
				own[s.SpanID] = true
			}
			for _, s := range tr.Spans {
				if !own[s.SpanID] {
					t.Errorf("from span %d: span %d of the other request", i, s.SpanID)
				}
			}
		}
	})
	t.Run("without it two requests in flight stay separate roots", func(t *testing.T) {
		sp := two(0, 0)
		for _, tc := range []struct {
			seed int
			want string
		}{
			{0, "c-p@n1  <- root\ns-p@n2  <- c-p@n1 (tcp)\n"},
			{2, "c-p@n2 GET /reviews/{id} <- root\ns-p@n2 GET /reviews/{id} <- c-p@n2 (tcp)\n"},
			{7, "c-p@n2 GET /reviews/{id} <- root\ns-p@n2 GET /reviews/{id} <- c-p@n2 (tcp)\n"},
		} {
			if got := describe(assembleFrom(t, sp, sp[tc.seed])); got != tc.want {
				t.Errorf("from span %d:\n%s\nwant\n%s", tc.seed, got, tc.want)
			}
		}
	})
	t.Run("a context shared with the other request's inbound flight only: refused by time", func(t *testing.T) {
		// The call of the first request carrying the second's context (a
		// capture that noted the wrong read) is not inside that request.
		sp := two(11, 22)
		sp[2].SyscallTraceIDReq = 22
		sp[2].StartNs, sp[2].EndNs = base+ms, base+25*ms // starts before the second inbound request
		got := describe(assembleFrom(t, sp, sp[2]))
		want := "c-p@n2 GET /reviews/{id} <- root\ns-p@n2 GET /reviews/{id} <- c-p@n2 (tcp)\n"
		if got != want {
			t.Errorf("from the call:\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("an X-Request-ID that links the call upward keeps precedence", func(t *testing.T) {
		// The proxy's plaintext inbound request carried the call's id: the
		// id's link is stronger than the forwarded context's.
		sp := two(11, 22)
		in := sp[3]
		in.SpanID, in.PID, in.Flags, in.XRequestIDReq = 300, 50, span.FlagProxy, "r1"
		in.ClientPort, in.ServerPort, in.ReqTCPSeq, in.RespTCPSeq = 51000, 15001, 777, 888
		in.StartNs, in.EndNs = base-ms, base+40*ms
		sp = append(sp, in)
		tr := assembleFrom(t, sp, sp[2])
		for i := range tr.Spans {
			if tr.Spans[i].SpanID != sp[2].SpanID {
				continue
			}
			p := tr.Parents[i]
			if p < 0 || tr.Spans[p].SpanID != 300 || tr.Evidence[i] != EvidenceXRequestID {
				t.Errorf("the call's parent: %d, want 300 by x-request-id:\n%s", p, describe(tr))
			}
		}
	})
}
