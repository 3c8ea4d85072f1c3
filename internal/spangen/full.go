package spangen

import (
	"net/netip"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// FullStart is the start of Full(0).
var FullStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Full is span i of a fixed set whose every field has a distinct non-zero
// value, starting at FullStart plus i µs: test data for codecs and stores
// that must carry every field.
func Full(i int) span.Span {
	tid, _ := span.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	return span.Span{
		SpanID: uint64(1000 + i), Node: "node-a", SignalSource: span.SourcePacket, TapSide: span.TapServerNode,
		CaptureNIC: "eth0", NetNS: 4026531840, StartNs: FullStart.UnixNano() + int64(i)*1000, EndNs: FullStart.UnixNano() + int64(i)*1000 + 5_000_000,
		PID: 4242, ReqTID: 4243, RespTID: 4244, ProcessName: "python3", Comm: "python3", Cmdline: "python3 app.py",
		ContainerID: "c0ffee", Pod: "productpage-v1", Namespace: "bookinfo", Service: "productpage", SocketID: 77,
		IPVersion: 6, ClientIP: netip.MustParseAddr("fd00::1"), ClientPort: 40001,
		ServerIP: netip.MustParseAddr("10.0.0.2"), ServerPort: 9080, L4: span.L4TCP, TunnelType: span.TunnelVXLAN,
		TunnelOuterSrc: netip.MustParseAddr("10.204.0.1"), TunnelOuterDst: netip.MustParseAddr("10.204.0.2"),
		L7Protocol: span.L7HTTP1, L7Version: "1.1", RequestType: "GET", RequestDomain: "reviews:9080",
		RequestResource: "/reviews/0?x=1", Endpoint: "GET /reviews/{id}", ResponseCode: 503,
		ResponseStatus: span.StatusServerError, ResponseException: "Service Unavailable", RequestBytes: 120, ResponseBytes: 4096,
		StreamID: 3, ReqTCPSeq: 111111, RespTCPSeq: 222222, SyscallTraceIDReq: 333, SyscallTraceIDResp: 444,
		XRequestIDReq: "req-abc", XRequestIDResp: "resp-def", TraceID: tid, ParentSpanID: 555, AppSpanID: 666,
		Flags: span.FlagTruncated | span.FlagReqTIDMismatch,
	}
}
