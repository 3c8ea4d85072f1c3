package trace

import (
	"sort"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// link sets the parents of a related span set (docs/assembly.md "Parents")
// and picks the trace id ("Trace ids").
func link(cfg *Config, spans []*span.Span, contains map[uint64]containedIn) *Trace {
	l := newLinker(cfg, spans)
	l.networkSets()
	l.nameTLS()
	// SDK spans join by the trace context (sdkjoin.go).
	joinSDK(cfg, l.spans, l.parent, l.setParent)
	l.processSets(contains)
	l.linkSets()
	t := &Trace{Parents: l.parent, Evidence: l.evidence, ID: traceID(cfg, l.spans, l.parent)}
	if cfg.Refs {
		t.Refs = l.spans
		return t
	}
	t.Spans = make([]span.Span, len(l.spans))
	for i, s := range l.spans {
		t.Spans[i] = *s
	}
	return t
}

// linker holds the parents of a span set while link's steps set them, and
// the network sets (a union-find over span indexes).
type linker struct {
	cfg      *Config
	spans    []*span.Span // by start, then span id
	parent   []int        // -1: a root
	evidence []Evidence
	set      []int // network sets: find gives a set's representative
}

// newLinker sorts the spans (pointers: a span is large).
func newLinker(cfg *Config, spans []*span.Span) *linker {
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].StartNs != spans[j].StartNs {
			return spans[i].StartNs < spans[j].StartNs
		}
		return spans[i].SpanID < spans[j].SpanID
	})
	n := len(spans)
	l := &linker{cfg: cfg, spans: spans, parent: make([]int, n), evidence: make([]Evidence, n), set: make([]int, n)}
	for i := range l.parent {
		l.parent[i] = -1
		l.set[i] = i
	}
	return l
}

// isAncestor reports whether a is b or above b.
func (l *linker) isAncestor(a, b int) bool {
	for steps := 0; b >= 0 && steps <= len(l.spans); steps++ {
		if a == b {
			return true
		}
		b = l.parent[b]
	}
	return false
}

// setParent makes p the parent of child unless that would close a cycle.
func (l *linker) setParent(child, p int, ev Evidence) bool {
	if p < 0 || l.isAncestor(child, p) {
		return false
	}
	l.parent[child] = p
	l.evidence[child] = ev
	return true
}

func (l *linker) find(i int) int {
	for l.set[i] != i {
		l.set[i] = l.set[l.set[i]]
		i = l.set[i]
	}
	return i
}

// networkSets is step 2: the spans of one request message, chained by tap
// side.
func (l *linker) networkSets() {
	spans := l.spans
	bySeq := map[uint32][]int{}
	for i := range spans {
		if spans[i].ReqTCPSeq != 0 {
			bySeq[spans[i].ReqTCPSeq] = append(bySeq[spans[i].ReqTCPSeq], i)
		}
	}
	for _, g := range bySeq {
		for x := 0; x < len(g); x++ {
			for y := x + 1; y < len(g); y++ {
				if tcpRelated(l.cfg, spans[g[x]], spans[g[y]]) {
					l.set[l.find(g[x])] = l.find(g[y])
				}
			}
		}
	}
	l.unionReadAhead()
	l.unionTLS()
	l.unionL4()
	chains := map[int][]int{}
	for i := range spans {
		r := l.find(i)
		chains[r] = append(chains[r], i)
	}
	roots := make([]int, 0, len(chains))
	for r := range chains {
		roots = append(roots, r)
	}
	sort.Ints(roots)
	for _, r := range roots {
		c := chains[r]
		sort.SliceStable(c, func(i, j int) bool {
			a, b := spans[c[i]], spans[c[j]]
			if a.TapSide.Rank() != b.TapSide.Rank() {
				return a.TapSide.Rank() < b.TapSide.Rank()
			}
			if a.Node != b.Node {
				return a.Node < b.Node
			}
			return c[i] < c[j]
		})
		for k := 1; k < len(c); k++ {
			l.setParent(c[k], c[k-1], EvidenceTCP)
		}
	}
}

// strength ranks the evidence that relates two spans of different sets:
// 3 X-Request-ID, 2 trace id, 1 syscall context, 0 none.
func (l *linker) strength(a, b *span.Span) int {
	switch {
	case orphan(a) || orphan(b):
		return 0
	case l.cfg.keys.link(span.KeyXRequestID, a, b):
		return 3
	case appParent(a, b) || l.cfg.keys.link(span.KeyTraceID, a, b):
		return 2
	case syscallRelated(a, b):
		return 1
	}
	return 0
}

var strengthEvidence = [...]Evidence{3: EvidenceXRequestID, 2: EvidenceTraceID, 1: EvidenceSyscall}

// covers: p spans c in time, with tolerance tol at both ends.
func covers(p, c *span.Span, tol int64) bool {
	return p.StartNs <= c.StartNs+tol && p.EndNs+tol >= c.EndNs
}

// best picks the parent of child among the spans of other sets that ok
// accepts: the strongest evidence, then the latest start.
func (l *linker) best(child int, ok func(p int) bool) (int, Evidence) {
	spans := l.spans
	bi, bs := -1, 0
	for p := range spans {
		if p == child || l.find(p) == l.find(child) || !ok(p) {
			continue
		}
		s := l.strength(spans[child], spans[p])
		if s == 0 {
			continue
		}
		if s > bs || (s == bs && spans[p].StartNs > spans[bi].StartNs) {
			bi, bs = p, s
		}
	}
	if bi < 0 {
		return -1, ""
	}
	if bs == 1 {
		if ev := syscallEvidence(spans[child], spans[bi]); ev != "" {
			return bi, ev
		}
	}
	return bi, strengthEvidence[bs]
}

// processSets is step 3: a client call under the server span of the same
// process that covers it and shares an id with it.
func (l *linker) processSets(contains map[uint64]containedIn) {
	spans := l.spans
	index := make(map[uint64]int, len(spans))
	for i := range spans {
		index[spans[i].SpanID] = i
	}
	for i := range spans {
		c := spans[i]
		if l.parent[i] >= 0 || c.TapSide != span.TapClientProcess {
			continue
		}
		p, ev := l.best(i, func(p int) bool {
			s := spans[p]
			return s.TapSide == span.TapServerProcess && s.Node == c.Node && s.PID == c.PID && covers(s, c, 0)
		})
		if p < 0 {
			// No thread or header evidence: the one server request the
			// process had in flight (containment.go).
			if in, ok := contains[c.SpanID]; ok {
				if q, ok := index[in.server]; ok && l.find(q) != l.find(i) {
					p, ev = q, in.ev
				}
			}
		}
		if p >= 0 && !l.isAncestor(i, p) {
			l.setParent(i, p, ev)
		}
	}
}

// linkSets is step 4: a set's root under a span of another set it relates
// to, that covers it and is not shorter.
func (l *linker) linkSets() {
	spans := l.spans
	tol := int64(l.cfg.SameNodeSkew)
	for i := range spans {
		if l.parent[i] >= 0 {
			continue
		}
		c := spans[i]
		p, ev := l.best(i, func(p int) bool {
			s := spans[p]
			t := int64(0)
			if s.Node != c.Node {
				t = tol
			}
			return covers(s, c, t) && s.Duration() >= c.Duration() && s.TapSide.Rank() >= span.TapServerNode.Rank()
		})
		if p >= 0 {
			l.setParent(i, p, ev)
		}
	}
}

// traceID is step 5: the application's trace id if any span carries one
// (and it is not reused, exchange.go), else derived from the earliest root.
func traceID(cfg *Config, spans []*span.Span, parent []int) string {
	counts := map[span.TraceID]int{}
	var top span.TraceID
	for i := range spans {
		if id := spans[i].TraceID; !id.IsZero() && cfg.keys.repeated(span.Key{Kind: span.KeyTraceID, T: id}) == nil {
			counts[id]++
			if counts[id] > counts[top] || (counts[id] == counts[top] && id.String() < top.String()) {
				top = id
			}
		}
	}
	if !top.IsZero() {
		return top.String()
	}
	for i := range spans {
		if parent[i] < 0 {
			return DerivedID(spans[i].SpanID)
		}
	}
	return ""
}
