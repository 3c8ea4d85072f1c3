package arrowipc

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestMain limits the minimization of new interesting fuzz inputs to 100
// tries unless -fuzzminimizetime is given: with inputs of tens of KiB, Go's
// default of 60 s per input stalls `go test -fuzz FuzzDecodeBatch` at 0
// executions per second (docs/fuzzing.md).
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		flag.Set("test.fuzzminimizetime", "100x")
	}
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fullSpan has every field set to a distinct non-zero value.
func fullSpan(i int) span.Span {
	tid, _ := span.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	return span.Span{
		SpanID: uint64(1000 + i), Node: "node-a", SignalSource: span.SourcePacket, TapSide: span.TapServerNode,
		CaptureNIC: "eth0", NetNS: 4026531840, StartNs: t0.UnixNano() + int64(i)*1000, EndNs: t0.UnixNano() + int64(i)*1000 + 5_000_000,
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

func bookinfo(t testing.TB, n int) []span.Span {
	t.Helper()
	g := spangen.New(spangen.Config{Seed: 7, Start: t0, Interval: 20 * time.Millisecond})
	var out []span.Span
	for _, tr := range g.Next(n) {
		out = append(out, tr.Spans...)
	}
	return out
}

// TestWriteCorpus regenerates the committed seed corpus of FuzzDecodeBatch
// from real batches: ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite the testdata/fuzz/FuzzDecodeBatch seeds")
	}
	good := encodedBatch(t, append([]span.Span{fullSpan(0)}, bookinfo(t, 1)...))
	seeds := map[string][]byte{
		"seed-bookinfo":     good,
		"seed-truncated":    good[:len(good)*2/3],
		"seed-flipped-body": flip(good, len(good)-100),
		"seed-schema-only":  append(append([]byte(nil), schemaMessage...), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
