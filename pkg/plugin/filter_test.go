package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestStreamPages: small pages over spans that share start instants (three
// spans at each of many instants, pages of 4 and 5 cutting through them)
// return every matching span once, newest first, for one search and for a
// list split into several.
func TestStreamPages(t *testing.T) {
	dir := t.TempDir()
	traces := spangen.New(spangen.Config{Seed: 9, Start: t0, Interval: 50 * time.Millisecond, ErrorRate: 0.3}).Next(8)
	var all []span.Span
	for i := range traces {
		for j := range traces[i].Spans {
			s := &traces[i].Spans[j]
			d := s.EndNs - s.StartNs
			s.StartNs -= s.StartNs % int64(3*time.Microsecond) // spans share instants
			s.EndNs = s.StartNs + d
			all = append(all, *s)
		}
	}
	fillStore(t, dir, traces)
	d := newDS(t, dir)
	defer func(n int) { pageSize = n }(pageSize)
	for _, ps := range []int{4, 5, 2000} {
		pageSize = ps
		for _, q := range []Query{
			{},
			{Service: Strings{"reviews", "ratings"}},
			{Node: Strings{"node2"}, codes: []codeRange{{500, 599}}},
		} {
			want := map[uint64]bool{}
			for i := range all {
				if q.match(&all[i]) {
					want[all[i].SpanID] = true
				}
			}
			st := d.stream(d.reader, &q, 0, t0.Add(time.Hour).UnixNano(), nil, 3)
			got := st.take(context.Background(), 100000)
			seen := map[uint64]bool{}
			for i, s := range got {
				if seen[s.SpanID] || !want[s.SpanID] {
					t.Fatalf("page %d, %+v: span %d returned twice or not matching", ps, q, s.SpanID)
				}
				seen[s.SpanID] = true
				if i > 0 && newer(&s, &got[i-1]) {
					t.Fatalf("page %d: not newest first at %d", ps, i)
				}
			}
			if len(seen) != len(want) || len(want) == 0 {
				t.Errorf("page %d, %+v: %d spans, want %d", ps, q, len(seen), len(want))
			}
		}
	}
}
