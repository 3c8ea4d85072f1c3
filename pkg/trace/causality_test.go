package trace

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// A process (node n1, pid 100) that serves requests and makes calls from
// other threads (a pool): its calls carry no context id.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func ms(n int64) int64 { return base + n*int64(time.Millisecond) }

// srv is the server span of request r; call its call to a downstream, made
// by pool thread tid; both ids are optional.
func srv(id uint64, r string, from, to int64, ctx uint64) span.Span {
	return span.Span{SpanID: id, Node: "n1", SignalSource: span.SourceEBPF, TapSide: span.TapServerProcess, PID: 100,
		ReqTID: 101, RespTID: 101, StartNs: ms(from), EndNs: ms(to), L7Protocol: span.L7HTTP1, RequestType: "GET",
		RequestResource: "/front?r=" + r, ReqTCPSeq: uint32(id * 7919), RespTCPSeq: uint32(id * 104729),
		SyscallTraceIDReq: ctx, SyscallTraceIDResp: ctx, ServerIP: netip.MustParseAddr("10.0.0.1"), ServerPort: 80}
}

func call(id uint64, r string, from, to int64, tid uint32, ctx uint64) span.Span {
	return span.Span{SpanID: id, Node: "n1", SignalSource: span.SourceEBPF, TapSide: span.TapClientProcess, PID: 100,
		ReqTID: tid, RespTID: tid, StartNs: ms(from), EndNs: ms(to), L7Protocol: span.L7HTTP1, RequestType: "GET",
		RequestResource: "/down?r=" + r, ReqTCPSeq: uint32(id * 7919), RespTCPSeq: uint32(id * 104729),
		SyscallTraceIDReq: ctx, SyscallTraceIDResp: ctx, ServerIP: netip.MustParseAddr("10.0.0.2"), ServerPort: 80}
}

// request is the marker of a span (the r= parameter), the test's ground truth.
func request(s *span.Span) string {
	r := s.RequestResource
	for i := range r {
		if r[i] == '=' {
			return r[i+1:]
		}
	}
	return ""
}

func TestCausalityRelations(t *testing.T) {
	now := func() time.Time { return time.Unix(0, base).Add(time.Minute) }
	cases := []struct {
		name   string
		spans  []span.Span
		seed   uint64
		want   map[uint64]uint64 // span → parent (0: root) of every span the trace must hold
		reason map[uint64]Evidence
	}{{
		name: "sequential pool calls: each inside the one request in flight",
		spans: []span.Span{srv(1, "a", 0, 100, 11), call(2, "a", 10, 40, 201, 0), call(3, "a", 50, 90, 202, 0),
			srv(4, "b", 200, 300, 12), call(5, "b", 210, 290, 201, 0)},
		seed:   2,
		want:   map[uint64]uint64{1: 0, 2: 1, 3: 1},
		reason: map[uint64]Evidence{2: EvidenceContainment, 3: EvidenceContainment},
	}, {
		name:  "overlapping requests: a pool call inside both is linked to neither",
		spans: []span.Span{srv(1, "a", 0, 100, 11), srv(4, "b", 20, 120, 12), call(2, "a", 30, 60, 201, 0)},
		seed:  2,
		want:  map[uint64]uint64{2: 0},
	}, {
		name:  "overlapping requests, seeded from a server span: its calls stay out",
		spans: []span.Span{srv(1, "a", 0, 100, 11), srv(4, "b", 20, 120, 12), call(2, "a", 30, 60, 201, 0)},
		seed:  1,
		want:  map[uint64]uint64{1: 0},
	}, {
		name: "the thread holding a request: syscall context, even when requests overlap",
		spans: []span.Span{srv(1, "a", 0, 100, 11), srv(4, "b", 20, 120, 12), call(2, "a", 30, 60, 101, 11),
			call(3, "b", 40, 70, 102, 12)},
		seed:   1,
		want:   map[uint64]uint64{1: 0, 2: 1},
		reason: map[uint64]Evidence{2: EvidenceSyscall},
	}, {
		name: "a pool worker's call whose context was handed over: handoff evidence, even when requests overlap",
		spans: []span.Span{srv(1, "a", 0, 100, 11), srv(4, "b", 20, 120, 12), func() span.Span {
			c := call(2, "a", 30, 60, 201, 11)
			c.Flags |= span.FlagHandoff
			return c
		}()},
		seed:   2,
		want:   map[uint64]uint64{1: 0, 2: 1},
		reason: map[uint64]Evidence{2: EvidenceHandoff},
	}, {
		name:  "a shared context id outside the request's time is no link",
		spans: []span.Span{srv(1, "a", 0, 100, 11), call(2, "b", 150, 180, 101, 11)},
		seed:  2,
		want:  map[uint64]uint64{2: 0},
	}, {
		name:  "two calls sharing an id are siblings only through their server request",
		spans: []span.Span{call(2, "a", 30, 60, 101, 11), call(3, "b", 140, 170, 101, 11)},
		seed:  2,
		want:  map[uint64]uint64{2: 0},
	}, {
		name:  "a call made by a thread holding another request is not contained",
		spans: []span.Span{srv(1, "a", 0, 100, 11), call(2, "b", 30, 60, 101, 99)},
		seed:  2,
		want:  map[uint64]uint64{2: 0},
	}}
	proxy := func(s span.Span, path string) span.Span {
		s.Flags |= span.FlagProxy
		s.RequestResource = path
		return s
	}
	cases = append(cases, []struct {
		name   string
		spans  []span.Span
		seed   uint64
		want   map[uint64]uint64
		reason map[uint64]Evidence
	}{{
		name: "a proxy holding its pod's inbound and outbound request: each call forwards the one with its path",
		spans: []span.Span{proxy(srv(1, "a", 0, 100, 0), "/front"), proxy(call(2, "a", 5, 95, 101, 0), "/front"),
			proxy(srv(3, "a", 20, 60, 0), "/down"), proxy(call(4, "a", 25, 55, 101, 0), "/down")},
		seed:   1,
		want:   map[uint64]uint64{1: 0, 2: 1},
		reason: map[uint64]Evidence{2: EvidenceProxy},
	}, {
		name: "...seeded from the outbound request",
		spans: []span.Span{proxy(srv(1, "a", 0, 100, 0), "/front"), proxy(call(2, "a", 5, 95, 101, 0), "/front"),
			proxy(srv(3, "a", 20, 60, 0), "/down"), proxy(call(4, "a", 25, 55, 101, 0), "/down")},
		seed:   4,
		want:   map[uint64]uint64{3: 0, 4: 3},
		reason: map[uint64]Evidence{4: EvidenceProxy},
	}, {
		name: "two requests with the same path in flight: a proxy's call forwards neither",
		spans: []span.Span{proxy(srv(1, "a", 0, 100, 0), "/front"), proxy(srv(3, "b", 10, 110, 0), "/front"),
			proxy(call(2, "a", 20, 90, 101, 0), "/front")},
		seed: 2,
		want: map[uint64]uint64{2: 0},
	}, {
		name: "an application (not a proxy) calling with the path it was called with is no forward",
		spans: []span.Span{srv(1, "a", 0, 100, 0), srv(3, "b", 10, 110, 0), func() span.Span {
			c := call(2, "b", 20, 90, 201, 0)
			c.RequestResource = "/front?r=a"
			return c
		}()},
		seed: 2,
		want: map[uint64]uint64{2: 0},
	}, {
		name: "an orphaned response (its request frame dropped) takes no parent, even sharing a response id",
		spans: []span.Span{func() span.Span {
			s := srv(1, "a", 0, 100, 0)
			s.XRequestIDReq, s.XRequestIDResp = "rid-a", "rid-a"
			return s
		}(), func() span.Span {
			c := call(2, "b", 30, 60, 201, 0)
			c.Flags |= span.FlagNoRequest
			c.ReqTCPSeq, c.RequestResource, c.XRequestIDResp = 0, "", "rid-a"
			return c
		}()},
		seed: 1,
		want: map[uint64]uint64{1: 0},
	}}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fill(t, []spangen.Trace{{Spans: c.spans}})
			got, err := Assemble(context.Background(), r, Config{Now: now}, strconv.FormatUint(c.seed, 10), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[uint64]bool{}
			for i := range got.Spans {
				s := &got.Spans[i]
				seen[s.SpanID] = true
				want, ok := c.want[s.SpanID]
				if !ok {
					t.Errorf("span %d (%s) in the trace", s.SpanID, request(s))
					continue
				}
				var p uint64
				if got.Parents[i] >= 0 {
					p = got.Spans[got.Parents[i]].SpanID
				}
				if p != want {
					t.Errorf("span %d: parent %d, want %d", s.SpanID, p, want)
				}
				if ev := c.reason[s.SpanID]; ev != "" && got.Evidence[i] != ev {
					t.Errorf("span %d: evidence %q, want %q", s.SpanID, got.Evidence[i], ev)
				}
			}
			for id := range c.want {
				if !seen[id] {
					t.Errorf("span %d missing", id)
				}
			}
		})
	}
}

// Containment waits until every request in flight during a call is stored.
func TestContainmentSettles(t *testing.T) {
	spans := []span.Span{srv(1, "a", 0, 100, 11), call(2, "a", 10, 40, 201, 0)}
	r := fill(t, []spangen.Trace{{Spans: spans}})
	for _, tc := range []struct {
		after time.Duration
		want  int
	}{{time.Second, 1}, {20 * time.Second, 2}} {
		now := func() time.Time { return time.Unix(0, ms(40)).Add(tc.after) }
		got, err := Assemble(context.Background(), r, Config{Now: now}, "2", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spans) != tc.want {
			t.Errorf("%v after the call: %d spans, want %d", tc.after, len(got.Spans), tc.want)
		}
	}
}
