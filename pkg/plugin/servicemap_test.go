package plugin

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

func column(t *testing.T, f *data.Frame, name string) []string {
	t.Helper()
	fld, _ := f.FieldByName(name)
	if fld == nil {
		t.Fatalf("frame %s has no field %s", f.Name, name)
	}
	out := make([]string, fld.Len())
	for i := range out {
		out[i] = fld.At(i).(string)
	}
	return out
}

func edgeList(t *testing.T, edges *data.Frame) []string {
	src, dst := column(t, edges, "source"), column(t, edges, "target")
	var out []string
	for i := range src {
		out = append(out, src[i]+" → "+dst[i])
	}
	sort.Strings(out)
	return out
}

// capturedLike makes generated spans look like a real capture: the service
// rules name every nginx "sidecar" (demo/bookinfo/collect.yaml), and the
// pod is known (withPod) or not.
func capturedLike(g *spangen.Generator, traces []spangen.Trace, withPod bool) []span.Span {
	proxy := map[uint32]bool{}
	for _, p := range g.Pods() {
		proxy[p.ProxyPID] = true
	}
	var out []span.Span
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if s.TapSide.IsProcess() && proxy[s.PID] {
				s.Service = "sidecar"
			}
			if withPod {
				s.NetNS = 0
			} else {
				s.Pod = ""
			}
			out = append(out, s)
		}
	}
	return out
}

// The Bookinfo topology as docs/architecture.md draws it: an app talks to
// its own sidecar, sidecars talk to sidecars.
var bookinfoEdges = []string{
	"details (proxy) → details",
	"loadgen (proxy) → productpage (proxy)",
	"loadgen → loadgen (proxy)",
	"productpage (proxy) → details (proxy)",
	"productpage (proxy) → productpage",
	"productpage (proxy) → reviews (proxy)",
	"productpage → productpage (proxy)",
	"ratings (proxy) → ratings",
	"reviews (proxy) → ratings (proxy)",
	"reviews (proxy) → reviews",
	"reviews → reviews (proxy)",
}

func TestServiceMapNamesEveryProxy(t *testing.T) {
	for _, withPod := range []bool{false, true} {
		g := spangen.New(spangen.Config{Seed: 3, Start: t0, Interval: 100 * time.Millisecond})
		spans := capturedLike(g, g.Next(5), withPod)
		nodes, edges := ServiceMapFrames(spans, nil)
		var want []string
		for app := range g.Pods() {
			want = append(want, app, app+" (proxy)")
		}
		sort.Strings(want)
		if d := cmp.Diff(want, column(t, nodes, "id")); d != "" {
			t.Errorf("pod known %v: nodes (-want +got):\n%s", withPod, d)
		}
		if d := cmp.Diff(bookinfoEdges, edgeList(t, edges)); d != "" {
			t.Errorf("pod known %v: edges (-want +got):\n%s", withPod, d)
		}
	}
}

// TestServiceMapPodsWithoutServices: spans that carry a pod but no service
// (no rule matched) are named by their pod, proxies by the pod's app.
func TestServiceMapPodsWithoutServices(t *testing.T) {
	g := spangen.New(spangen.Config{Seed: 3, Start: t0, Interval: 100 * time.Millisecond})
	spans := capturedLike(g, g.Next(5), true)
	for i := range spans {
		spans[i].Service = ""
	}
	nodes, edges := ServiceMapFrames(spans, nil)
	var want []string
	var rename []string
	for app, p := range g.Pods() {
		want = append(want, p.Name, p.Name+" (proxy)")
		rename = append(rename, app, p.Name)
	}
	sort.Strings(want)
	if d := cmp.Diff(want, column(t, nodes, "id")); d != "" {
		t.Errorf("nodes (-want +got):\n%s", d)
	}
	var wantEdges []string
	for _, e := range bookinfoEdges {
		wantEdges = append(wantEdges, strings.NewReplacer(rename...).Replace(e))
	}
	sort.Strings(wantEdges)
	if d := cmp.Diff(wantEdges, edgeList(t, edges)); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
}

// TestServiceMapFilterKeepsCallee: filtering by a service keeps the edges
// into it and out of it whole, so no edge ends at an address.
func TestServiceMapFilterKeepsCallee(t *testing.T) {
	g := spangen.New(spangen.Config{Seed: 3, Start: t0, Interval: 100 * time.Millisecond})
	spans := capturedLike(g, g.Next(5), false)
	_, edges := ServiceMapFrames(spans, Strings{"ratings"})
	want := []string{"ratings (proxy) → ratings", "reviews (proxy) → ratings (proxy)"}
	if d := cmp.Diff(want, edgeList(t, edges)); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
	_, edges = ServiceMapFrames(spans, Strings{"reviews"})
	want = []string{"productpage (proxy) → reviews (proxy)", "reviews (proxy) → ratings (proxy)",
		"reviews (proxy) → reviews", "reviews → reviews (proxy)"}
	if d := cmp.Diff(want, edgeList(t, edges)); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
}

// TestServiceMapPairsBySeqAndAddresses: two requests that happen to start
// at the same 32-bit tcp sequence number, on different connections, go to
// their own servers.
func TestServiceMapPairsBySeqAndAddresses(t *testing.T) {
	ap := netip.MustParseAddrPort
	mk := func(tap span.TapSide, svc string, c, s netip.AddrPort) span.Span {
		return span.Span{TapSide: tap, Service: svc, ReqTCPSeq: 4242, ClientIP: c.Addr(), ClientPort: c.Port(),
			ServerIP: s.Addr(), ServerPort: s.Port(), StartNs: 1, EndNs: 2}
	}
	spans := []span.Span{
		mk(span.TapClientProcess, "a", ap("10.0.0.1:40000"), ap("10.0.0.2:80")),
		mk(span.TapServerProcess, "b", ap("10.0.0.1:40000"), ap("10.0.0.2:80")),
		mk(span.TapClientProcess, "c", ap("10.0.0.3:50000"), ap("10.0.0.4:80")),
		mk(span.TapServerProcess, "d", ap("10.0.0.3:50000"), ap("10.0.0.4:80")),
		// Behind a DNAT the client sees a virtual address; its own port still pairs it.
		mk(span.TapClientProcess, "e", ap("10.0.0.5:50001"), ap("10.96.0.1:80")),
		mk(span.TapServerProcess, "f", ap("10.0.0.5:50001"), ap("10.0.0.6:8080")),
	}
	_, edges := ServiceMapFrames(spans, nil)
	want := []string{"a → b", "c → d", "e → f"}
	if d := cmp.Diff(want, edgeList(t, edges)); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
}

// TestSpanCapIsANotice: a service map or metrics query that reads as many
// spans as the cap says so on its frame.
func TestSpanCapIsANotice(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, spangen.New(spangen.Config{Seed: 11, Start: t0, Interval: 200 * time.Millisecond}).Next(6))
	d := newDS(t, dir)
	defer func(n int) { spanCap = n }(spanCap)
	for _, c := range []struct {
		cap    int
		notice bool
	}{{50, true}, {100000, false}} {
		spanCap = c.cap
		for _, qt := range []string{"serviceMap", "metrics"} {
			r := run(t, d, map[string]any{"queryType": qt}, t0.Add(-time.Minute), t0.Add(time.Minute))
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			var notes []string
			if m := r.Frames[0].Meta; m != nil {
				for _, n := range m.Notices {
					notes = append(notes, n.Text)
				}
			}
			want := []string{"only the newest 50 spans of the range were read: narrow the range or filter"}
			if !c.notice {
				want = nil
			}
			if d := cmp.Diff(want, notes); d != "" {
				t.Errorf("%s, cap %d: notices (-want +got):\n%s", qt, c.cap, d)
			}
		}
	}
}

// TestMetricsBuckets: whatever the range and step, at most 2001 buckets,
// never a negative count.
func TestMetricsBuckets(t *testing.T) {
	for _, c := range []struct {
		from, to time.Time
		step     time.Duration
	}{
		{time.Unix(0, 0), time.Unix(0, 1<<63-1), time.Nanosecond},
		{time.Unix(0, 0), time.Unix(0, 1<<63-1), 0},
		{t0, t0.Add(time.Second), time.Hour},
		{t0, t0, time.Second},
		{t0.Add(time.Hour), t0, time.Second}, // reversed: one bucket
	} {
		bk := NewBuckets(c.from.UnixNano(), c.to.UnixNano(), c.step)
		f := MetricsFrame(nil, bk, MetricRate, true, TraceLink{})
		if n := f[0].Rows(); n < 1 || n > 2001 || n != bk.N {
			t.Errorf("%v to %v step %v: %d buckets", c.from, c.to, c.step, n)
		}
		for i := 0; i < bk.N; i++ {
			if s := bk.Seconds(i); s <= 0 || s > bk.Step.Seconds() {
				t.Fatalf("%v to %v step %v: bucket %d covers %v s", c.from, c.to, c.step, i, s)
			}
		}
	}
}
