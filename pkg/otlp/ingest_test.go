package otlp

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// pb assembles protobuf by hand, so that the tests below state every byte
// an SDK sends (field number and wire type in each tag).
type pb []byte

func (b pb) tag(field, wire int) pb { return append(b, byte(field<<3|wire)) }
func (b pb) varint(v uint64) pb     { return binary.AppendUvarint(b, v) }
func (b pb) bytes(field int, v []byte) pb {
	return append(b.tag(field, 2).varint(uint64(len(v))), v...)
}
func (b pb) fixed64(field int, v uint64) pb {
	return binary.LittleEndian.AppendUint64(b.tag(field, 1), v)
}

var (
	tid    = []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid    = []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	parent = []byte{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
)

// kv is a KeyValue {1: key, 2: AnyValue {1: string_value | 3: int_value}}.
func kvStr(k, v string) []byte { return pb{}.bytes(1, []byte(k)).bytes(2, pb{}.bytes(1, []byte(v))) }
func kvInt(k string, v uint64) []byte {
	return pb{}.bytes(1, []byte(k)).bytes(2, pb{}.tag(3, 0).varint(v))
}

// rawSpan is a Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name,
// 6 kind, 7 start (fixed64), 8 end (fixed64), 9 attributes, 15 status
// {3: code}.
func rawSpan(trace, spanID, parentID []byte, kind uint64, start, end uint64, attrs ...[]byte) []byte {
	b := pb{}.bytes(1, trace).bytes(2, spanID)
	if parentID != nil {
		b = b.bytes(4, parentID)
	}
	b = b.bytes(5, []byte("GET /reviews/{id}")).tag(6, 0).varint(kind).fixed64(7, start).fixed64(8, end)
	for _, a := range attrs {
		b = b.bytes(9, a)
	}
	return b.bytes(15, pb{}.tag(3, 0).varint(1)) // status OK
}

// request is an ExportTraceServiceRequest {1: ResourceSpans {1: Resource
// {1: attributes}, 2: ScopeSpans {1: scope {1: name, 2: version}, 2: spans}}}.
func request(spans ...[]byte) []byte {
	res := pb{}.bytes(1, kvStr("service.name", "reviews")).bytes(1, kvStr("k8s.namespace.name", "bookinfo")).
		bytes(1, kvStr("k8s.pod.name", "reviews-v1")).bytes(1, kvStr("k8s.deployment.name", "reviews")).bytes(1, kvInt("process.pid", 4242))
	ss := pb{}.bytes(1, pb{}.bytes(1, []byte("otelhttp")).bytes(2, []byte("0.72.0")))
	for _, s := range spans {
		ss = ss.bytes(2, s)
	}
	return pb{}.bytes(1, pb{}.bytes(1, res).bytes(2, ss))
}

const start, end = 1775034000_000000000, 1775034000_002500000

func TestSpansAnnotated(t *testing.T) {
	server := rawSpan(tid, sid, parent, 2, start, end,
		kvStr("http.request.method", "GET"), kvStr("url.path", "/reviews/0"), kvInt("http.response.status_code", 200),
		kvStr("network.peer.address", "10.0.1.5"), kvInt("network.peer.port", 40312), kvStr("http.route", "/reviews/{id}"))
	cases := []struct {
		name     string
		body     []byte
		accepted int
		rejected string // a reason Result names
		decode   string // a decoding error
	}{
		{name: "server span", body: request(server), accepted: 1},
		{name: "no spans", body: request(), accepted: 0},
		{name: "empty request", body: nil, accepted: 0},
		{name: "zero span id beside a good span", body: request(server, rawSpan(tid, make([]byte, 8), nil, 1, start, end)),
			accepted: 1, rejected: "span id is missing or zero"},
		{name: "no trace id", body: request(rawSpan(nil, sid, nil, 1, start, end)), rejected: "trace id is missing or zero"},
		{name: "ends before it starts", body: request(rawSpan(tid, sid, nil, 1, end, start)), rejected: "ends before it starts"},
		{name: "no start", body: request(rawSpan(tid, sid, nil, 1, 0, end)), rejected: "start time is missing"},
		{name: "own parent", body: request(rawSpan(tid, sid, sid, 1, start, end)), rejected: "is its own parent"},
		{name: "unknown kind 9 is internal", body: request(rawSpan(tid, sid, nil, 9, start, end)), accepted: 1},
		{name: "trace id of 15 bytes", body: request(rawSpan(tid[:15], sid, nil, 1, start, end)), decode: "decoding OTLP protobuf"},
		{name: "truncated in the span", body: request(server)[:60], decode: "decoding OTLP protobuf"},
		{name: "length beyond the body", body: pb{}.tag(1, 2).varint(200), decode: "decoding OTLP protobuf"},
		{name: "wire type 7", body: pb{}.tag(1, 7), decode: "decoding OTLP protobuf"},
	}
	for _, c := range cases {
		td, err := Decode(c.body, false)
		if c.decode != "" {
			if err == nil || !strings.Contains(err.Error(), c.decode) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.decode)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		spans, res, err := Spans(nil, td, "node2", Limits{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if res.Accepted != c.accepted || len(spans) != c.accepted {
			t.Errorf("%s: %d accepted (%d spans), want %d; %s", c.name, res.Accepted, len(spans), c.accepted, res.Message())
		}
		if (c.rejected == "") != (res.Rejected == 0) || !strings.Contains(res.Message(), c.rejected) {
			t.Errorf("%s: rejected %d: %q, want %q", c.name, res.Rejected, res.Message(), c.rejected)
		}
	}

	// The server span's fields.
	td, _ := Decode(request(server), false)
	spans, _, _ := Spans(nil, td, "node2", Limits{})
	s := spans[0]
	want := span.Span{SpanID: 0x00f067aa0ba902b7, AppSpanID: 0x00f067aa0ba902b7, ParentSpanID: 0x53995c3f42cd8ad8,
		TraceID: span.TraceID(tid), Node: "node2", SignalSource: span.SourceOTel, TapSide: span.TapServerApp, Kind: span.KindServer,
		StartNs: start, EndNs: end, Service: "reviews", Namespace: "bookinfo", Pod: "reviews-v1", Workload: "reviews",
		WorkloadKind: "Deployment", PID: 4242, Name: "GET /reviews/{id}", Scope: "otelhttp@0.72.0",
		L7Protocol: span.L7HTTP1, RequestType: "GET", RequestResource: "/reviews/0", Endpoint: "/reviews/{id}", ResponseCode: 200,
		ResponseStatus: span.StatusOK, ClientIP: s.ClientIP, ClientPort: 40312,
		Attributes: `{"http.request.method":"GET","http.response.status_code":200,"http.route":"/reviews/{id}","network.peer.address":"10.0.1.5","network.peer.port":40312,"url.path":"/reviews/0"}`,
		Resource:   `{"k8s.deployment.name":"reviews","k8s.namespace.name":"bookinfo","k8s.pod.name":"reviews-v1","process.pid":4242,"service.name":"reviews"}`}
	if s.ClientIP.String() != "10.0.1.5" || s != want {
		t.Fatalf("server span:\n got %+v\nwant %+v", s, want)
	}
}

// TestSpansLimits: a request beyond MaxSpans is refused whole with a clear
// error; attributes beyond the limits are cut and counted.
func TestSpansLimits(t *testing.T) {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 5; i++ {
		o := ss.AppendEmpty()
		o.SetTraceID(pcommon.TraceID(tid))
		o.SetSpanID(SpanIDOf(uint64(i + 1)))
		o.SetStartTimestamp(start)
		o.SetEndTimestamp(end)
		o.Attributes().PutStr("long", strings.Repeat("x", 100))
		for k := 0; k < 10; k++ {
			o.Attributes().PutInt("k"+string(rune('a'+k)), int64(k))
		}
	}
	_, _, err := Spans(nil, td, "n", Limits{MaxSpans: 4})
	if err == nil || !strings.Contains(err.Error(), "holds 5 spans, more than the limit of 4") {
		t.Fatalf("5 spans, limit 4: %v", err)
	}
	spans, res, err := Spans(nil, td, "n", Limits{MaxSpans: 5, MaxAttributes: 4, MaxValueBytes: 10})
	if err != nil || len(spans) != 5 {
		t.Fatalf("%d spans, %v", len(spans), err)
	}
	var attrs map[string]any
	if err := json.Unmarshal([]byte(spans[0].Attributes), &attrs); err != nil || len(attrs) != 4 {
		t.Fatalf("attributes %s: %v", spans[0].Attributes, err)
	}
	if res.Limited != 5*(7+0) { // 7 of 11 attributes dropped per span; "long" is not among the first 4 keys
		t.Errorf("limited %d", res.Limited)
	}
}

// TestSDKRoundTrip: an SDK span stored (Arrow, span/3) and exported again
// carries the SDK's ids, name, kind, attributes, resource and scope.
func TestSDKRoundTrip(t *testing.T) {
	in := ptrace.NewTraces()
	rs := in.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "reviews")
	rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
	sc := rs.ScopeSpans().AppendEmpty()
	sc.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	sc.Scope().SetVersion("0.72.0")
	o := sc.Spans().AppendEmpty()
	o.SetTraceID(pcommon.TraceID(tid))
	o.SetSpanID(pcommon.SpanID(sid))
	o.SetParentSpanID(pcommon.SpanID(parent))
	o.SetName("HTTP GET")
	o.SetKind(ptrace.SpanKindClient)
	o.SetStartTimestamp(start)
	o.SetEndTimestamp(end)
	o.Status().SetCode(ptrace.StatusCodeError)
	o.Status().SetMessage("boom")
	a := o.Attributes()
	a.PutStr("s", "v")
	a.PutInt("i", -7)
	a.PutDouble("d", 2.0)
	a.PutDouble("f", 0.25)
	a.PutBool("b", true)
	a.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 0xff})
	sl := a.PutEmptySlice("list")
	sl.AppendEmpty().SetStr("x")
	sl.AppendEmpty().SetInt(3)
	a.PutEmptyMap("m").PutStr("inner", "y")

	spans, res, err := Spans(nil, in, "node2", Limits{})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	b := span.NewBuilder(nil)
	defer b.Release()
	b.Append(&spans[0])
	rec := b.NewRecord()
	defer rec.Release()
	r, err := span.NewRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	stored := r.All()
	m := NewMapper()
	m.AppendTrace(pcommon.TraceID(tid), &trace.Trace{Spans: stored, Parents: []int{-1}}, nil)
	out := otlpSpans(m.Traces())[pcommon.SpanID(sid)]
	if out.s.Name() != "HTTP GET" || out.s.Kind() != ptrace.SpanKindClient || out.s.Status().Code() != ptrace.StatusCodeError ||
		out.s.Status().Message() != "boom" {
		t.Fatalf("span: %s %s %s %q", out.s.Name(), out.s.Kind(), out.s.Status().Code(), out.s.Status().Message())
	}
	if !reflect.DeepEqual(out.s.Attributes().AsRaw(), a.AsRaw()) {
		t.Fatalf("attributes:\n got %v\nwant %v", out.s.Attributes().AsRaw(), a.AsRaw())
	}
	if str(out.res, "telemetry.sdk.language") != "go" || str(out.res, "service.name") != "reviews" || str(out.res, "host.name") != "node2" {
		t.Fatalf("resource %v", out.res.AsRaw())
	}
	scope := m.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Scope()
	if scope.Name() != sc.Scope().Name() || scope.Version() != "0.72.0" {
		t.Fatalf("scope %s %s", scope.Name(), scope.Version())
	}
}

// FuzzSpans: whatever bytes arrive, decoding and conversion return an error
// or spans that keep the invariants (ids set, times ordered, attributes
// that read back), and never panic.
func FuzzSpans(f *testing.F) {
	server := rawSpan(tid, sid, parent, 2, start, end, kvStr("http.request.method", "GET"), kvInt("http.response.status_code", 503))
	f.Add(request(server))
	f.Add(request(server, rawSpan(tid, sid, nil, 3, start, end, kvStr("db.system", "mysql"), kvStr("db.query.text", "SELECT ?"))))
	f.Add(request(rawSpan(tid, make([]byte, 8), nil, 1, end, start)))
	td := ptrace.NewTraces()
	o := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	o.SetTraceID(pcommon.TraceID(tid))
	o.SetSpanID(pcommon.SpanID(sid))
	o.SetStartTimestamp(start)
	o.SetEndTimestamp(end)
	o.Attributes().PutEmptyMap("m").PutEmptySlice("l").AppendEmpty().SetDouble(1e300)
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		td, err := Decode(body, false)
		if err != nil {
			return
		}
		spans, res, err := Spans(nil, td, "n", Limits{MaxSpans: 1000})
		if err != nil {
			return
		}
		if res.Accepted != len(spans) || res.Accepted+res.Rejected != td.SpanCount() {
			t.Fatalf("accepted %d rejected %d of %d, %d spans", res.Accepted, res.Rejected, td.SpanCount(), len(spans))
		}
		m := NewMapper()
		for i := range spans {
			s := &spans[i]
			if s.SpanID == 0 || s.TraceID.IsZero() || s.EndNs < s.StartNs || s.StartNs <= 0 || s.SignalSource != span.SourceOTel {
				t.Fatalf("span %+v", s)
			}
			for _, js := range []string{s.Attributes, s.Resource} {
				if js != "" && putJSON(pcommon.NewMap(), js) != nil {
					t.Fatalf("stored attributes do not read back: %s", js)
				}
			}
			m.AppendTrace(pcommon.TraceID(s.TraceID), &trace.Trace{Spans: spans[i : i+1], Parents: []int{-1}}, nil)
		}
		if m.Spans() != len(spans) {
			t.Fatalf("exported %d of %d", m.Spans(), len(spans))
		}
	})
}

// BenchmarkSpans: decoding and converting a request of 100 server spans.
func BenchmarkSpans(b *testing.B) {
	var raws [][]byte
	for i := 0; i < 100; i++ {
		id := binary.BigEndian.AppendUint64(nil, uint64(i+1))
		raws = append(raws, rawSpan(tid, id, parent, 2, start, end, kvStr("http.request.method", "GET"), kvStr("url.path", "/reviews/0"),
			kvInt("http.response.status_code", 200)))
	}
	body := request(raws...)
	b.ReportAllocs()
	var dst []span.Span
	for i := 0; i < b.N; i++ {
		td, err := Decode(body, false)
		if err != nil {
			b.Fatal(err)
		}
		dst, _, _ = Spans(dst[:0], td, "n", Limits{})
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "spans/s")
}
