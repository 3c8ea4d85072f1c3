package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// scanCap bounds the spans one query reads from the store while it looks
// for spans its non-indexed filters (pod, node, response code, lists)
// accept.
var scanCap = 200000

// match reports whether a span passes every filter of q. The store's search
// index applies the single-valued indexed filters already; match checks all
// of them again on the decoded span (lists, pod, node, response code).
func (q *Query) match(s *span.Span) bool {
	if !q.Namespace.has(s.Namespace) || !q.Service.has(s.Service) || !q.Workload.has(s.Workload) ||
		!q.Endpoint.has(s.Endpoint) || !q.Pod.has(s.Pod) || !q.Node.has(s.Node) ||
		!q.Protocol.has(s.L7Protocol.String()) || !q.Status.has(s.ResponseStatus.String()) {
		return false
	}
	d := s.Duration()
	if d < q.minDuration || q.maxDuration > 0 && d > q.maxDuration {
		return false
	}
	if len(q.codes) == 0 {
		return true
	}
	for _, c := range q.codes {
		if s.ResponseCode >= c.lo && s.ResponseCode <= c.hi {
			return true
		}
	}
	return false
}

// storeQueries are the index searches that together find every span q
// accepts: single values go to the index as they are; the first indexed
// filter with several values is split into one search per value (a list of
// services is as fast as one service); the rest is left to match.
func (q *Query) storeQueries(from, to int64, taps []span.TapSide) []store.SearchQuery {
	base := store.SearchQuery{FromNs: from, ToNs: to, Namespace: q.Namespace.one(), Service: q.Service.one(),
		Workload: q.Workload.one(), Endpoint: q.Endpoint.one(), Protocol: q.Protocol.one(), Status: q.Status.one(),
		MinDuration: q.minDuration, MaxDuration: q.maxDuration, TapSides: taps}
	for _, f := range []struct {
		vals Strings
		set  func(*store.SearchQuery, string)
	}{
		{q.Service, func(s *store.SearchQuery, v string) { s.Service = v }},
		{q.Workload, func(s *store.SearchQuery, v string) { s.Workload = v }},
		{q.Endpoint, func(s *store.SearchQuery, v string) { s.Endpoint = v }},
		{q.Namespace, func(s *store.SearchQuery, v string) { s.Namespace = v }},
	} {
		if len(f.vals) > 1 {
			out := make([]store.SearchQuery, len(f.vals))
			for i, v := range f.vals {
				out[i] = base
				f.set(&out[i], v)
			}
			return out
		}
	}
	return []store.SearchQuery{base}
}

// pager reads one index search newest first, a page at a time, and keeps
// the spans match accepts.
type pager struct {
	r       source
	q       store.SearchQuery
	accept  func(*span.Span) bool
	buf     []span.Span
	atTo    map[uint64]bool // spans already read that start at q.ToNs
	size    int             // the next page's size: from the rows wanted, doubling to pageSize
	done    bool
	capped  bool // stopped by scanCap
	scanned *int
	err     error
}

// pageSize bounds a page: the first page is what the query wants (a search
// of 20 decodes about 20 spans), each next one twice the last.
var pageSize = 2000

// fill reads pages until the buffer holds a span or the search is done.
func (p *pager) fill(ctx context.Context) {
	for len(p.buf) == 0 && !p.done {
		if *p.scanned >= scanCap {
			p.done, p.capped = true, true
			return
		}
		if err := ctx.Err(); err != nil {
			p.err, p.done = errors.Join(p.err, err), true
			return
		}
		p.page(ctx)
	}
}

// page reads the next page: spans starting at or before the cursor, less
// those already read at the cursor's instant.
func (p *pager) page(ctx context.Context) {
	q := p.q
	q.Limit = p.size
	p.size = min(2*p.size, pageSize)
	spans, err := p.r.Search(ctx, q)
	if err != nil {
		p.err = errors.Join(p.err, err)
		if spans == nil {
			p.done = true
			return
		}
	}
	*p.scanned += len(spans)
	for i := range spans {
		if s := &spans[i]; !p.atTo[s.SpanID] && p.accept(s) {
			p.buf = append(p.buf, *s)
		}
	}
	if len(spans) < q.Limit {
		p.done = true
		return
	}
	oldest := spans[len(spans)-1].StartNs
	if oldest == p.q.ToNs {
		// A whole page started at the cursor's instant: step past it (more
		// than a page of spans in one nanosecond are not read).
		p.q.ToNs, p.atTo = oldest-1, nil
		return
	}
	p.atTo = map[uint64]bool{}
	for i := range spans {
		if spans[i].StartNs == oldest {
			p.atTo[spans[i].SpanID] = true
		}
	}
	p.q.ToNs = oldest
}

// spanStream merges pagers newest first.
type spanStream struct {
	pagers  []*pager
	scanned int
}

// stream reads the spans q accepts; want is how many the caller expects to
// take (the first page's size).
func (d *Datasource) stream(src source, q *Query, from, to int64, taps []span.TapSide, want int) *spanStream {
	st := &spanStream{}
	for _, sq := range q.storeQueries(from, to, taps) {
		if sq.ToNs == 0 {
			sq.ToNs = int64(^uint64(0) >> 1)
		}
		st.pagers = append(st.pagers, &pager{r: src, q: sq, accept: q.match, scanned: &st.scanned,
			size: min(max(want, 16), pageSize)})
	}
	return st
}

// next returns the newest span not yet returned, or nil when there is none.
func (st *spanStream) next(ctx context.Context) *span.Span {
	var best *pager
	for _, p := range st.pagers {
		p.fill(ctx)
		if len(p.buf) > 0 && (best == nil || newer(&p.buf[0], &best.buf[0])) {
			best = p
		}
	}
	if best == nil {
		return nil
	}
	s := best.buf[0]
	best.buf = best.buf[1:]
	return &s
}

func newer(a, b *span.Span) bool {
	if a.StartNs != b.StartNs {
		return a.StartNs > b.StartNs
	}
	return a.SpanID > b.SpanID
}

// take returns up to n spans, newest first.
func (st *spanStream) take(ctx context.Context, n int) []span.Span {
	var out []span.Span
	for len(out) < n {
		s := st.next(ctx)
		if s == nil {
			break
		}
		out = append(out, *s)
	}
	return out
}

// warnings are the read errors met and, when the scan cap stopped the
// search, a notice saying so.
func (st *spanStream) warnings() []error {
	var out []error
	capped := false
	for _, p := range st.pagers {
		out = append(out, p.err)
		capped = capped || p.capped
	}
	if capped {
		out = append(out, fmt.Errorf("stopped after reading %d spans of the range: narrow the range or filter on indexed fields (namespace, service, workload, endpoint, protocol, status, duration)", st.scanned))
	}
	return out
}
