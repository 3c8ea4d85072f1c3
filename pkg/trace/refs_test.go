package trace

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// refSource hands out its spans by reference (a RefSource), walking them
// all for each lookup.
type refSource struct{ spans []span.Span }

func (r *refSource) LookupRefs(_ context.Context, from, to int64, keys []span.Key) ([]*span.Span, error) {
	var out []*span.Span
	var ks []span.Key
	for i := range r.spans {
		s := &r.spans[i]
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

func (r *refSource) Lookup(ctx context.Context, from, to int64, keys []span.Key) ([]span.Span, error) {
	refs, err := r.LookupRefs(ctx, from, to, keys)
	var out []span.Span
	for _, s := range refs {
		out = append(out, *s)
	}
	return out, err
}

func (r *refSource) Get(_ context.Context, from, to int64, ids []uint64) ([]span.Span, error) {
	var out []span.Span
	for _, s := range r.spans {
		if slices.Contains(ids, s.SpanID) {
			out = append(out, s)
		}
	}
	return out, nil
}

// TestRefsSameTraceSourceUnchanged: assembly by reference (Config.Refs
// over a RefSource) gives the trace assembly of copies gives, and leaves
// the source's spans as they were, also where the trace names TLS flights
// (the flights the trace renames are copies; every other span of the trace
// is the source's own).
func TestRefsSameTraceSourceUnchanged(t *testing.T) {
	const base = int64(1_800_000_000_000_000_000)
	hop := meshHop(base, 100, 0xfffffff0, 77_000, 40001)
	pristine := slices.Clone(hop)
	src := &refSource{spans: hop}
	ctx := context.Background()
	renamed := 0
	scratch := new(Scratch) // reused by every assembly by reference
	for i := range hop {
		want, err := AssembleFrom(ctx, src, Config{}, []span.Span{pristine[i]})
		if err != nil {
			t.Fatal(err)
		}
		got, err := AssembleFromRefs(ctx, src, Config{Refs: true, Scratch: scratch}, []*span.Span{&src.spans[i]})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(src.spans, pristine) {
			t.Fatalf("seed %d: assembly by reference changed the source's spans", i)
		}
		if got.Spans != nil || len(got.Refs) != len(want.Spans) {
			t.Fatalf("seed %d: %d spans and %d refs, want no copies and %d refs", i, len(got.Spans), len(got.Refs), len(want.Spans))
		}
		for k, ref := range got.Refs {
			j := slices.IndexFunc(src.spans, func(s span.Span) bool { return s.SpanID == ref.SpanID })
			if ref != &src.spans[j] {
				if ref.L7Protocol == src.spans[j].L7Protocol {
					t.Fatalf("seed %d: ref %d is a copy of a span the trace did not rename", i, k)
				}
				renamed++
			}
		}
		copies := make([]span.Span, got.Len())
		for k := range copies {
			copies[k] = *got.Span(k)
		}
		got.Spans, got.Refs = copies, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: by reference\n%s\nof copies\n%s", i, describe(got), describe(want))
		}
	}
	if renamed == 0 {
		t.Fatal("no TLS flight was named: the case does not test the copy")
	}
}
