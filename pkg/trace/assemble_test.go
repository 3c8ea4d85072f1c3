package trace

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/inflight"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// The expected tree of one Bookinfo request, written down (label → parent);
// the generator's ground truth must agree with it (checked below).
var wantTree = map[string]string{
	"loadgen>productpage: loadgen c-p":           "",
	"loadgen>productpage: loadgen-proxy s-p":     "loadgen>productpage: loadgen c-p",
	"loadgen>productpage: loadgen-proxy c-p":     "loadgen>productpage: loadgen-proxy s-p",
	"loadgen>productpage: loadgen-vnic c":        "loadgen>productpage: loadgen-proxy c-p",
	"loadgen>productpage: productpage-vnic s":    "loadgen>productpage: loadgen-vnic c",
	"loadgen>productpage: productpage-proxy s-p": "loadgen>productpage: productpage-vnic s",
	"loadgen>productpage: productpage-proxy c-p": "loadgen>productpage: productpage-proxy s-p",
	"loadgen>productpage: productpage s-p":       "loadgen>productpage: productpage-proxy c-p",
	"productpage>details: productpage c-p":       "loadgen>productpage: productpage s-p",
	"productpage>details: productpage-proxy s-p": "productpage>details: productpage c-p",
	"productpage>details: productpage-proxy c-p": "productpage>details: productpage-proxy s-p",
	"productpage>details: productpage-vnic c":    "productpage>details: productpage-proxy c-p",
	"productpage>details: node2-nic c-nd":        "productpage>details: productpage-vnic c",
	"productpage>details: node1-nic s-nd":        "productpage>details: node2-nic c-nd",
	"productpage>details: details-vnic s":        "productpage>details: node1-nic s-nd",
	"productpage>details: details-proxy s-p":     "productpage>details: details-vnic s",
	"productpage>details: details-proxy c-p":     "productpage>details: details-proxy s-p",
	"productpage>details: details s-p":           "productpage>details: details-proxy c-p",
	"productpage>reviews: productpage c-p":       "loadgen>productpage: productpage s-p",
	"productpage>reviews: productpage-proxy s-p": "productpage>reviews: productpage c-p",
	"productpage>reviews: productpage-proxy c-p": "productpage>reviews: productpage-proxy s-p",
	"productpage>reviews: productpage-vnic c":    "productpage>reviews: productpage-proxy c-p",
	"productpage>reviews: node2-nic c-nd":        "productpage>reviews: productpage-vnic c",
	"productpage>reviews: node1-nic s-nd":        "productpage>reviews: node2-nic c-nd",
	"productpage>reviews: reviews-vnic s":        "productpage>reviews: node1-nic s-nd",
	"productpage>reviews: reviews-proxy s-p":     "productpage>reviews: reviews-vnic s",
	"productpage>reviews: reviews-proxy c-p":     "productpage>reviews: reviews-proxy s-p",
	"productpage>reviews: reviews s-p":           "productpage>reviews: reviews-proxy c-p",
	"reviews>ratings: reviews c-p":               "productpage>reviews: reviews s-p",
	"reviews>ratings: reviews-proxy s-p":         "reviews>ratings: reviews c-p",
	"reviews>ratings: reviews-proxy c-p":         "reviews>ratings: reviews-proxy s-p",
	"reviews>ratings: reviews-vnic c":            "reviews>ratings: reviews-proxy c-p",
	"reviews>ratings: node1-nic c-nd":            "reviews>ratings: reviews-vnic c",
	"reviews>ratings: node2-nic s-nd":            "reviews>ratings: node1-nic c-nd",
	"reviews>ratings: ratings-vnic s":            "reviews>ratings: node2-nic s-nd",
	"reviews>ratings: ratings-proxy s-p":         "reviews>ratings: ratings-vnic s",
	"reviews>ratings: ratings-proxy c-p":         "reviews>ratings: ratings-proxy s-p",
	"reviews>ratings: ratings s-p":               "reviews>ratings: ratings-proxy c-p",
}

// fill writes traces into a real store on disk, one node directory per node,
// and returns a reader over both.
func fill(t testing.TB, traces []spangen.Trace) *store.Reader {
	t.Helper()
	dir := t.TempDir()
	writers := map[string]*store.Writer{}
	for _, tr := range traces {
		for _, s := range tr.Spans {
			w := writers[s.Node]
			if w == nil {
				var err error
				w, err = store.OpenWriter(store.WriterOptions{Dir: dir, Node: s.Node, NoBackground: true})
				if err != nil {
					t.Fatal(err)
				}
				writers[s.Node] = w
			}
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range writers {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := store.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// check compares an assembled trace with the generator's ground truth of
// trace tr: every span of tr present, none foreign, each with its parent.
// It returns (found, correct) counts.
func check(t *testing.T, got *Trace, tr spangen.Trace, report bool) (found, correct int) {
	t.Helper()
	label := map[uint64]string{}
	wantParent := map[uint64]uint64{}
	for i, s := range tr.Spans {
		label[s.SpanID] = tr.Labels[i]
		if p := tr.Parents[i]; p >= 0 {
			wantParent[s.SpanID] = tr.Spans[p].SpanID
		}
	}
	for i, s := range got.Spans {
		l, ok := label[s.SpanID]
		if !ok {
			if report {
				t.Errorf("trace %d: foreign span %d (%s %s %s) in the trace", tr.Index, s.SpanID, s.Node, s.TapSide, s.RequestResource)
			}
			continue
		}
		found++
		var gp uint64
		if p := got.Parents[i]; p >= 0 {
			gp = got.Spans[p].SpanID
		}
		if gp == wantParent[s.SpanID] {
			correct++
		} else if report {
			t.Errorf("trace %d: %q has parent %q, want %q", tr.Index, l, label[gp], label[wantParent[s.SpanID]])
		}
	}
	if report && found != len(tr.Spans) {
		t.Errorf("trace %d: %d of %d spans found", tr.Index, found, len(tr.Spans))
	}
	return found, correct
}

func TestBookinfoTraceWhole(t *testing.T) {
	tr := spangen.New(spangen.Config{Seed: 1, Start: t0}).Next(1)[0]
	if len(tr.Spans) != len(wantTree) {
		t.Fatalf("generator gives %d spans, the written tree %d", len(tr.Spans), len(wantTree))
	}
	for i, l := range tr.Labels {
		want, ok := wantTree[l]
		gp := ""
		if p := tr.Parents[i]; p >= 0 {
			gp = tr.Labels[p]
		}
		if !ok || want != gp {
			t.Fatalf("generator ground truth for %q is %q, the written tree says %q", l, gp, want)
		}
	}
	r := fill(t, []spangen.Trace{tr})
	// From every span as the seed, the same whole trace comes back.
	var first *Trace
	for _, seed := range tr.Spans {
		got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(seed.SpanID), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		found, correct := check(t, got, tr, true)
		if found != 38 || correct != 38 || len(got.Spans) != 38 {
			t.Fatalf("seed %d: %d spans, %d found, %d correct parents", seed.SpanID, len(got.Spans), found, correct)
		}
		if first == nil {
			first = got
		} else if got.ID != first.ID {
			t.Fatalf("trace id depends on the seed: %s vs %s", got.ID, first.ID)
		}
	}
	// The derived trace id opens the same trace.
	again, err := Assemble(context.Background(), r, Config{}, first.ID, 0, 0)
	if err != nil || len(again.Spans) != 38 || again.ID != first.ID {
		t.Fatalf("by derived id %s: %v, %d spans, id %s", first.ID, err, len(again.Spans), again.ID)
	}
	roots := 0
	for _, p := range first.Parents {
		if p < 0 {
			roots++
		}
	}
	if roots != 1 {
		t.Errorf("%d roots, want 1", roots)
	}
}

func TestConcurrentTracesDoNotMix(t *testing.T) {
	// 50 requests 1 ms apart: each lasts several ms, so they overlap and share
	// proxies, threads of the pools and the event loop of ratings (checked:
	// how many are in flight at once).
	traces := spangen.New(spangen.Config{Seed: 5, Start: t0, Interval: time.Millisecond}).Next(50)
	var roots []span.Span
	for _, tr := range traces {
		roots = append(roots, tr.Spans[0])
	}
	// The generator is deterministic: with this seed, 11 requests are in
	// flight at once at the most (curl's spans).
	if n := inflight.Max(roots); n != 11 {
		t.Fatalf("%d requests in flight at once, want 11: the requests do not overlap as this test needs", n)
	}
	r := fill(t, traces)
	var found, correct, total int
	for _, tr := range traces {
		got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(tr.Spans[0].SpanID), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		f, c := check(t, got, tr, true)
		if len(got.Spans) != f {
			t.Errorf("trace %d: %d spans, %d of them its own", tr.Index, len(got.Spans), f)
		}
		found, correct, total = found+f, correct+c, total+len(tr.Spans)
	}
	t.Logf("50 concurrent traces: completeness %d/%d, correct parents %d/%d", found, total, correct, total)
}

func TestLostSpansStillOneTree(t *testing.T) {
	drops := []string{
		"productpage>details: node1-nic s-nd",     // a dropped packet
		"productpage>reviews: productpage-vnic c", // another
		"productpage>reviews: reviews-proxy c-p",  // a lost process span (the proxy leg to the app)
	}
	gen := spangen.New(spangen.Config{Seed: 8, Start: t0, DropPoints: drops, TimeoutRate: 1})
	tr := gen.Next(1)[0]
	r := fill(t, []spangen.Trace{tr})
	got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(tr.Spans[0].SpanID), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	found, _ := check(t, got, tr, false)
	if found != len(tr.Spans) || len(got.Spans) != len(tr.Spans) {
		t.Fatalf("%d of %d spans found (%d returned)", found, len(tr.Spans), len(got.Spans))
	}
	roots := 0
	for i, p := range got.Parents {
		if p < 0 {
			roots++
			continue
		}
		if got.Spans[p].StartNs > got.Spans[i].StartNs+int64(60*time.Millisecond) {
			t.Errorf("span %d starts before its parent", got.Spans[i].SpanID)
		}
	}
	if roots != 1 {
		for i, s := range got.Spans {
			t.Logf("%d %s %s %s parent %d", s.SpanID, s.Node, s.TapSide, s.RequestResource, got.Parents[i])
		}
		t.Fatalf("%d roots with dropped spans, want one tree", roots)
	}
	var timeout bool
	for _, s := range got.Spans {
		timeout = timeout || s.ResponseStatus == span.StatusTimeout || s.ResponseCode == 504
	}
	if !timeout {
		t.Error("the timed-out call is not in the trace")
	}
}

func TestSkewedClocks(t *testing.T) {
	gen := spangen.New(spangen.Config{Seed: 9, Start: t0, Interval: 3 * time.Millisecond,
		NodeSkew: map[string]time.Duration{spangen.Node1: 40 * time.Millisecond}})
	traces := gen.Next(10)
	r := fill(t, traces)
	for _, tr := range traces {
		got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(tr.Spans[0].SpanID), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		f, c := check(t, got, tr, true)
		if f != 38 || c != 38 {
			t.Fatalf("trace %d with node1 40 ms ahead: %d found, %d correct", tr.Index, f, c)
		}
	}
}

func TestDeterministicAndCapped(t *testing.T) {
	traces := spangen.New(spangen.Config{Seed: 2, Start: t0, Interval: time.Millisecond}).Next(5)
	r := fill(t, traces)
	a, _ := Assemble(context.Background(), r, Config{}, fmt.Sprint(traces[2].Spans[0].SpanID), 0, 0)
	b, _ := Assemble(context.Background(), r, Config{}, fmt.Sprint(traces[2].Spans[0].SpanID), 0, 0)
	if fmt.Sprint(a.Parents) != fmt.Sprint(b.Parents) || a.ID != b.ID {
		t.Fatal("two assemblies of one trace differ")
	}
	c, err := Assemble(context.Background(), r, Config{MaxSpans: 10}, fmt.Sprint(traces[2].Spans[0].SpanID), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Spans) > 10 || len(c.Warnings) == 0 || !strings.Contains(strings.Join(c.Warnings, ";"), "truncated") {
		t.Fatalf("size cap: %d spans, warnings %v", len(c.Spans), c.Warnings)
	}
	if _, err := Assemble(context.Background(), r, Config{}, "123456789", 0, 0); err == nil {
		t.Fatal("unknown span id assembled")
	}
	// No cycles: walking up from any span ends at a root.
	for i := range a.Spans {
		p, steps := i, 0
		for p >= 0 && steps <= len(a.Spans) {
			p, steps = a.Parents[p], steps+1
		}
		if p >= 0 {
			t.Fatal("cycle")
		}
	}
}
