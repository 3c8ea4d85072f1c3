package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// Scratch is the memory of one assembly that the next can reuse: the maps
// it builds (its set, the keys it queried, its key index, containment's
// pools), emptied at the start of each assembly instead of made and grown
// anew. For a caller that assembles many traces one after another
// (pkg/export); not for assemblies that run at the same time. Nothing an
// assembly returns points into it.
type Scratch struct {
	keys      keyIndex
	set       map[uint64]*span.Span
	queried   map[span.Key]bool
	contains  map[uint64]containedIn
	procSpans map[uint64]*span.Span
	procs     procLookups
}

// reuseMax bounds the entries a map of the scratch may have held to be
// emptied for the next assembly: emptying costs its capacity, so a map a
// large trace grew is dropped for a new one.
const reuseMax = 4096

// reuse returns m emptied, or a new map if m is nil or was large.
func reuse[K comparable, V any](m map[K]V, hint int) map[K]V {
	if m == nil || len(m) > reuseMax {
		return make(map[K]V, hint)
	}
	clear(m)
	return m
}

// reset empties the scratch for an assembly under cfg.
func (s *Scratch) reset(cfg *Config) {
	ix := &s.keys
	ix.bound, ix.settle = cfg.Repeat.OrDefault(), int64(cfg.Settle)
	ix.seen = reuse(ix.seen, 64)
	ix.inbound = reuse(ix.inbound, 0)
	ix.calls = reuse(ix.calls, 0)
	ix.carriers = reuse(ix.carriers, 0)
	ix.looked = reuse(ix.looked, 0)
	ix.unread = reuse(ix.unread, 0)
	ix.memo = reuse(ix.memo, 0)
	s.set = reuse(s.set, 64)
	s.queried = reuse(s.queried, 0)
	s.contains = reuse(s.contains, 0)
	s.procSpans = reuse(s.procSpans, 0)
	s.procs.looked = reuse(s.procs.looked, 0)
	s.procs.keys, s.procs.lo, s.procs.hi = s.procs.keys[:0], 0, 0
}
