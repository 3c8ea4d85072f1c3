// Package inflight measures how concurrent a test's traffic really was: the
// largest number of spans in flight at one instant. Tests about concurrent
// requests assert it from the spans they captured (docs/testing.md), so
// that requests started together but served one after the other fail.
package inflight

import (
	"cmp"
	"slices"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Max is the largest number of spans whose [start, end] intervals overlap
// at one instant; intervals that only touch do not overlap.
func Max(spans []span.Span) int {
	type edge struct {
		at    int64
		delta int
	}
	edges := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		edges = append(edges, edge{s.StartNs, 1}, edge{s.EndNs, -1})
	}
	// at equal times an end comes first
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.delta, b.delta)) })
	n, most := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}
