package spangen

import "github.com/zerotrace/zerotrace/pkg/span"

// Point is one observation point of the Bookinfo trace.
type Point struct {
	Label   string // "<caller>><callee>: <observer> <tap side>"
	Parent  string // label of the expected parent, "" for the root
	TapSide span.TapSide
	Source  span.SignalSource
	Node    string
}

// Points returns the 38 observation points of one Bookinfo request in causal
// order, each with its expected parent: 24 process spans and 14 packet spans.
func Points() []Point {
	t := New(Config{Seed: 1}).Next(1)[0]
	pts := make([]Point, len(t.Spans))
	for i, s := range t.Spans {
		pts[i] = Point{Label: t.Labels[i], TapSide: s.TapSide, Source: s.SignalSource, Node: s.Node}
		if p := t.Parents[i]; p >= 0 {
			pts[i].Parent = t.Labels[p]
		}
	}
	return pts
}
