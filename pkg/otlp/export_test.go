package otlp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// bookinfoTrace is one generated Bookinfo request as an assembled trace
// (the generator's ground truth as the parents).
func bookinfoTrace(t testing.TB, seed uint64) (*trace.Trace, spangen.Trace) {
	t.Helper()
	g := spangen.New(spangen.Config{Seed: seed, Start: t0})
	tr := g.Next(1)[0]
	ev := make([]trace.Evidence, len(tr.Spans))
	for i, p := range tr.Parents {
		if p >= 0 {
			ev[i] = trace.EvidenceTCP
		}
	}
	return &trace.Trace{ID: trace.DerivedID(tr.Spans[0].SpanID), Spans: tr.Spans, Parents: tr.Parents, Evidence: ev}, tr
}

// otlpSpans indexes the spans of td by span id, with their resource.
func otlpSpans(td ptrace.Traces) map[pcommon.SpanID]struct {
	s   ptrace.Span
	res pcommon.Map
} {
	out := map[pcommon.SpanID]struct {
		s   ptrace.Span
		res pcommon.Map
	}{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				out[ss.At(k).SpanID()] = struct {
					s   ptrace.Span
					res pcommon.Map
				}{ss.At(k), rs.Resource().Attributes()}
			}
		}
	}
	return out
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

// TestMapBookinfo: every span of a Bookinfo trace is exported once, with its
// Zerotrace span id, its parent's, the trace id given, the service name of
// the plugin, the kind by tap side and the attributes of docs/otlp.md.
func TestMapBookinfo(t *testing.T) {
	tt, gt := bookinfoTrace(t, 1)
	tid, err := TraceIDOf(tt.ID)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMapper()
	m.AppendTrace(tid, tt, nil)
	td := m.Traces()
	if td.SpanCount() != len(tt.Spans) || m.Spans() != len(tt.Spans) {
		t.Fatalf("%d spans exported, want %d", td.SpanCount(), len(tt.Spans))
	}
	got := otlpSpans(td)
	kinds := map[ptrace.SpanKind]int{}
	for i := range tt.Spans {
		s := &tt.Spans[i]
		o, ok := got[SpanIDOf(s.SpanID)]
		if !ok {
			t.Fatalf("span %s (%s) not exported", span.FormatSpanID(s.SpanID), gt.Labels[i])
		}
		if o.s.TraceID() != tid {
			t.Errorf("%s: trace id %s, want %s", gt.Labels[i], o.s.TraceID(), tid)
		}
		wantParent := pcommon.NewSpanIDEmpty()
		if p := tt.Parents[i]; p >= 0 {
			wantParent = SpanIDOf(tt.Spans[p].SpanID)
		}
		if o.s.ParentSpanID() != wantParent {
			t.Errorf("%s: parent %s, want %s", gt.Labels[i], o.s.ParentSpanID(), wantParent)
		}
		if sn := str(o.res, "service.name"); sn != s.ServiceName() {
			t.Errorf("%s: service.name %q, want %q", gt.Labels[i], sn, s.ServiceName())
		}
		if s.Namespace != "" && str(o.res, "k8s.namespace.name") != s.Namespace {
			t.Errorf("%s: k8s.namespace.name %q", gt.Labels[i], str(o.res, "k8s.namespace.name"))
		}
		if str(o.res, "host.name") != s.Node {
			t.Errorf("%s: host.name %q, want %q", gt.Labels[i], str(o.res, "host.name"), s.Node)
		}
		a := o.s.Attributes()
		kinds[o.s.Kind()]++
		switch {
		case s.SignalSource == span.SourcePacket:
			if o.s.Kind() != ptrace.SpanKindInternal || str(a, "network.interface.name") != s.CaptureNIC {
				t.Errorf("%s: packet span kind %s, interface %q", gt.Labels[i], o.s.Kind(), str(a, "network.interface.name"))
			}
		case s.TapSide == span.TapServerProcess:
			if o.s.Kind() != ptrace.SpanKindServer || str(a, "network.peer.address") != s.ClientIP.String() {
				t.Errorf("%s: kind %s, peer %q", gt.Labels[i], o.s.Kind(), str(a, "network.peer.address"))
			}
		case s.TapSide == span.TapClientProcess:
			if o.s.Kind() != ptrace.SpanKindClient || str(a, "network.peer.address") != s.ServerIP.String() {
				t.Errorf("%s: kind %s, peer %q", gt.Labels[i], o.s.Kind(), str(a, "network.peer.address"))
			}
		}
		path, _, _ := strings.Cut(s.RequestResource, "?")
		if str(a, "http.request.method") != s.RequestType || str(a, "url.path") != path ||
			str(a, "http.response.status_code") != pcommon.NewValueInt(int64(s.ResponseCode)).AsString() {
			t.Errorf("%s: http %s %s %s, want %s %s %d", gt.Labels[i], str(a, "http.request.method"), str(a, "url.path"),
				str(a, "http.response.status_code"), s.RequestType, s.RequestResource, s.ResponseCode)
		}
		if want := string(tt.Evidence[i]); (want == "" && str(a, AttrLink) != "<absent>") || (want != "" && str(a, AttrLink) != want) {
			t.Errorf("%s: %s %q, want %q", gt.Labels[i], AttrLink, str(a, AttrLink), want)
		}
		if uint64(o.s.StartTimestamp()) != uint64(s.StartNs) || uint64(o.s.EndTimestamp()) != uint64(s.EndNs) {
			t.Errorf("%s: times", gt.Labels[i])
		}
	}
	if kinds[ptrace.SpanKindServer] == 0 || kinds[ptrace.SpanKindClient] == 0 || kinds[ptrace.SpanKindInternal] == 0 {
		t.Errorf("kinds %v: want server, client and internal spans", kinds)
	}
	services := map[string]bool{}
	for _, rs := range got {
		services[str(rs.res, "service.name")] = true
	}
	for _, want := range []string{"productpage", "reviews", "ratings", "details", "underlay1@node1"} {
		if !services[want] {
			t.Errorf("service %q missing: %v", want, services)
		}
	}
	// A sidecar proxy is its own service, "<workload> (proxy)".
	p := tt.Spans[1]
	p.Flags |= span.FlagProxy
	m = NewMapper()
	m.AppendTrace(tid, &trace.Trace{Spans: []span.Span{p}, Parents: []int{-1}}, nil)
	if sn := str(otlpSpans(m.Traces())[SpanIDOf(p.SpanID)].res, "service.name"); sn != p.Service+" (proxy)" {
		t.Errorf("proxy: service.name %q", sn)
	}
}

// TestMapDeterministic: the same trace mapped twice is the same bytes (ids
// included), so a trace exported again after a restart is the same data.
func TestMapDeterministic(t *testing.T) {
	enc := func() []byte {
		tt, _ := bookinfoTrace(t, 7)
		tid, _ := TraceIDOf(tt.ID)
		m := NewMapper()
		m.AppendTrace(tid, tt, nil)
		b, err := ptraceotlp.NewExportRequestFromTraces(m.Traces()).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := enc(), enc()
	if !bytes.Equal(a, b) {
		t.Fatal("the same trace mapped twice differs")
	}
	// Only some spans (late spans of a trace exported before): their
	// parents still name the spans exported earlier.
	tt, _ := bookinfoTrace(t, 7)
	tid, _ := TraceIDOf(tt.ID)
	m := NewMapper()
	m.AppendTrace(tid, tt, []int{5})
	got := otlpSpans(m.Traces())
	o := got[SpanIDOf(tt.Spans[5].SpanID)]
	if len(got) != 1 || o.s.ParentSpanID() != SpanIDOf(tt.Spans[tt.Parents[5]].SpanID) {
		t.Fatalf("late span: %d spans, parent %s", len(got), o.s.ParentSpanID())
	}
}

// TestMapProtocols: the semantic conventions of each protocol.
func TestMapProtocols(t *testing.T) {
	ip := netip.MustParseAddr
	base := span.Span{SpanID: 1, Node: "n1", SignalSource: span.SourceEBPF, TapSide: span.TapClientProcess, StartNs: 1, EndNs: 2,
		L4: span.L4TCP, IPVersion: 4, ClientIP: ip("10.0.0.1"), ClientPort: 40000, ServerIP: ip("10.0.0.2"), ServerPort: 3306, Service: "app"}
	cases := []struct {
		name string
		set  func(*span.Span)
		want map[string]string
		kind ptrace.SpanKind
	}{
		{"mysql", func(s *span.Span) {
			s.L7Protocol, s.RequestType, s.RequestResource, s.RequestDomain, s.ResultCount = span.L7MySQL, "SELECT", "SELECT * FROM t WHERE id = ?", "shop", 3
		}, map[string]string{"db.system": "mysql", "db.query.text": "SELECT * FROM t WHERE id = ?", "db.operation.name": "SELECT",
			"db.namespace": "shop", "server.address": "10.0.0.2", "server.port": "3306", "db.response.returned_rows": "3", "network.transport": "tcp"}, ptrace.SpanKindClient},
		{"redis", func(s *span.Span) { s.L7Protocol, s.RequestType, s.RequestResource = span.L7Redis, "GET", "k1" },
			map[string]string{"db.system": "redis", "db.query.text": "GET k1"}, ptrace.SpanKindClient},
		{"kafka", func(s *span.Span) {
			s.L7Protocol, s.RequestType, s.RequestResource, s.StreamID = span.L7Kafka, "Produce", "orders", 7
		}, map[string]string{"messaging.system": "kafka", "messaging.operation.name": "Produce", "messaging.destination.name": "orders",
			"messaging.kafka.correlation_id": "7"}, ptrace.SpanKindClient},
		{"grpc server", func(s *span.Span) {
			s.TapSide, s.L7Protocol, s.RequestResource, s.ResponseCode, s.ResponseStatus = span.TapServerProcess, span.L7GRPC, "/shop.Cart/Add", 5, span.StatusClientError
		}, map[string]string{"rpc.system": "grpc", "rpc.service": "shop.Cart", "rpc.method": "Add", "rpc.grpc.status_code": "5",
			"network.peer.address": "10.0.0.1", "network.peer.port": "40000"}, ptrace.SpanKindServer},
		{"http", func(s *span.Span) {
			s.L7Protocol, s.L7Version, s.RequestType, s.RequestResource, s.RequestDomain, s.ResponseCode = span.L7HTTP1, "1.1", "GET", "/a/1?x=2", "reviews:9080", 200
			s.Endpoint = "/a/{id}"
		}, map[string]string{"http.request.method": "GET", "url.path": "/a/1", "url.query": "x=2", "server.address": "reviews:9080",
			"http.response.status_code": "200", "network.protocol.version": "1.1", "zerotrace.endpoint": "/a/{id}",
			"network.peer.address": "10.0.0.2"}, ptrace.SpanKindClient},
		{"packet", func(s *span.Span) {
			s.SignalSource, s.TapSide, s.CaptureNIC, s.TunnelType, s.L7Protocol = span.SourcePacket, span.TapClientNode, "underlay1", span.TunnelVXLAN, span.L7HTTP1
			s.TunnelOuterSrc, s.TunnelOuterDst = ip("192.168.0.1"), ip("192.168.0.2")
		}, map[string]string{"network.interface.name": "underlay1", "zerotrace.tunnel.type": "vxlan", "zerotrace.tap_side": "c-nd",
			"zerotrace.signal_source": "packet", "zerotrace.tunnel.outer_source": "192.168.0.1"}, ptrace.SpanKindInternal},
	}
	for _, c := range cases {
		s := base
		c.set(&s)
		m := NewMapper()
		m.AppendTrace(pcommon.TraceID{1}, &trace.Trace{Spans: []span.Span{s}, Parents: []int{-1}}, nil)
		o := otlpSpans(m.Traces())[SpanIDOf(1)]
		if o.s.Kind() != c.kind {
			t.Errorf("%s: kind %s, want %s", c.name, o.s.Kind(), c.kind)
		}
		for k, v := range c.want {
			if got := str(o.s.Attributes(), k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got, v)
			}
		}
	}
}

func TestTraceIDOf(t *testing.T) {
	for _, bad := range []string{"", "abc", "00000000000000000000000000000000", "zz000000000000000000000000000000"} {
		if _, err := TraceIDOf(bad); err == nil {
			t.Errorf("TraceIDOf(%q): no error", bad)
		}
	}
	id, err := TraceIDOf(trace.DerivedID(0x1234))
	if err != nil || id.String() != "7a740000000000000000000000001234" {
		t.Fatalf("derived id: %s %v", id, err)
	}
}
