package spangen

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func TestTraceInvariants(t *testing.T) {
	for _, tr := range New(Config{Seed: 7}).Next(20) {
		if len(tr.Spans) != 38 {
			t.Fatalf("trace %d: %d spans", tr.Index, len(tr.Spans))
		}
		ids := map[uint64]bool{}
		for i, s := range tr.Spans {
			if s.SpanID == 0 || ids[s.SpanID] {
				t.Fatalf("span %d: id %x zero or duplicate", i, s.SpanID)
			}
			ids[s.SpanID] = true
			if s.EndNs <= s.StartNs {
				t.Errorf("%s: end %d not after start %d", tr.Labels[i], s.EndNs, s.StartNs)
			}
			p := tr.Parents[i]
			if p < 0 {
				continue
			}
			ps := tr.Spans[p]
			if s.StartNs < ps.StartNs || s.EndNs > ps.EndNs {
				t.Errorf("%s [%d,%d] not inside parent %s [%d,%d]", tr.Labels[i], s.StartNs, s.EndNs, tr.Labels[p], ps.StartNs, ps.EndNs)
			}
			// A network chain (parent and child on one connection) shares both
			// sequence numbers; a process link (c-p under s-p) shares none.
			sameConn := s.ReqTCPSeq == ps.ReqTCPSeq
			if sameConn != (s.RespTCPSeq == ps.RespTCPSeq) {
				t.Errorf("%s: req and resp seq disagree on being the parent's connection", tr.Labels[i])
			}
			processLink := s.TapSide == span.TapClientProcess && ps.TapSide == span.TapServerProcess
			if sameConn == processLink {
				t.Errorf("%s under %s: same connection %v, process link %v", tr.Labels[i], tr.Labels[p], sameConn, processLink)
			}
			if processLink {
				if s.PID != ps.PID || s.Node != ps.Node {
					t.Errorf("%s: process link across processes", tr.Labels[i])
				}
				// An application thread holds one request: its calls carry the
				// request's context id. A sidecar's event loop that holds the
				// inbound and the outbound request at once gives its calls none:
				// the x-request-id links them (below).
				shared := s.SyscallTraceIDReq == ps.SyscallTraceIDReq && s.SyscallTraceIDReq != 0
				proxy := strings.Contains(tr.Labels[i], "-proxy")
				if !shared && !proxy {
					t.Errorf("%s: shares syscall trace id with %s: %v (%x/%x vs %x/%x)", tr.Labels[i], tr.Labels[p], shared,
						s.SyscallTraceIDReq, s.SyscallTraceIDResp, ps.SyscallTraceIDReq, ps.SyscallTraceIDResp)
				}
				if strings.Contains(tr.Labels[i], "-proxy") && s.XRequestIDReq != ps.XRequestIDResp {
					t.Errorf("%s: proxy c-p request id %q != s-p response id %q", tr.Labels[i], s.XRequestIDReq, ps.XRequestIDResp)
				}
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := New(Config{Seed: 3, Interval: time.Millisecond}).Next(5)
	b := New(Config{Seed: 3, Interval: time.Millisecond}).Next(5)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different traces")
	}
	c := New(Config{Seed: 4, Interval: time.Millisecond}).Next(5)
	if reflect.DeepEqual(a[0].Spans[0].ReqTCPSeq, c[0].Spans[0].ReqTCPSeq) {
		t.Fatal("different seeds, same sequence numbers")
	}
}

// TestNextSlicesOwned: Next puts a call's spans in one slice and carries
// memory to the next call; a trace's slices are still its own (appending
// to one leaves the next trace as it was), and two generators asked alike
// give the same traces.
func TestNextSlicesOwned(t *testing.T) {
	for _, cfg := range []Config{{Seed: 5, Interval: 5 * time.Millisecond}, {Seed: 6, Interval: 20 * time.Millisecond, DropRate: 0.2}} {
		var runs [2][]Trace
		for r := range runs {
			g := New(cfg)
			for _, n := range []int{1, 40, 3, 40, 36} {
				runs[r] = append(runs[r], g.Next(n)...)
			}
		}
		if !reflect.DeepEqual(runs[0], runs[1]) {
			t.Fatalf("seed %d: two generators asked alike differ", cfg.Seed)
		}
		parts := runs[0]
		next := append([]span.Span(nil), parts[42].Spans...)
		parts[41].Spans = append(parts[41].Spans, span.Span{SpanID: 1})
		parts[41].Labels = append(parts[41].Labels, "x")
		parts[41].Parents = append(parts[41].Parents, -1)
		if !reflect.DeepEqual(parts[42].Spans, next) {
			t.Fatalf("seed %d: appending to a trace's spans changed the next trace", cfg.Seed)
		}
	}
}

// A syscall trace id is a request context: no id is ever carried from one
// request into another, sequential or overlapping (the sidecars' event loops
// multiplex requests, and their calls carry none).
func TestSyscallIDsNeverCrossRequests(t *testing.T) {
	shared := func(traces []Trace) int {
		owner := map[uint64]int{}
		n := 0
		for _, tr := range traces {
			for _, s := range tr.Spans {
				for _, id := range []uint64{s.SyscallTraceIDReq, s.SyscallTraceIDResp} {
					if id == 0 {
						continue
					}
					if o, ok := owner[id]; ok && o != tr.Index {
						n++
					}
					owner[id] = tr.Index
				}
			}
		}
		return n
	}
	if n := shared(New(Config{Seed: 1}).Next(50)); n != 0 {
		t.Errorf("sequential traces share %d syscall ids", n)
	}
	if n := shared(New(Config{Seed: 1, Interval: 200 * time.Microsecond}).Next(50)); n != 0 {
		t.Errorf("50 overlapping traces share %d syscall ids", n)
	}
}

func TestSkewDropsErrors(t *testing.T) {
	base := New(Config{Seed: 9}).Next(1)[0]
	sk := New(Config{Seed: 9, NodeSkew: map[string]time.Duration{Node1: 3 * time.Millisecond}}).Next(1)[0]
	for i := range base.Spans {
		d := sk.Spans[i].StartNs - base.Spans[i].StartNs
		want := int64(0)
		if base.Spans[i].Node == Node1 {
			want = int64(3 * time.Millisecond)
		}
		if d != want {
			t.Fatalf("%s shifted by %d, want %d", base.Labels[i], d, want)
		}
	}

	drop := "productpage>details: node1-nic s-nd"
	dr := New(Config{Seed: 9, DropPoints: []string{drop}}).Next(1)[0]
	if len(dr.Spans) != 37 {
		t.Fatalf("dropped trace has %d spans", len(dr.Spans))
	}
	for i, l := range dr.Labels {
		if l == "productpage>details: details-vnic s" && dr.Labels[dr.Parents[i]] != "productpage>details: node2-nic c-nd" {
			t.Errorf("after drop, details-vnic s hangs under %q", dr.Labels[dr.Parents[i]])
		}
	}

	var timeouts, errs int
	for _, tr := range New(Config{Seed: 2, TimeoutRate: 0.2, ErrorRate: 0.2}).Next(100) {
		for i, s := range tr.Spans {
			if tr.Labels[i] != "reviews>ratings: ratings s-p" {
				continue
			}
			switch s.ResponseStatus {
			case span.StatusTimeout:
				timeouts++
				if s.RespTCPSeq != 0 || s.SyscallTraceIDResp != 0 {
					t.Error("timed-out span has a response key")
				}
			case span.StatusServerError:
				errs++
			}
		}
	}
	if timeouts < 5 || errs < 5 {
		t.Errorf("got %d timeouts and %d errors in 100 traces at 20%% each", timeouts, errs)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"/details/3":          "/details/{id}",
		"/productpage?u=test": "/productpage",
		"/":                   "/",
		"/a/12/b/x1":          "/a/{id}/b/x1",
	} {
		if got := endpointOf(in); got != want {
			t.Errorf("endpointOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	g := New(Config{Seed: 1, Interval: time.Millisecond})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, tr := range g.Next(100) {
			n += len(tr.Spans)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "spans/s")
}
