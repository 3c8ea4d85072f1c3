package otlpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	oteltrace "go.opentelemetry.io/otel/trace"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
)

type got struct {
	mu    sync.Mutex
	spans []span.Span
}

func (g *got) emit(s *span.Span) { g.mu.Lock(); g.spans = append(g.spans, *s); g.mu.Unlock() }
func (g *got) all() []span.Span {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]span.Span(nil), g.spans...)
}

func start(t *testing.T, cfg Config) (*Receiver, *got) {
	t.Helper()
	g := &got{}
	cfg.Node, cfg.GRPC, cfg.HTTP = "node2", "127.0.0.1:0", "127.0.0.1:0"
	r, err := Start(cfg, g.emit, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, g
}

// TestSDK: the OpenTelemetry Go SDK's own OTLP exporters (gRPC and HTTP)
// deliver a server span and its client child; both are stored as otel
// spans with the SDK's ids, parent, names, kinds and resource.
func TestSDK(t *testing.T) {
	r, g := start(t, Config{})
	ctx := context.Background()
	for _, proto := range []string{"grpc", "http"} {
		var exp sdktrace.SpanExporter
		var err error
		if proto == "grpc" {
			exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(r.GRPCAddr), otlptracegrpc.WithInsecure())
		} else {
			exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(r.HTTPAddr), otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		if err != nil {
			t.Fatal(err)
		}
		res := resource.NewSchemaless(semconv.ServiceName("reviews"), semconv.K8SPodName("reviews-v1"), semconv.K8SNamespaceName("bookinfo"))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
		tr := tp.Tracer("test")
		sctx, server := tr.Start(ctx, "GET /reviews/{id}", oteltrace.WithSpanKind(oteltrace.SpanKindServer))
		_, client := tr.Start(sctx, "HTTP GET", oteltrace.WithSpanKind(oteltrace.SpanKindClient))
		client.End()
		server.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		spans := map[uint64]span.Span{}
		for _, s := range g.all() {
			spans[s.SpanID] = s
		}
		sid, cid := server.SpanContext().SpanID(), client.SpanContext().SpanID()
		ss, cs := spans[spanID(sid)], spans[spanID(cid)]
		if ss.SpanID == 0 || cs.SpanID == 0 {
			t.Fatalf("%s: server or client span not stored: %v", proto, spans)
		}
		if cs.ParentSpanID != ss.SpanID || ss.TapSide != span.TapServerApp || cs.TapSide != span.TapClientApp ||
			ss.Service != "reviews" || ss.Pod != "reviews-v1" || ss.Name != "GET /reviews/{id}" || ss.Node != "node2" ||
			ss.TraceID != span.TraceID(server.SpanContext().TraceID()) || ss.SignalSource != span.SourceOTel {
			t.Fatalf("%s: server %+v\nclient %+v", proto, ss, cs)
		}
	}
	if n := r.Stats.SpansAccepted.Load(); n != 4 {
		t.Errorf("%d spans accepted, want 4", n)
	}
}

func spanID(id oteltrace.SpanID) uint64 {
	var n uint64
	for _, b := range id {
		n = n<<8 | uint64(b)
	}
	return n
}

// request builds n spans of one trace; bad makes span 1 end before it
// starts.
func request(n int, bad bool) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < n; i++ {
		s := ss.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1, 2, 3})
		s.SetSpanID(otlp.SpanIDOf(uint64(i + 1)))
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Unix(1775034000, 0)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Unix(1775034001, 0)))
		if bad && i == 1 {
			s.SetEndTimestamp(1)
		}
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// TestGRPCErrors: a malformed span is rejected alone (partial success),
// too many spans is InvalidArgument, too many bytes ResourceExhausted; the
// other spans are stored.
func TestGRPCErrors(t *testing.T) {
	r, g := start(t, Config{Limits: otlp.Limits{MaxSpans: 50}, MaxMessageBytes: 4000})
	conn, err := grpc.NewClient(r.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := ptraceotlp.NewGRPCClient(conn)
	ctx := context.Background()
	resp, err := c.Export(ctx, request(3, true))
	if err != nil || resp.PartialSuccess().RejectedSpans() != 1 ||
		!strings.Contains(resp.PartialSuccess().ErrorMessage(), "span 0000000000000002: ends before it starts") {
		t.Fatalf("partial: %v %d %q", err, resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
	}
	if len(g.all()) != 2 {
		t.Fatalf("%d spans stored, want the 2 good ones", len(g.all()))
	}
	_, err = c.Export(ctx, request(51, false))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "holds 51 spans, more than the limit of 50") {
		t.Fatalf("51 spans: %v", err)
	}
	big := request(50, false)
	big.Traces().ResourceSpans().At(0).Resource().Attributes().PutStr("pad", strings.Repeat("x", 5000))
	_, err = c.Export(ctx, big)
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted {
		t.Fatalf("5 KB message: %v", err)
	}
	if r.Stats.Refused.Load() != 1 { // ResourceExhausted is gRPC's, before the handler
		t.Errorf("refused %d", r.Stats.Refused.Load())
	}
}

func post(t *testing.T, url, ct, enc string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHTTP: protobuf, gzip and JSON bodies; refusals carry a
// google.rpc.Status with the reason.
func TestHTTP(t *testing.T) {
	r, g := start(t, Config{MaxMessageBytes: 1 << 16, Limits: otlp.Limits{MaxSpans: 100}})
	url := "http://" + r.HTTPAddr + "/v1/traces"
	pb, _ := request(3, true).MarshalProto()
	code, body := post(t, url, "application/x-protobuf", "", pb)
	resp := ptraceotlp.NewExportResponse()
	if code != 200 || resp.UnmarshalProto(body) != nil || resp.PartialSuccess().RejectedSpans() != 1 {
		t.Fatalf("protobuf: %d %q", code, body)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(pb)
	zw.Close()
	if code, _ := post(t, url, "application/x-protobuf", "gzip", zb.Bytes()); code != 200 {
		t.Fatalf("gzip: %d", code)
	}
	js, _ := request(2, false).MarshalJSON()
	if code, body := post(t, url, "application/json", "", js); code != 200 || !strings.HasPrefix(string(body), "{") {
		t.Fatalf("json: %d %q", code, body)
	}
	if n := len(g.all()); n != 2+2+2 {
		t.Fatalf("%d spans stored, want 6", n)
	}
	status := func(b []byte) *spb.Status {
		var st spb.Status
		if err := proto.Unmarshal(b, &st); err != nil {
			t.Fatalf("error body is no google.rpc.Status: %v", err)
		}
		return &st
	}
	for _, c := range []struct {
		name, ct, enc string
		body          []byte
		code          int
		msg           string
	}{
		{"not OTLP", "application/x-protobuf", "", []byte{0x0a, 0xff, 0xff}, 400, "decoding OTLP protobuf"},
		{"too many spans", "application/x-protobuf", "", mustProto(request(101, false)), 400, "holds 101 spans"},
		{"too large", "application/x-protobuf", "", make([]byte, 1<<17), 413, "request larger than 65536 bytes"},
		{"gzip bomb", "application/x-protobuf", "gzip", gz(make([]byte, 1<<20)), 413, "request larger than"},
		{"bad gzip", "application/x-protobuf", "gzip", []byte("not gzip"), 400, "gzip body"},
		{"content type", "text/plain", "", pb, 415, "content type"},
	} {
		code, body := post(t, url, c.ct, c.enc, c.body)
		if code != c.code {
			t.Errorf("%s: %d, want %d", c.name, code, c.code)
			continue
		}
		if c.ct == "application/x-protobuf" || c.ct == "text/plain" {
			if st := status(body); !strings.Contains(st.Message, c.msg) {
				t.Errorf("%s: %q, want %q", c.name, st.Message, c.msg)
			}
		}
	}
	if n := len(g.all()); n != 6 {
		t.Fatalf("refused requests stored spans: %d", n)
	}
}

func mustProto(r ptraceotlp.ExportRequest) []byte { b, _ := r.MarshalProto(); return b }

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}
