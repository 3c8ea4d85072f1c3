package export

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// plainSource looks the window's spans up by walking them all: the
// reference for the window's indexed lookups.
type plainSource struct{ w *window }

func (p plainSource) Lookup(_ context.Context, from, to int64, keys []span.Key) ([]span.Span, error) {
	var out []span.Span
	var ks []span.Key
	for _, e := range p.w.byTime[p.w.head:] {
		var s span.Span
		e.decode(&s)
		if s.StartNs < from || s.StartNs > to {
			continue
		}
		ks = s.IndexKeys(ks[:0])
		for _, k := range ks {
			if slices.Contains(keys, k) {
				out = append(out, s)
				break
			}
		}
	}
	return out, nil
}
func (p plainSource) Get(ctx context.Context, from, to int64, ids []uint64) ([]span.Span, error) {
	return p.w.Get(ctx, from, to, ids)
}

// addSpans puts spans into the window as the exporter does: rows of a
// decoded Arrow record.
func addSpans(t testing.TB, w *window, spans []span.Span) {
	t.Helper()
	b := span.NewBuilder(memory.NewGoAllocator())
	defer b.Release()
	for i := range spans {
		b.Append(&spans[i])
	}
	r, err := span.NewRecord(b.NewRecord())
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Len() {
		w.add(r, i, 0)
	}
}

// TestWindowAssembleSame: assembling every span's trace over the window
// (its index by key and start) gives the traces assembly gives over a walk
// of every span (concurrent generated Bookinfo traces, so that lookups find other
// traces' spans too), and the spans of each trace are the generator's.
func TestWindowAssembleSame(t *testing.T) {
	gen := spangen.New(spangen.Config{Seed: 11, Start: time.Now().Add(-time.Minute), Interval: 2 * time.Millisecond}).Next(40)
	w := newWindow()
	var all []span.Span
	for _, tr := range gen {
		all = append(all, tr.Spans...)
	}
	addSpans(t, w, all)
	now := time.Now()
	cfg := trace.Config{Now: func() time.Time { return now }}
	refs := cfg
	refs.Refs = true
	refs.Scratch = new(trace.Scratch) // as the exporter assembles: each assembly reuses the last one's maps
	ctx := context.Background()
	for i := 0; i < len(all); i += 2 { // every other span: each trace seeded from many of its spans
		s := all[i]
		a, err := trace.AssembleFrom(ctx, w, cfg, []span.Span{s})
		if err != nil {
			t.Fatal(err)
		}
		b, err := trace.AssembleFrom(ctx, plainSource{w}, cfg, []span.Span{s})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("span %d (%d): the trace over the window's index differs from the trace over a walk of every span:\n%+v\n%+v", i, s.SpanID, a.Parents, b.Parents)
		}
		// As the exporter assembles: pointing at the window's spans
		// (Config.Refs) instead of copying them, over the maps of the
		// assembly before (Config.Scratch), the same trace.
		r, err := trace.AssembleFromRefs(ctx, w, refs, []*span.Span{w.byID[s.SpanID].span(&w.slab)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Spans != nil || len(r.Refs) != len(b.Spans) {
			t.Fatalf("span %d (%d): Refs: %d spans, %d refs; want no copies and %d refs", i, s.SpanID, len(r.Spans), len(r.Refs), len(b.Spans))
		}
		for k, ref := range r.Refs {
			if w.byID[ref.SpanID] == nil || ref != w.byID[ref.SpanID].ref {
				t.Fatalf("span %d (%d): Refs[%d] is not the window's span", i, s.SpanID, k)
			}
		}
		r.Spans, r.Refs = derefs(r.Refs), nil
		if !reflect.DeepEqual(r, b) {
			t.Fatalf("span %d (%d): the trace over the window's spans by reference differs from the trace of copies:\n%+v\n%+v", i, s.SpanID, r.Parents, b.Parents)
		}
	}
	// Ground truth: each generated trace assembles to its own spans.
	for ti, tr := range gen {
		a, err := trace.AssembleFrom(ctx, w, cfg, tr.Spans[:1])
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint64]bool{}
		for _, s := range tr.Spans {
			want[s.SpanID] = true
		}
		if len(a.Spans) != len(want) {
			t.Fatalf("trace %d: %d spans assembled, %d generated", ti, len(a.Spans), len(want))
		}
		for _, s := range a.Spans {
			if !want[s.SpanID] {
				t.Fatalf("trace %d: span %d is not the generator's", ti, s.SpanID)
			}
		}
	}
}

func derefs(refs []*span.Span) []span.Span {
	out := make([]span.Span, len(refs))
	for i, s := range refs {
		out[i] = *s
	}
	return out
}

// BenchmarkWindowAssemble: assembling generated Bookinfo traces (38 spans
// each) over the window, a trace an op, as the exporter does (the
// window's spans by reference).
func BenchmarkWindowAssemble(b *testing.B) {
	gen := spangen.New(spangen.Config{Seed: 3, Start: time.Now().Add(-time.Minute), Interval: 5 * time.Millisecond}).Next(500)
	w := newWindow()
	for _, tr := range gen {
		addSpans(b, w, tr.Spans)
	}
	now := time.Now()
	cfg := trace.Config{Now: func() time.Time { return now }, Refs: true, Scratch: new(trace.Scratch)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		seed := w.byID[gen[i%len(gen)].Spans[0].SpanID].span(&w.slab)
		if _, err := trace.AssembleFromRefs(context.Background(), w, cfg, []*span.Span{seed}); err != nil {
			b.Fatal(err)
		}
	}
}
