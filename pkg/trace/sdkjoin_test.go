package trace

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// withSDK turns generated Bookinfo requests into requests whose reviews is
// instrumented with an OpenTelemetry SDK: productpage sends a traceparent
// (trace T, parent id X) to reviews, the SDK's server span (id A, parent X)
// covers reviews' request, its client span (id B, parent A) covers the
// call to ratings, which carries traceparent T/B. The ground truth gains
// the two SDK spans: the server span under reviews' s-p, the client span
// under it, and reviews' call to ratings under the client span.
func withSDK(traces []spangen.Trace, seed uint64) []spangen.Trace {
	for ti := range traces {
		tr := &traces[ti]
		id := func(k uint64) uint64 { return seed<<40 | uint64(ti)<<8 | k }
		var tid span.TraceID
		binary.BigEndian.PutUint64(tid[:8], seed)
		binary.BigEndian.PutUint64(tid[8:], uint64(ti)+1)
		x, a, b := id(1), id(2), id(3)
		idx := map[string]int{}
		for i, l := range tr.Labels {
			idx[l] = i
			if strings.Contains(l, "-proxy ") {
				tr.Spans[i].Flags |= span.FlagProxy // as the collector marks sidecars (the generator does not)
			}
			switch {
			case strings.HasPrefix(l, "productpage>reviews:"):
				tr.Spans[i].TraceID, tr.Spans[i].ParentSpanID = tid, x
			case strings.HasPrefix(l, "reviews>ratings:"):
				tr.Spans[i].TraceID, tr.Spans[i].ParentSpanID = tid, b
			}
		}
		sp, cp := idx["productpage>reviews: reviews s-p"], idx["reviews>ratings: reviews c-p"]
		srv, call := tr.Spans[sp], tr.Spans[cp]
		sdk := func(sid, parent uint64, kind span.SpanKind, tap span.TapSide, start, end int64, name string) span.Span {
			return span.Span{SpanID: sid, AppSpanID: sid, ParentSpanID: parent, TraceID: tid, SignalSource: span.SourceOTel,
				TapSide: tap, Kind: kind, Node: srv.Node, Service: "reviews", Namespace: srv.Namespace, StartNs: start, EndNs: end, Name: name}
		}
		gap := (call.StartNs - srv.StartNs) / 2
		server := sdk(a, x, span.KindServer, span.TapServerApp, srv.StartNs+gap/2, srv.EndNs-gap/2, "GET /reviews/{id}")
		client := sdk(b, a, span.KindClient, span.TapClientApp, call.StartNs-gap/4, call.EndNs+gap/4, "HTTP GET")
		tr.Spans = append(tr.Spans, server, client)
		tr.Labels = append(tr.Labels, "sdk server", "sdk client")
		tr.Parents = append(tr.Parents, sp, len(tr.Spans)-2)
		tr.Parents[cp] = len(tr.Spans) - 1
	}
	return traces
}

// TestSDKJoin: the SDK spans of 30 overlapping requests nest among the
// eBPF and packet spans of their own request, from any seed (every span of
// a request, SDK spans included), with the evidence of each join.
func TestSDKJoin(t *testing.T) {
	traces := withSDK(spangen.New(spangen.Config{Seed: 9, Start: t0, Interval: 2 * time.Millisecond}).Next(30), 9)
	r := fill(t, traces)
	var joined, seeds int
	for _, tr := range traces {
		for si, seed := range tr.Spans {
			if si%5 != 0 && tr.Labels[si] != "sdk server" && tr.Labels[si] != "sdk client" {
				continue // every fifth span and both SDK spans as seeds
			}
			seeds++
			got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(seed.SpanID), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			found, correct := check(t, got, tr, true)
			if found != len(tr.Spans) || correct != len(tr.Spans) || len(got.Spans) != len(tr.Spans) {
				t.Fatalf("trace %d seed %q: %d spans, %d found, %d correct of %d", tr.Index, tr.Labels[si], len(got.Spans), found, correct, len(tr.Spans))
			}
			ev := map[string]Evidence{}
			for i := range got.Spans {
				switch got.Spans[i].Name {
				case "GET /reviews/{id}":
					ev["server"] = got.Evidence[i]
				case "HTTP GET":
					ev["client"] = got.Evidence[i]
				}
				if got.Spans[i].TapSide == span.TapClientProcess && got.Spans[i].ParentSpanID != 0 && got.Parents[i] >= 0 &&
					got.Spans[got.Parents[i]].SignalSource == span.SourceOTel {
					ev["call"] = got.Evidence[i]
				}
			}
			if ev["server"] != EvidenceTraceparent || ev["client"] != EvidenceSDK || ev["call"] != EvidenceTraceparent {
				t.Fatalf("trace %d: evidence %v", tr.Index, ev)
			}
			joined++
		}
	}
	t.Logf("SDK spans joined from %d/%d seeds", joined, seeds)
}

// TestSDKJoinRefuses: SDK spans whose ids match but whose trace id is
// another's are no part of the trace, and join nothing.
func TestSDKJoinRefuses(t *testing.T) {
	traces := withSDK(spangen.New(spangen.Config{Seed: 11, Start: t0}).Next(1), 11)
	tr := &traces[0]
	n := len(tr.Spans)
	tr.Spans[n-2].TraceID[0] ^= 0xff // the server span under another trace id
	tr.Spans[n-1].TraceID[0] ^= 0xff // and its client span
	tr.Spans[n-1].EndNs = tr.Spans[n-1].StartNs + 1
	r := fill(t, traces)
	got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(tr.Spans[0].SpanID), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Spans {
		s := &got.Spans[i]
		if s.SignalSource == span.SourceOTel {
			t.Errorf("SDK span %q of another trace id joined", s.Name)
		}
		if p := got.Parents[i]; p >= 0 && got.Spans[p].SignalSource == span.SourceOTel {
			t.Errorf("%s %s under an SDK span", s.Service, s.TapSide)
		}
	}
}

// TestContainmentTraceConflict: a Go-like process without context ids
// serves requests A and B at once, each continuing the trace context it
// received (trace ids TA, TB) on its call. From B, step 1 of containment
// finds A's call too, and with A's server request not looked up B's would
// be the only one in flight: the trace ids refuse the pair, so B's trace
// holds nothing of A.
func TestContainmentTraceConflict(t *testing.T) {
	base := t0.UnixNano()
	mk := func(id uint64, tap span.TapSide, from, to int64, tid byte, port uint16) span.Span {
		return span.Span{SpanID: id, Node: "n1", PID: 7, SignalSource: span.SourceEBPF, TapSide: tap, StartNs: base + from*1e6,
			EndNs: base + to*1e6, TraceID: span.TraceID{15: tid}, ParentSpanID: uint64(tid), L7Protocol: span.L7HTTP1,
			RequestType: "GET", RequestResource: "/x", Service: "svc", ClientPort: port}
	}
	spans := []span.Span{
		mk(1, span.TapServerProcess, 0, 100, 0xa, 1), // A
		mk(2, span.TapServerProcess, 10, 90, 0xb, 2), // B
		mk(3, span.TapClientProcess, 20, 30, 0xa, 3), // A's call
		mk(4, span.TapClientProcess, 40, 50, 0xb, 4), // B's call
	}
	r := fill(t, []spangen.Trace{{Spans: spans}})
	cfg := Config{Now: func() time.Time { return t0.Add(time.Hour) }}
	got, err := Assemble(context.Background(), r, cfg, fmt.Sprint(2), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	for _, s := range got.Spans {
		ids[s.SpanID] = true
	}
	if !ids[2] || !ids[4] || ids[1] || ids[3] {
		t.Fatalf("B's trace holds spans %v, want 2 and 4 only", ids)
	}
}
