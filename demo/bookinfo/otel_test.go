//go:build linux

package bookinfo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/inflight"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// TestOTLPIngest runs the otel variant (reviews in Go instrumented with the
// OpenTelemetry SDK's otelhttp, exporting OTLP/HTTP to its node's
// collector; productpage sending a traceparent), sends 20 sequential and 32
// concurrent requests (another 32 while no batch overlapped enough, at most
// overlapRounds batches: traffic), and asks the plugin binary for each
// request's trace from curl's span and from a random span of the request (SDK spans among
// the candidates; the seed is printed, ZT_OTLP_SEED repeats it). Ground
// truth: the marker every service logs for eBPF and packet spans, the
// attribute zt.marker reviews sets on its SDK server span and the SDK's own
// parent ids for its client span — never the tracer's joins. A trace is
// joined when it holds both SDK spans of its request with the SDK server
// span under reviews' eBPF server span, the SDK client span under the SDK
// server span and reviews' eBPF call to ratings under the SDK client span;
// any span of another request in any trace fails the test. It prints
//
//	otlp ingest: <joined>/<traces> traces joined
func TestOTLPIngest(t *testing.T) {
	requireDemo(t, "go")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ZT_OTLP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("ZT_OTLP_SEED: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 27))
	bin := buildBinaries(t)
	d := startDemo(t, bin, "otel")
	seq, conc, o := d.traffic(t, sequentialRequests, concurrentRequests, minOverlap)

	// The SDK spans and their requests.
	sdkMarker := map[uint64]string{}
	var sdk []span.Span
	for _, s := range o.all {
		if s.SignalSource != span.SourceOTel {
			continue
		}
		sdk = append(sdk, s)
		var attrs map[string]any
		if json.Unmarshal([]byte(s.Attributes), &attrs) == nil {
			if m, ok := attrs["zt.marker"].(string); ok {
				sdkMarker[s.SpanID] = m
			}
		}
	}
	serverOf := map[string]span.Span{} // marker → its SDK server span
	for _, s := range sdk {
		if m, ok := sdkMarker[s.SpanID]; ok && s.Kind == span.KindServer {
			serverOf[m] = s
		}
	}
	clientOf := map[string]span.Span{}
	for _, s := range sdk {
		if s.Kind != span.KindClient {
			continue
		}
		for m, srv := range serverOf {
			if s.ParentSpanID == srv.SpanID && s.TraceID == srv.TraceID {
				sdkMarker[s.SpanID] = m
				clientOf[m] = s
			}
		}
	}
	markerOf := func(id uint64) (string, bool) {
		if m, ok := o.marker[id]; ok {
			return m, true
		}
		m, ok := sdkMarker[id]
		return m, ok
	}
	spansOf := map[string][]uint64{}
	curlOf := map[string]uint64{}
	ebpfServer, ebpfCall := map[string]uint64{}, map[string]uint64{}
	for _, s := range o.all {
		m, ok := markerOf(s.SpanID)
		if !ok {
			continue
		}
		spansOf[m] = append(spansOf[m], s.SpanID)
		switch l := d.label(s); {
		case s.TapSide == span.TapClientProcess && s.ProcessName == "curl":
			curlOf[m] = s.SpanID
		case s.SignalSource == span.SourceEBPF && l == "productpage>reviews: reviews s-p":
			ebpfServer[m] = s.SpanID
		case s.SignalSource == span.SourceEBPF && l == "reviews>ratings: reviews c-p":
			ebpfCall[m] = s.SpanID
		}
	}
	// The concurrent requests, whose traces the joins must keep apart, were
	// in flight together (curl's spans; traffic asserts the floor of one
	// batch); the sequential ones never.
	type overlapMode struct {
		name     string
		markers  []string
		min, max int
	}
	modes := []overlapMode{{"sequential", seq, 1, 1}}
	markers := append([]string(nil), seq...)
	for i, batch := range conc {
		modes = append(modes, overlapMode{concurrentName(i), batch, 0, len(batch)})
		markers = append(markers, batch...)
	}
	for _, mode := range modes {
		var curls []span.Span
		for _, m := range mode.markers {
			if id, ok := curlOf[m]; ok {
				curls = append(curls, o.byID[id])
			}
		}
		n := inflight.Max(curls)
		t.Logf("otlp ingest %s: at most %d requests in flight at once", mode.name, n)
		if n < mode.min || n > mode.max {
			t.Errorf("otlp ingest %s: at most %d requests in flight at once, want %d to %d", mode.name, n, mode.min, mode.max)
		}
	}
	for _, m := range markers {
		if _, ok := serverOf[m]; !ok {
			t.Errorf("%s: the SDK's server span was not stored", m)
		}
		if _, ok := clientOf[m]; !ok {
			t.Errorf("%s: the SDK's client span was not stored", m)
		}
	}
	if len(sdk) != 2*len(markers)+countProbes(sdk, sdkMarker) {
		t.Errorf("%d SDK spans stored, want 2 per request (%d requests)", len(sdk), len(markers))
	}

	var joined, traces, clean int
	for _, m := range markers {
		own := spansOf[m]
		if len(own) == 0 || curlOf[m] == 0 {
			t.Errorf("%s: no stored spans or no curl span", m)
			continue
		}
		for k, seed := range []uint64{curlOf[m], own[rng.IntN(len(own))]} {
			traces++
			tr, err := d.trace(seed)
			if err != nil {
				t.Errorf("%s: trace from %s: %v", m, span.FormatSpanID(seed), err)
				continue
			}
			parent := map[uint64]uint64{}
			var foreign []string
			for i, id := range tr.ids {
				n := spanID(id)
				if tr.parents[i] != "" {
					parent[n] = spanID(tr.parents[i])
				}
				if got, ok := markerOf(n); !ok || got != m {
					foreign = append(foreign, fmt.Sprintf("%s %q (request %q)", id, tr.names[i], got))
				}
			}
			if len(foreign) > 0 {
				t.Errorf("%s: trace from %s holds %d foreign spans: %s", m, [2]string{"curl's span", "a random span"}[k],
					len(foreign), strings.Join(foreign, ", "))
				d.explain(t, o, seed, markerOf)
				continue
			}
			clean++
			srv, cli := serverOf[m].SpanID, clientOf[m].SpanID
			switch {
			case srv == 0 || cli == 0 || ebpfServer[m] == 0 || ebpfCall[m] == 0:
				t.Errorf("%s: request lacks spans (SDK server %x, client %x, eBPF server %x, call %x)", m, srv, cli, ebpfServer[m], ebpfCall[m])
			case parent[srv] != ebpfServer[m] || parent[cli] != srv || parent[ebpfCall[m]] != cli:
				t.Errorf("%s: trace from %s: SDK server under %x (want reviews s-p %x), SDK client under %x (want %x), reviews' call under %x (want %x)",
					m, span.FormatSpanID(seed), parent[srv], ebpfServer[m], parent[cli], srv, parent[ebpfCall[m]], cli)
			default:
				joined++
			}
		}
	}
	fmt.Printf("otlp ingest: %d/%d traces joined (seed %d: ZT_OTLP_SEED=%d repeats it; correctness %d/%d)\n", joined, traces, seed, seed, clean, traces)
	if joined != traces || clean != traces {
		t.Fatalf("%d/%d traces joined, %d/%d clean", joined, traces, clean, traces)
	}
}

// explain logs what the store holds for a seed whose trace was foreign:
// the spans of its id, and what its id finds read as a trace id.
func (d *demo) explain(t *testing.T, o observed, seed uint64, markerOf func(uint64) (string, bool)) {
	r, err := store.OpenReader(d.dataDirs...)
	if err != nil {
		t.Log(err)
		return
	}
	defer r.Close()
	ctx := context.Background()
	got, err := r.Get(ctx, 0, 0, []uint64{seed})
	t.Logf("  seed %s: Get finds %d span(s), %v", span.FormatSpanID(seed), len(got), err)
	for _, s := range got {
		m, _ := markerOf(s.SpanID)
		t.Logf("    %s %s %s %s node %s trace %s parent %x app %x request %q", span.FormatSpanID(s.SpanID), s.SignalSource, s.TapSide,
			s.OperationName(), s.Node, s.TraceID, s.ParentSpanID, s.AppSpanID, m)
	}
	if tid, ok := span.ParseTraceID(span.FormatSpanID(seed)); ok {
		byTrace, err := r.Lookup(ctx, 0, int64(^uint64(0)>>1), []span.Key{{Kind: span.KeyTraceID, T: tid}})
		t.Logf("  as a trace id %s: %d span(s), %v", tid, len(byTrace), err)
		for _, s := range byTrace[:min(3, len(byTrace))] {
			m, _ := markerOf(s.SpanID)
			t.Logf("    %s %s %s trace %s request %q", span.FormatSpanID(s.SpanID), s.SignalSource, s.TapSide, s.TraceID, m)
		}
	}
	if s, ok := o.byID[seed]; ok {
		t.Logf("  observed seed: %s %s trace %s parent %x", s.SignalSource, d.label(s), s.TraceID, s.ParentSpanID)
	}
	// The links that cross requests, with their evidence.
	tr, err := trace.Assemble(ctx, r, trace.Config{}, strconv.FormatUint(seed, 10), 0, 0)
	if err != nil {
		t.Logf("  assembling: %v", err)
		return
	}
	show := func(s *span.Span) string {
		m, _ := markerOf(s.SpanID)
		return fmt.Sprintf("%s %s %s %q node %s pid %d trace %s parent %x app %x [%d,%d] request %q", span.FormatSpanID(s.SpanID), s.SignalSource,
			s.TapSide, s.OperationName(), s.Node, s.PID, s.TraceID, s.ParentSpanID, s.AppSpanID, s.StartNs, s.EndNs, m)
	}
	seedMarker, _ := markerOf(seed)
	if dir := os.Getenv("ZT_OTLP_DUMP"); dir != "" { // every stored span, for a replay of the assembly
		b, _ := json.Marshal(o.all)
		os.WriteFile(filepath.Join(dir, "spans.json"), b, 0o644)
		mk := map[string]string{}
		for _, s := range o.all {
			if m, ok := markerOf(s.SpanID); ok {
				mk[span.FormatSpanID(s.SpanID)] = m
			}
		}
		b, _ = json.Marshal(map[string]any{"seed": span.FormatSpanID(seed), "markers": mk})
		os.WriteFile(filepath.Join(dir, "seed-"+span.FormatSpanID(seed)+".json"), b, 0o644)
	}
	ownKeys := map[span.Key][]int{}
	for i := range tr.Spans {
		if m, _ := markerOf(tr.Spans[i].SpanID); m == seedMarker {
			for _, k := range tr.Spans[i].IndexKeys(nil) {
				ownKeys[k] = append(ownKeys[k], i)
			}
		}
	}
	for i := range tr.Spans {
		m, _ := markerOf(tr.Spans[i].SpanID)
		if m == seedMarker {
			continue
		}
		if tr.Parents[i] < 0 {
			t.Logf("  foreign root: %s", show(&tr.Spans[i]))
		}
		for _, k := range tr.Spans[i].IndexKeys(nil) {
			for _, j := range ownKeys[k] {
				t.Logf("  shares %s %x %q %s:\n    foreign %s\n    own     %s", k.Kind, k.U, k.S, k.T, show(&tr.Spans[i]), show(&tr.Spans[j]))
			}
		}
	}
	for i, p := range tr.Parents {
		if p < 0 {
			continue
		}
		mi, _ := markerOf(tr.Spans[i].SpanID)
		mp, _ := markerOf(tr.Spans[p].SpanID)
		if mi != mp {
			t.Logf("  cross link (%s):\n    child  %s\n    parent %s", tr.Evidence[i], show(&tr.Spans[i]), show(&tr.Spans[p]))
		}
	}
}

// countProbes: SDK server spans of requests without a test marker (up's
// probe request) and their client spans.
func countProbes(sdk []span.Span, marker map[uint64]string) int {
	n := 0
	for _, s := range sdk {
		if m, ok := marker[s.SpanID]; !ok || m == "-" || m == "probe" {
			n++
		}
	}
	return n
}
