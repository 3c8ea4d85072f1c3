package repeat

import (
	"fmt"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixNano()

// server is an exchange received by process pid with an X-Request-ID.
func server(pid uint32, at time.Duration, xrid string) span.Span {
	return span.Span{Node: "n1", SignalSource: span.SourceEBPF, TapSide: span.TapServerProcess, PID: pid, Service: "front",
		StartNs: t0 + int64(at), EndNs: t0 + int64(at) + int64(time.Millisecond), XRequestIDReq: xrid}
}

func TestPointsAndKeys(t *testing.T) {
	tid, _ := span.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	for _, c := range []struct {
		name  string
		s     span.Span
		point bool
		keys  int
	}{
		{"s-p with request and response id", span.Span{SignalSource: span.SourceEBPF, TapSide: span.TapServerProcess, PID: 7,
			XRequestIDReq: "a", XRequestIDResp: "b"}, true, 2},
		{"s-p echoing its id: one key", span.Span{SignalSource: span.SourceEBPF, TapSide: span.TapServerProcess, PID: 7,
			XRequestIDReq: "a", XRequestIDResp: "a", TraceID: tid}, true, 2},
		{"s-p of no known process", span.Span{SignalSource: span.SourceEBPF, TapSide: span.TapServerProcess}, false, 0},
		{"c-p: a call, not an exchange received", span.Span{SignalSource: span.SourceEBPF, TapSide: span.TapClientProcess, PID: 7,
			XRequestIDReq: "a"}, false, 1},
		{"packet s", span.Span{SignalSource: span.SourcePacket, TapSide: span.TapServerNIC, CaptureNIC: "v-a"}, true, 0},
		{"packet s-nd", span.Span{SignalSource: span.SourcePacket, TapSide: span.TapServerNode, CaptureNIC: "eth0"}, true, 0},
		{"packet c", span.Span{SignalSource: span.SourcePacket, TapSide: span.TapClientNIC, CaptureNIC: "v-a"}, false, 0},
	} {
		_, ok := PointOf(&c.s)
		if ok != c.point || len(Keys(&c.s, nil)) != c.keys {
			t.Errorf("%s: point %v keys %d, want %v %d", c.name, ok, len(Keys(&c.s, nil)), c.point, c.keys)
		}
	}
}

func TestMost(t *testing.T) {
	var spans []*span.Span
	add := func(pid uint32, at time.Duration) {
		s := server(pid, at, "x")
		spans = append(spans, &s)
	}
	// pid 1: 5 exchanges within 40 s, then 3 more two minutes later;
	// pid 2: 6 exchanges 20 s apart (at most 3 within a minute).
	for i := range 5 {
		add(1, time.Duration(i)*10*time.Second)
	}
	for i := range 3 {
		add(1, 3*time.Minute+time.Duration(i)*time.Second)
	}
	for i := range 6 {
		add(2, time.Duration(i)*20*time.Second)
	}
	n, at, svc := Most(spans, time.Minute)
	if n != 5 || at.PID != 1 || svc != "front" {
		t.Fatalf("most %d at %v (%s), want 5 at pid 1", n, at, svc)
	}
	if n, at, _ := Most(spans, 10*time.Minute); n != 8 || at.PID != 1 {
		t.Fatalf("10-min window: most %d at %v, want 8 at pid 1", n, at)
	}
	if n, _, _ := Most(nil, time.Minute); n != 0 {
		t.Fatalf("no spans: %d", n)
	}
}

func TestCounter(t *testing.T) {
	var seen []Repeated
	c := NewCounter(Bound{Exchanges: 3, Window: time.Minute}, 0, func(r Repeated) { seen = append(seen, r) })
	add := func(pid uint32, at time.Duration, xrid string) {
		s := server(pid, at, xrid)
		c.Add(&s)
	}
	// Unique ids never repeat, however many.
	for i := range 50 {
		add(1, time.Duration(i)*time.Millisecond, fmt.Sprintf("u%d", i))
	}
	// "batch" 5 times at pid 1 in one window: over the bound (3) once, by 2.
	for i := range 5 {
		add(1, time.Second+time.Duration(i)*time.Second, "batch")
	}
	// The same id 3 times at pid 2: within the bound.
	for i := range 3 {
		add(2, time.Second+time.Duration(i)*time.Second, "batch")
	}
	if st := c.Stats(); st.Keys != [2]uint64{1, 0} || st.Exchanges != [2]uint64{2, 0} || st.Untracked != 0 {
		t.Fatalf("stats %+v, want one key, two exchanges beyond", st)
	}
	if len(seen) != 1 || seen[0].Key.S != "batch" || seen[0].Point.PID != 1 || seen[0].Exchanges != 4 {
		t.Fatalf("reported %+v", seen)
	}
	// The next window starts over: 4 more is over the bound again; a late
	// span of the first window still counts there (its 6th exchange).
	for i := range 4 {
		add(1, time.Minute+time.Duration(i)*time.Second, "batch")
	}
	add(1, 30*time.Second, "batch")
	if st := c.Stats(); st.Keys != [2]uint64{2, 0} || st.Exchanges != [2]uint64{4, 0} {
		t.Fatalf("after the second window: %+v", st)
	}
	// Windows two on: the first one's spans are too old to count.
	add(1, 3*time.Minute, "batch")
	add(1, 10*time.Second, "batch")
	if st := c.Stats(); st.Exchanges != [2]uint64{4, 0} {
		t.Fatalf("a span two windows old was counted: %+v", st)
	}
	// A trace id counts apart from X-Request-IDs.
	tid, _ := span.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	for i := range 4 {
		s := server(3, 3*time.Minute+time.Duration(i)*time.Second, "")
		s.TraceID = tid
		c.Add(&s)
	}
	if st := c.Stats(); st.Keys != [2]uint64{2, 1} || st.Exchanges != [2]uint64{4, 1} {
		t.Fatalf("trace ids: %+v", st)
	}
}

func TestCounterCapacity(t *testing.T) {
	c := NewCounter(Bound{Exchanges: 1, Window: time.Minute}, 4, nil)
	for i := range 10 {
		s := server(1, time.Duration(i)*time.Millisecond, fmt.Sprintf("id%d", i))
		c.Add(&s)
	}
	// Four tracked keys; the six others not. A tracked key still counts.
	for range 2 {
		s := server(1, 20*time.Millisecond, "id0")
		c.Add(&s)
	}
	if st := c.Stats(); st.Untracked != 6 || st.Keys[0] != 1 || st.Exchanges[0] != 2 {
		t.Fatalf("stats %+v, want 6 untracked, id0 over the bound by 2", st)
	}
}

// BenchmarkCounterAdd: the collector's cost per span (an s-p span with an
// X-Request-ID, mostly unique ids as in a mesh).
func BenchmarkCounterAdd(b *testing.B) {
	c := NewCounter(Bound{}, 0, nil)
	spans := make([]span.Span, 4096) // ids cycle every 4 s: each seen ~15 times a window, below the bound
	for i := range spans {
		spans[i] = server(uint32(1+i%8), time.Duration(i)*time.Millisecond, fmt.Sprintf("%08x-4b2a-49f0-a7e1-%012x", i, i*7919))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := &spans[i%len(spans)]
		s.StartNs = t0 + int64(i)*int64(time.Millisecond) // a thousand exchanges a second
		c.Add(s)
	}
}

// TestMostTie: points with as many exchanges: the one whose name sorts
// first, whatever the order the points are met in.
func TestMostTie(t *testing.T) {
	var spans []*span.Span
	for _, pid := range []uint32{3, 20, 12, 7} {
		n := 2
		if pid == 7 {
			n = 1
		}
		for i := range n {
			s := server(pid, time.Duration(i)*time.Second, "x")
			spans = append(spans, &s)
		}
	}
	nic := span.Span{Node: "n1", SignalSource: span.SourcePacket, TapSide: span.TapServerNIC, CaptureNIC: "eth0", StartNs: t0}
	for round := range 50 { // the points are met in map order
		n, at, _ := Most(spans, time.Minute)
		if n != 2 || at.PID != 12 {
			t.Fatalf("round %d: most %d at %v, want 2 at pid 12 (%q sorts before %q and %q)", round, n, at,
				"pid 12 on n1", "pid 20 on n1", "pid 3 on n1")
		}
		withNIC := append(spans[:len(spans):len(spans)], &nic, &nic)
		if n, at, _ := Most(withNIC, time.Minute); n != 2 || at.NIC != "eth0" {
			t.Fatalf("round %d: most %d at %v, want 2 at %q", round, n, at, "eth0 s on n1")
		}
	}
}
