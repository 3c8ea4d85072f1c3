package trace

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Containment judges "exactly one server request in flight" only on server
// requests looked up over the call's time. A proxy (FlagProxy, no context
// ids, no X-Request-ID: the noxrid variant) forwards requests A and B to its
// application and the application's calls /d1 and /d2 out again. Seeded from
// A's /d1 forward, the proxy's server requests are first looked up around
// that call only; B's /d2 forward, found later inside A's /d2 request, must
// not be judged on that lookup (it lacks B's own /d2 request, so A's would
// be the only /d2 in flight): the lookup is widened, both /d2 requests are
// in flight, and neither /d2 forward is linked.
func TestContainmentLooksUpEveryRequestInFlight(t *testing.T) {
	mk := func(r, k int, tap span.TapSide, pid uint32, from, to int64, path string, seqK int, ctx uint64) span.Span {
		s := span.Span{SpanID: uint64(r*100 + k), Node: "n1", SignalSource: span.SourceEBPF, TapSide: tap, PID: pid,
			StartNs: ms(from), EndNs: ms(to), L7Protocol: span.L7HTTP1, RequestType: "GET", RequestResource: path,
			ReqTCPSeq: uint32(r*100+seqK) * 7919, RespTCPSeq: uint32(r*100+seqK)*7919 + 1, ResponseCode: 200,
			SyscallTraceIDReq: ctx, SyscallTraceIDResp: ctx}
		if pid == 20 {
			s.Flags = span.FlagProxy
		}
		return s
	}
	const proxy, app, d1, d2 = 20, 30, 41, 42
	req := func(r int, at int64, d2From, d2To int64) []span.Span {
		ctx := uint64(1000 + r)
		return []span.Span{
			mk(r, 1, span.TapServerProcess, proxy, at, at+1000, "/front", 1, 0),         // in
			mk(r, 2, span.TapClientProcess, proxy, at+10, at+990, "/front", 2, 0),       // forward to the app
			mk(r, 3, span.TapServerProcess, app, at+20, at+980, "/front", 2, ctx),       // the app
			mk(r, 4, span.TapClientProcess, app, at+100, at+200, "/d1", 4, ctx),         // its call /d1
			mk(r, 5, span.TapServerProcess, proxy, at+105, at+195, "/d1", 4, 0),         // through the proxy
			mk(r, 6, span.TapClientProcess, proxy, at+110, at+190, "/d1", 6, 0),         // forwarded
			mk(r, 7, span.TapServerProcess, d1, at+115, at+185, "/d1", 6, 0),            // served
			mk(r, 8, span.TapClientProcess, app, at+d2From-5, at+d2To+5, "/d2", 8, ctx), // its call /d2
			mk(r, 9, span.TapServerProcess, proxy, at+d2From, at+d2To, "/d2", 8, 0),
			mk(r, 10, span.TapClientProcess, proxy, at+d2From+5, at+d2To-5, "/d2", 10, 0),
			mk(r, 11, span.TapServerProcess, d2, at+d2From+10, at+d2To-10, "/d2", 10, 0),
		}
	}
	// B starts 150 ms after A; its /d2 lies inside A's /d2 and starts after
	// A's /d1 forward ended.
	spans := append(req(0, 0, 305, 595), req(1, 150, 305, 395)...)
	runXCases(t, []xcase{{
		name:   "seeded from A's /d1 forward",
		spans:  spans,
		seeds:  []uint64{6},
		want:   map[uint64]uint64{2: 0, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 3, 9: 8},
		reason: map[uint64]Evidence{6: EvidenceProxy},
	}})
}
