package trace

import (
	"sort"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// link sets the parents of a related span set (DESIGN "Trace assembly",
// steps 2-5) and picks the trace id.
func link(cfg *Config, spans []span.Span, contains map[uint64]containedIn) *Trace {
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].StartNs != spans[j].StartNs {
			return spans[i].StartNs < spans[j].StartNs
		}
		return spans[i].SpanID < spans[j].SpanID
	})
	n := len(spans)
	parent := make([]int, n)
	evidence := make([]Evidence, n)
	for i := range parent {
		parent[i] = -1
	}
	// isAncestor reports whether a is b or above b.
	isAncestor := func(a, b int) bool {
		for steps := 0; b >= 0 && steps <= n; steps++ {
			if a == b {
				return true
			}
			b = parent[b]
		}
		return false
	}
	setParent := func(child, p int, ev Evidence) bool {
		if p < 0 || isAncestor(child, p) {
			return false
		}
		parent[child] = p
		evidence[child] = ev
		return true
	}

	// 2. Network sets: spans of one request message, chained by tap side.
	set := make([]int, n)
	for i := range set {
		set[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for set[i] != i {
			set[i] = set[set[i]]
			i = set[i]
		}
		return i
	}
	bySeq := map[uint32][]int{}
	for i := range spans {
		if spans[i].ReqTCPSeq != 0 {
			bySeq[spans[i].ReqTCPSeq] = append(bySeq[spans[i].ReqTCPSeq], i)
		}
	}
	for _, g := range bySeq {
		for x := 0; x < len(g); x++ {
			for y := x + 1; y < len(g); y++ {
				if tcpRelated(cfg, &spans[g[x]], &spans[g[y]]) {
					set[find(g[x])] = find(g[y])
				}
			}
		}
	}
	chains := map[int][]int{}
	for i := range spans {
		r := find(i)
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
			a, b := &spans[c[i]], &spans[c[j]]
			if a.TapSide.Rank() != b.TapSide.Rank() {
				return a.TapSide.Rank() < b.TapSide.Rank()
			}
			if a.Node != b.Node {
				return a.Node < b.Node
			}
			return c[i] < c[j]
		})
		for k := 1; k < len(c); k++ {
			setParent(c[k], c[k-1], EvidenceTCP)
		}
	}

	// SDK spans join by the trace context (sdkjoin.go).
	joinSDK(cfg, spans, parent, setParent)

	strength := func(a, b *span.Span) int {
		switch {
		case orphan(a) || orphan(b):
			return 0
		case cfg.keys.link(span.KeyXRequestID, a, b):
			return 3
		case appParent(a, b) || cfg.keys.link(span.KeyTraceID, a, b):
			return 2
		case syscallRelated(a, b):
			return 1
		}
		return 0
	}
	strengthEvidence := [...]Evidence{3: EvidenceXRequestID, 2: EvidenceTraceID, 1: EvidenceSyscall}
	covers := func(p, c *span.Span, tol int64) bool {
		return p.StartNs <= c.StartNs+tol && p.EndNs+tol >= c.EndNs
	}
	best := func(child int, ok func(p int) bool) (int, Evidence) {
		bi, bs := -1, 0
		for p := range spans {
			if p == child || find(p) == find(child) || !ok(p) {
				continue
			}
			s := strength(&spans[child], &spans[p])
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
			if ev := syscallEvidence(&spans[child], &spans[bi]); ev != "" {
				return bi, ev
			}
		}
		return bi, strengthEvidence[bs]
	}
	index := make(map[uint64]int, n)
	for i := range spans {
		index[spans[i].SpanID] = i
	}

	// 3. Process sets: a client call under the server span of the same
	// process that covers it and shares an id with it.
	for i := range spans {
		c := &spans[i]
		if parent[i] >= 0 || c.TapSide != span.TapClientProcess {
			continue
		}
		p, ev := best(i, func(p int) bool {
			s := &spans[p]
			return s.TapSide == span.TapServerProcess && s.Node == c.Node && s.PID == c.PID && covers(s, c, 0)
		})
		if p < 0 {
			// No thread or header evidence: the one server request the
			// process had in flight (containment.go).
			if in, ok := contains[c.SpanID]; ok {
				if q, ok := index[in.server]; ok && find(q) != find(i) {
					p, ev = q, in.ev
				}
			}
		}
		if p >= 0 && !isAncestor(i, p) {
			setParent(i, p, ev)
		}
	}

	// 4. Links between sets: a set's root under a span of another set it
	// relates to, that covers it and is not shorter.
	for i := range spans {
		if parent[i] >= 0 {
			continue
		}
		c := &spans[i]
		tol := int64(cfg.SameNodeSkew)
		p, ev := best(i, func(p int) bool {
			s := &spans[p]
			t := int64(0)
			if s.Node != c.Node {
				t = tol
			}
			return covers(s, c, t) && s.Duration() >= c.Duration() && s.TapSide.Rank() >= span.TapServerNode.Rank()
		})
		if p >= 0 {
			setParent(i, p, ev)
		}
	}

	// 5. Trace id: the application's if any span carries one (and it is not
	// reused, exchange.go), else derived from the earliest root.
	t := &Trace{Spans: spans, Parents: parent, Evidence: evidence}
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
		t.ID = top.String()
	} else {
		for i := range spans {
			if parent[i] < 0 {
				t.ID = DerivedID(spans[i].SpanID)
				break
			}
		}
	}
	return t
}
