//go:build linux

package bookinfo

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/spangen"
)

// pointsPerRequest is the number of spans one request yields when nothing is
// lost: the observation points of spangen.Points (24 eBPF, 14 packet).
const pointsPerRequest = 38

// traceSpan is one span of an assembled trace as the judge sees it: its
// point (label) and request (marker) come from the ground truth, never from
// the tracer.
type traceSpan struct {
	id, parent string // as the trace frame has them ("" parent: a root)
	stored     bool   // the span is in the store
	label      string // observation point (demo.label)
	marker     string // request, "" when the ground truth has none
}

// verdict is one trace judged against the request it was asked for.
type verdict struct {
	found    int      // spans of the request in the trace, each at a point of the request path, once
	foreign  []string // spans of another request, of no known request, or not in the store
	misplace []string // spans of the request at an unknown or repeated point, or under the wrong parent
}

// clean reports whether the trace is correct: no foreign span, every span
// of the request at its own point under its expected parent.
func (v verdict) clean() bool { return len(v.foreign) == 0 && len(v.misplace) == 0 }

// judge checks a trace assembled for request marker against the expected
// tree (label → parent label, spangen.Points). A span's expected parent is
// its nearest ancestor in that tree that the trace holds, and it is a root
// when the trace holds none of its ancestors: a span the capture lost or
// the assembly did not link leaves a gap, never a licence to hang a span
// elsewhere (the assembler's network chains and links between sets close
// such gaps over the nearest ancestor, docs/assembly.md). Completeness is
// found out of pointsPerRequest; a trace is correct when clean.
func judge(tree map[string]string, marker string, spans []traceSpan) verdict {
	var v verdict
	mine := map[string]string{} // span id → label, for the request's spans at a known point
	labelOf, markerOf := map[string]string{}, map[string]string{}
	for _, s := range spans {
		labelOf[s.id], markerOf[s.id] = s.label, s.marker
	}
	// under names a foreign span's parent: where the trace attached it.
	under := func(s traceSpan) string {
		if s.parent == "" {
			return "a root"
		}
		return fmt.Sprintf("under %s (request %q)", labelOf[s.parent], markerOf[s.parent])
	}
	// Foreign spans hung under one of the request's come first: they show
	// where the wrong link was made.
	spans = slices.Clone(spans)
	slices.SortStableFunc(spans, func(a, b traceSpan) int {
		att := func(s traceSpan) bool { return s.marker != marker && s.parent != "" && markerOf[s.parent] == marker }
		return cmp.Compare(b2i(!att(a)), b2i(!att(b)))
	})
	seen := map[string]int{}
	for _, s := range spans {
		switch {
		case !s.stored:
			v.foreign = append(v.foreign, fmt.Sprintf("%s (not in the store), %s", s.id, under(s)))
		case s.marker == "":
			v.foreign = append(v.foreign, fmt.Sprintf("%s %s (no ground truth), %s", s.id, s.label, under(s)))
		case s.marker != marker:
			v.foreign = append(v.foreign, fmt.Sprintf("%s %s (request %s), %s", s.id, s.label, s.marker, under(s)))
		default:
			seen[s.label]++
		}
	}
	for _, s := range spans {
		if !s.stored || s.marker != marker {
			continue
		}
		if _, known := tree[s.label]; !known || seen[s.label] != 1 {
			v.misplace = append(v.misplace, fmt.Sprintf("%s %q: a point seen %d times in the trace (known to the request path: %v)",
				s.id, s.label, seen[s.label], known))
			continue
		}
		mine[s.id] = s.label
	}
	present := map[string]bool{}
	for _, l := range mine {
		present[l] = true
	}
	for _, s := range spans {
		l, ok := mine[s.id]
		if !ok {
			continue
		}
		v.found++
		want := tree[l]
		for want != "" && !present[want] {
			want = tree[want]
		}
		_, inTrace := labelOf[s.parent]
		pl, parentMine := mine[s.parent]
		wantText := strconv.Quote(want)
		if want == "" {
			wantText = "none (a root)"
		}
		switch {
		case s.parent == "" && want == "":
		case s.parent == "":
			v.misplace = append(v.misplace, fmt.Sprintf("%s %q is a root, want it under %s", s.id, l, wantText))
		case !inTrace:
			v.misplace = append(v.misplace, fmt.Sprintf("%s %q has parent %s, which is not in the trace", s.id, l, s.parent))
		case !parentMine || pl != want:
			v.misplace = append(v.misplace, fmt.Sprintf("%s %q has parent %q, want %s", s.id, l, labelOf[s.parent], wantText))
		}
	}
	return v
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// expectedTree is spangen.Points as label → parent label.
func expectedTree() map[string]string {
	tree := map[string]string{}
	for _, p := range spangen.Points() {
		tree[p.Label] = p.Parent
	}
	return tree
}

// wholeTrace is the correct trace of request marker: a span at every point
// of spangen.Points, ids from base+1 by position, parents by the tree.
func wholeTrace(marker string, base int) []traceSpan {
	points := spangen.Points()
	idOf := map[string]string{}
	for i, p := range points {
		idOf[p.Label] = strconv.Itoa(base + i + 1)
	}
	out := make([]traceSpan, len(points))
	for i, p := range points {
		out[i] = traceSpan{id: idOf[p.Label], parent: idOf[p.Parent], stored: true, label: p.Label, marker: marker}
	}
	return out
}

// TestJudge checks the judge on written-down traces of one request: the
// whole tree, gaps closed over the nearest ancestor, a part alone, and each
// way a trace can be wrong.
func TestJudge(t *testing.T) {
	tree := expectedTree()
	// whole builds the correct trace of request "a".
	whole := func() []traceSpan { return wholeTrace("a", 0) }
	at := func(spans []traceSpan, label string) int {
		for i, s := range spans {
			if s.label == label {
				return i
			}
		}
		t.Fatalf("no span at %q", label)
		return -1
	}
	drop := func(spans []traceSpan, label string) []traceSpan {
		i := at(spans, label)
		return append(spans[:i:i], spans[i+1:]...)
	}
	const (
		nd      = "productpage>details: node2-nic c-nd"
		ndChild = "productpage>details: node1-nic s-nd"
		ratings = "reviews>ratings: reviews c-p"
		details = "productpage>details: details s-p"
	)
	cases := []struct {
		name           string
		trace          func() []traceSpan
		found          int
		foreign, wrong int
	}{
		{"whole", whole, 38, 0, 0},
		{"a lost span, its child under the nearest ancestor", func() []traceSpan {
			s := whole()
			s[at(s, ndChild)].parent = s[at(s, "productpage>details: productpage-vnic c")].id
			return drop(s, nd)
		}, 37, 0, 0},
		{"a lost span, its child a root", func() []traceSpan {
			s := whole()
			s[at(s, ndChild)].parent = ""
			return drop(s, nd)
		}, 37, 0, 1},
		{"the reviews→ratings part alone", func() []traceSpan {
			var part []traceSpan
			for _, s := range whole() {
				if strings.HasPrefix(s.label, "reviews>ratings: ") {
					part = append(part, s)
				}
			}
			part[0].parent = ""
			return part
		}, 10, 0, 0},
		{"the reviews→ratings part a second root", func() []traceSpan {
			s := whole()
			s[at(s, ratings)].parent = ""
			return s
		}, 38, 0, 1},
		{"a span under the wrong parent", func() []traceSpan {
			s := whole()
			s[at(s, details)].parent = s[at(s, "productpage>reviews: reviews-proxy c-p")].id
			return s
		}, 38, 0, 1},
		{"a parent outside the trace", func() []traceSpan {
			s := whole()
			s[at(s, details)].parent = "999"
			return s
		}, 38, 0, 1},
		{"a span of another request", func() []traceSpan {
			s := whole()
			return append(s, traceSpan{id: "100", parent: s[0].id, stored: true, label: details, marker: "b"})
		}, 38, 1, 0},
		{"a part alone hung under another request's span", func() []traceSpan {
			s := whole()
			for i := range s {
				if !strings.HasPrefix(s[i].label, "reviews>ratings: ") {
					s[i].marker = "b"
				}
			}
			return s
		}, 10, 28, 1},
		{"a span of no known request", func() []traceSpan {
			return append(whole(), traceSpan{id: "100", parent: "1", stored: true, label: details})
		}, 38, 1, 0},
		{"a span not in the store", func() []traceSpan {
			return append(whole(), traceSpan{id: "100", parent: "1"})
		}, 38, 1, 0},
		{"a point twice", func() []traceSpan {
			s := whole()
			return append(s, traceSpan{id: "100", parent: s[at(s, "productpage>details: details-proxy c-p")].id, stored: true, label: details, marker: "a"})
		}, 37, 0, 2},
		{"a point not on the request path", func() []traceSpan {
			return append(whole(), traceSpan{id: "100", parent: "1", stored: true, label: "loadgen>productpage: ratings-vnic s", marker: "a"})
		}, 38, 0, 1},
	}
	for _, c := range cases {
		v := judge(tree, "a", c.trace())
		if v.found != c.found || len(v.foreign) != c.foreign || len(v.misplace) != c.wrong || v.clean() != (c.foreign+c.wrong == 0) {
			t.Errorf("%s: found %d, foreign %q, misplaced %q; want %d, %d, %d", c.name, v.found, v.foreign, v.misplace, c.found, c.foreign, c.wrong)
		}
	}
}
