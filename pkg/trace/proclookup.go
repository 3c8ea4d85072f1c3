package trace

import (
	"context"
	"slices"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// procLookups batches containment's lookups of process keys (the server
// requests, or the calls, of one process), each over the time the set needs
// it, and remembers the range each key was looked up over: a key is looked
// up again when the set needs it over more time (its process's later
// requests and calls), and containment judges a call only on server
// requests looked up over its time.
type procLookups struct {
	looked map[span.Key][2]int64
	keys   []span.Key
	lo, hi int64
}

// want adds key k for [from, to] unless it was looked up over that already,
// widening the batch's window to it (and to what k was looked up over
// before, so that what it covers stays one range).
func (p *procLookups) want(k span.Key, from, to int64) {
	if r, ok := p.looked[k]; ok {
		if r[0] <= from && to <= r[1] {
			return
		}
		from, to = min(from, r[0]), max(to, r[1])
	}
	if len(p.keys) == 0 {
		p.lo, p.hi = from, to
	}
	if !slices.Contains(p.keys, k) {
		p.keys = append(p.keys, k)
	}
	p.lo, p.hi = min(p.lo, from), max(p.hi, to)
}

// run looks the batch up into pool and starts a new batch.
func (p *procLookups) run(ctx context.Context, src Source, pool map[uint64]*span.Span) error {
	if len(p.keys) == 0 {
		return nil
	}
	found, err := lookupRefs(ctx, src, p.lo, p.hi, p.keys)
	for _, f := range found {
		pool[f.SpanID] = f
	}
	if err == nil {
		for _, k := range p.keys {
			p.looked[k] = [2]int64{p.lo, p.hi}
		}
	}
	p.keys, p.lo, p.hi = p.keys[:0], 0, 0
	return err
}

// covers reports whether k was looked up over [from, to].
func (p *procLookups) covers(k span.Key, from, to int64) bool {
	r, ok := p.looked[k]
	return ok && r[0] <= from && to <= r[1]
}
