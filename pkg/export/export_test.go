package export

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// sink is an OTLP receiver that keeps every span copy it was sent.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer
	mu      sync.Mutex
	copies  map[pcommon.SpanID][]got
	headers []metadata.MD
	fail    atomic.Int64 // answer this many requests with fail code
	code    codes.Code
	calls   atomic.Int64
}

type got struct {
	traceID pcommon.TraceID
	parent  pcommon.SpanID
	name    string
	service string
}

func newSink() *sink { return &sink{copies: map[pcommon.SpanID][]got{}, code: codes.Unavailable} }

func (k *sink) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	k.calls.Add(1)
	if k.fail.Add(-1) >= 0 {
		return ptraceotlp.NewExportResponse(), status.Error(k.code, "sink says no")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.headers = append(k.headers, md)
	k.take(req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

func (k *sink) take(td ptrace.Traces) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for n := 0; n < ss.Len(); n++ {
				s := ss.At(n)
				k.copies[s.SpanID()] = append(k.copies[s.SpanID()], got{s.TraceID(), s.ParentSpanID(), s.Name(), svc.Str()})
			}
		}
	}
}

func (k *sink) snapshot() map[pcommon.SpanID][]got {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[pcommon.SpanID][]got, len(k.copies))
	for id, c := range k.copies {
		out[id] = append([]got(nil), c...)
	}
	return out
}

func (k *sink) serveGRPC(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, k)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// writeTraces stores traces in sealed shards under dir, one writer per
// node; drop leaves the spans it names out.
func writeTraces(t *testing.T, dir string, traces []spangen.Trace, drop func(ti, si int) bool) {
	t.Helper()
	ws := map[string]*store.Writer{}
	for ti, tr := range traces {
		for si, s := range tr.Spans {
			if drop != nil && drop(ti, si) {
				continue
			}
			w := ws[s.Node]
			if w == nil {
				var err error
				if w, err = store.OpenWriter(store.WriterOptions{Dir: dir, Node: s.Node, NoBackground: true}); err != nil {
					t.Fatal(err)
				}
				ws[s.Node] = w
			}
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

type rig struct {
	dir  string
	sink *sink
	cfg  Config
	gen  []spangen.Trace
}

func newRig(t *testing.T, n int) *rig {
	r := &rig{dir: t.TempDir(), sink: newSink()}
	r.gen = spangen.New(spangen.Config{Seed: 5, Start: time.Now().Add(-20 * time.Second), Interval: 30 * time.Millisecond}).Next(n)
	r.cfg = Defaults()
	r.cfg.DataDirs = []string{r.dir}
	r.cfg.Endpoint = r.sink.serveGRPC(t)
	r.cfg.TLS.Insecure = true
	r.cfg.Checkpoint = filepath.Join(t.TempDir(), "checkpoint")
	r.cfg.Quiet, r.cfg.Poll, r.cfg.MetricsAddr = 300*time.Millisecond, 50*time.Millisecond, ""
	r.cfg.MaxBackoff = 100 * time.Millisecond
	return r
}

// run exports until every wanted span arrived (or the time is up) and
// stops the exporter.
func (r *rig) run(t *testing.T, want int, within time.Duration) *Exporter {
	t.Helper()
	rd, err := store.OpenReader(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	e, err := New(r.cfg, Source{Reader: rd}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && int(e.Stats.SpansExported.Load()) < want {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return e
}

// check: every generated span arrived, each copy under one trace id per
// trace, with its ground-truth parent, never two different copies.
// A span whose parent was stored after the span was exported (lateParent)
// was sent as a root: spans are never sent twice, so it stays one.
func (r *rig) check(t *testing.T, copies map[pcommon.SpanID][]got, lateParent func(ti, si int) bool) (spans, dups int) {
	t.Helper()
	for ti, tr := range r.gen {
		var tid pcommon.TraceID
		for si, s := range tr.Spans {
			c := copies[otlp.SpanIDOf(s.SpanID)]
			if len(c) == 0 {
				t.Errorf("trace %d span %s (%s) not exported", ti, span.FormatSpanID(s.SpanID), tr.Labels[si])
				continue
			}
			spans++
			dups += len(c) - 1
			for _, x := range c[1:] {
				if x != c[0] {
					t.Errorf("trace %d span %s: two different copies %+v %+v", ti, span.FormatSpanID(s.SpanID), c[0], x)
				}
			}
			if tid.IsEmpty() {
				tid = c[0].traceID
			} else if c[0].traceID != tid {
				t.Errorf("trace %d span %s: trace id %s, the trace's others %s", ti, tr.Labels[si], c[0].traceID, tid)
			}
			want := pcommon.NewSpanIDEmpty()
			if p := tr.Parents[si]; p >= 0 && (lateParent == nil || !lateParent(ti, p)) {
				want = otlp.SpanIDOf(tr.Spans[p].SpanID)
			}
			if c[0].parent != want {
				t.Errorf("trace %d %s: parent %s, want %s", ti, tr.Labels[si], c[0].parent, want)
			}
		}
	}
	return spans, dups
}

func total(traces []spangen.Trace) int {
	n := 0
	for _, tr := range traces {
		n += len(tr.Spans)
	}
	return n
}

// TestExportAll: every span of 30 generated Bookinfo traces arrives once,
// parented as the ground truth says, under one trace id per trace.
func TestExportAll(t *testing.T) {
	r := newRig(t, 30)
	writeTraces(t, r.dir, r.gen, nil)
	e := r.run(t, total(r.gen), 20*time.Second)
	spans, dups := r.check(t, r.sink.snapshot(), nil)
	if spans != total(r.gen) || dups != 0 || e.Stats.SpansDropped.Load() != 0 {
		t.Fatalf("%d of %d spans, %d duplicated, %d dropped", spans, total(r.gen), dups, e.Stats.SpansDropped.Load())
	}
	if got := e.Stats.TracesExported.Load(); got != int64(len(r.gen)) {
		t.Errorf("%d traces exported, want %d", got, len(r.gen))
	}
}

// TestExportRestart: an exporter stopped after part of the work and started
// again on its checkpoint sends only what it had not, and a span stored
// after its trace was exported (late) goes under the trace id already
// used, its parent named.
func TestExportRestart(t *testing.T) {
	r := newRig(t, 20)
	// Late: the root of some traces (which the derived trace id is made
	// of), the last span of others.
	late := func(ti, si int) bool { return ti%4 == 0 && si == 0 || ti%4 == 1 && si == len(r.gen[ti].Spans)-1 }
	writeTraces(t, r.dir, r.gen, late)
	first := r.run(t, total(r.gen)-10, 20*time.Second)
	if first.Stats.SpansExported.Load() != int64(total(r.gen)-10) {
		t.Fatalf("first run: %d spans", first.Stats.SpansExported.Load())
	}
	before := r.sink.calls.Load()
	// Restart on the same checkpoint with nothing new: nothing is sent.
	again := r.run(t, 1, 2*time.Second)
	if n := again.Stats.SpansExported.Load(); n != 0 || r.sink.calls.Load() != before {
		t.Fatalf("restart with nothing new sent %d spans in %d requests", n, r.sink.calls.Load()-before)
	}
	// The late spans arrive in new shards.
	writeTraces(t, r.dir, r.gen, func(ti, si int) bool { return !late(ti, si) })
	third := r.run(t, 10, 20*time.Second)
	if n := third.Stats.SpansExported.Load(); n != 10 {
		t.Fatalf("late spans: %d exported, want 10", n)
	}
	spans, dups := r.check(t, r.sink.snapshot(), late)
	if spans != total(r.gen) || dups != 0 {
		t.Fatalf("%d of %d spans, %d duplicated", spans, total(r.gen), dups)
	}
}

// TestExportOutage: the backend answers Unavailable for a while; the
// exporter retries and loses nothing. A refusal for good (InvalidArgument)
// drops the batch and counts it.
func TestExportOutage(t *testing.T) {
	r := newRig(t, 10)
	writeTraces(t, r.dir, r.gen, nil)
	r.sink.fail.Store(8)
	e := r.run(t, total(r.gen), 20*time.Second)
	if spans, dups := r.check(t, r.sink.snapshot(), nil); spans != total(r.gen) || dups != 0 {
		t.Fatalf("%d of %d spans, %d duplicated", spans, total(r.gen), dups)
	}
	if e.Stats.Retries.Load() < 8 {
		t.Errorf("%d retries, want ≥ 8", e.Stats.Retries.Load())
	}

	r2 := newRig(t, 3)
	writeTraces(t, r2.dir, r2.gen, nil)
	r2.sink.code, r2.cfg.BatchSpans = codes.InvalidArgument, 1000
	r2.sink.fail.Store(1 << 30)
	e2 := r2.run(t, 1, 3*time.Second)
	if d := e2.Stats.SpansDropped.Load(); d != int64(total(r2.gen)) {
		t.Fatalf("refused for good: %d dropped, want %d", d, total(r2.gen))
	}
}

// TestExportQueueBound: a queue smaller than the traces' spans still
// exports everything, a round at a time.
func TestExportQueueBound(t *testing.T) {
	r := newRig(t, 12)
	writeTraces(t, r.dir, r.gen, nil)
	r.cfg.QueueSpans, r.cfg.BatchSpans = 40, 40
	e := r.run(t, total(r.gen), 30*time.Second)
	if spans, dups := r.check(t, r.sink.snapshot(), nil); spans != total(r.gen) || dups != 0 {
		t.Fatalf("%d of %d spans, %d duplicated", spans, total(r.gen), dups)
	}
	if e.Stats.QueueFull.Load() == 0 {
		t.Error("the queue never filled")
	}
}

// TestExportHTTPTLS: OTLP/HTTP over TLS with the CA given, headers sent.
func TestExportHTTPTLS(t *testing.T) {
	r := newRig(t, 4)
	writeTraces(t, r.dir, r.gen, nil)
	var auth atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		auth.Store(req.Header.Get("Authorization"))
		b, _ := io.ReadAll(req.Body)
		td, err := otlp.Decode(b, false)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.sink.mu.Lock()
		r.sink.take(td)
		r.sink.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemCert, 0o644); err != nil {
		t.Fatal(err)
	}
	r.cfg.Protocol, r.cfg.Endpoint, r.cfg.TLS.CAFile = ProtocolHTTP, srv.URL, ca
	r.cfg.Headers = map[string]string{"Authorization": "Bearer s3cret"}
	r.run(t, total(r.gen), 20*time.Second)
	if spans, _ := r.check(t, r.sink.snapshot(), nil); spans != total(r.gen) {
		t.Fatalf("%d of %d spans", spans, total(r.gen))
	}
	if auth.Load() != "Bearer s3cret" {
		t.Fatalf("Authorization %v", auth.Load())
	}
	// Without the CA the certificate is refused: nothing arrives.
	_, err := tlsConfig(&Config{TLS: TLSConfig{CAFile: "/nonexistent"}})
	if err == nil {
		t.Fatal("a missing CA file is no error")
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	if _, err := (&tls.Dialer{Config: &tls.Config{RootCAs: x509.NewCertPool()}}).Dial("tcp", srv.Listener.Addr().String()); err == nil {
		t.Fatal("the test server's certificate verified without its CA")
	}
}

// TestCheckpointTorn: a record cut short by a kill is dropped when the
// log is read again, and the log goes on after the last good record.
func TestCheckpointTorn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp")
	m := map[uint64]done{}
	c, err := openCheckpoint(path, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.append([]record{{traceID: [16]byte{1}, ids: []uint64{10, 11}, starts: []int64{100, 101}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.append([]record{{traceID: [16]byte{2}, ids: []uint64{12}, starts: []int64{102}}}); err != nil {
		t.Fatal(err)
	}
	c.close()
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()-3); err != nil { // the second record torn
		t.Fatal(err)
	}
	m = map[uint64]done{}
	c, err = openCheckpoint(path, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[10].traceID != [16]byte{1} || m[11].startNs != 101 {
		t.Fatalf("after a torn record: %v", m)
	}
	if err := c.append([]record{{traceID: [16]byte{3}, ids: []uint64{13}, starts: []int64{103}}}); err != nil {
		t.Fatal(err)
	}
	c.close()
	m = map[uint64]done{}
	if _, err := openCheckpoint(path, m); err != nil || len(m) != 3 || m[13].traceID != [16]byte{3} {
		t.Fatalf("appended after the cut: %v %v", m, err)
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=a"}
	cfg, err := Load([]string{"--data-dir", "/d", "--endpoint", "jaeger:4317", "--header", "Authorization=Bearer t", "--quiet", "5s"},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Quiet != 5*time.Second || cfg.Headers["Authorization"] != "Bearer t" || cfg.Headers["x-tenant"] != "a" || cfg.Protocol != ProtocolGRPC {
		t.Fatalf("%+v", cfg)
	}
	for _, bad := range [][]string{{"--data-dir", "/d"}, {"--endpoint", "x:1"}, {"--data-dir", "/d", "--endpoint", "x:1", "--protocol", "thrift"},
		{"--data-dir", "/d", "--endpoint", "x:1", "--header", "novalue"}, {"--data-dir", "/d", "--endpoint", "x:1", "--window", "1s"}} {
		if _, err := Load(bad, func(string) string { return "" }); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	var se *sendError
	if !errors.As(error(&sendError{err: fmt.Errorf("x")}), &se) {
		t.Fatal("sendError")
	}
}
