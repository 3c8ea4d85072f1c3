//go:build linux

package jaeger

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestRoundTrip: a span sent to the OTLP gRPC receiver reads back from the
// query API with its ids, parent and service; a trace never sent is
// ErrNotFound.
func TestRoundTrip(t *testing.T) {
	s := Start(t)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc-a")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	tid := pcommon.TraceID{0x7a, 0x74, 15: 1}
	now := time.Now()
	for i, parent := range []pcommon.SpanID{{}, {0, 0, 0, 0, 0, 0, 0, 1}} {
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{7: byte(i + 1)})
		sp.SetParentSpanID(parent)
		sp.SetName("GET /a")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	}
	conn, err := grpc.NewClient(s.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatal(err)
	}
	var got ptrace.Traces
	for ctx.Err() == nil {
		if got, err = s.Trace(ctx, tid.String(), false); err == nil && got.SpanCount() == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || got.SpanCount() != 2 {
		t.Fatalf("read back: %v (%d spans)", err, got.SpanCount())
	}
	sp := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	parents := map[pcommon.SpanID]pcommon.SpanID{}
	for i := 0; i < sp.Len(); i++ {
		parents[sp.At(i).SpanID()] = sp.At(i).ParentSpanID()
	}
	if parents[pcommon.SpanID{7: 2}] != (pcommon.SpanID{7: 1}) || !parents[pcommon.SpanID{7: 1}].IsEmpty() {
		t.Fatalf("parents %v", parents)
	}
	if svc, _ := got.ResourceSpans().At(0).Resource().Attributes().Get("service.name"); svc.Str() != "svc-a" {
		t.Fatalf("service %q", svc.Str())
	}
	if _, err := s.Trace(ctx, pcommon.TraceID{1}.String(), false); err != ErrNotFound {
		t.Fatalf("unknown trace: %v", err)
	}
}
