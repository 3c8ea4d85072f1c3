package export

import (
	"context"
	"sort"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// state of a span in the window.
type state uint8

const (
	pending  state = iota // not exported yet
	queued                // in the queue or being sent
	exported              // acknowledged by the backend (in the checkpoint)
)

// entry is one span of the window with what the exporter knows of it: a
// row of the decoded record the span was read from (a few dozen bytes, not
// a 688-byte span.Span), decoded into ref while assembly may need it.
type entry struct {
	rec     *span.Record
	row     int32
	state   state
	startNs int64
	spanID  uint64
	seen    int64    // when the exporter first read it (unix ns)
	traceID [16]byte // the trace id it was queued or exported under
	round   uint64   // the poll round that last assembled it
	mark    uint64   // the lookup that last returned it
	// ref is the span decoded, from its first lookup until it is exported
	// (then dropped: a trace that points at it keeps it alive; a later
	// lookup decodes it again). Assembly points at it.
	ref *span.Span
}

// spanSlab is how many decoded spans share one allocation: allocating each
// 720-byte span alone was a third of decoding it. A slab is freed when none
// of its spans is referenced any more (spans are decoded and exported in
// about the same order, so its spans leave together).
const spanSlab = 32

// span returns the entry's span, decoding it once into the next span of
// slab (a new slab when it is used up).
func (e *entry) span(slab *[]span.Span) *span.Span {
	if e.ref == nil {
		if len(*slab) == 0 {
			*slab = make([]span.Span, spanSlab)
		}
		e.ref = &(*slab)[0]
		*slab = (*slab)[1:]
		e.rec.Row(int(e.row), e.ref)
	}
	return e.ref
}

// decode puts the entry's span in s without keeping it.
func (e *entry) decode(s *span.Span) {
	if e.ref != nil {
		*s = *e.ref
		return
	}
	e.rec.Row(int(e.row), s)
}

// window holds the spans of the last minutes, indexed like a store (by id
// and by every index key, each key's spans sorted by start), for assembly
// without reading shards again. It implements trace.Source. Only the
// exporter's loop uses it.
type window struct {
	byID   map[uint64]*entry
	byKey  keyLists // each key's entries, sorted by start
	byTime []*entry // every entry, sorted by start (from head on)
	head   int
	// pending holds, sorted by start like byTime, every entry not yet
	// queued, and some that were queued since (dropped as the front passes
	// them): assembly walks it instead of the whole window.
	pending []*entry
	keys    []span.Key // scratch
	scratch span.Span  // scratch of add and evict
	ranges  [][]*entry // scratch of Lookup
	marks   uint64
	slab    []span.Span // the spans still free for entry.span
}

func newWindow() *window {
	return &window{byID: map[uint64]*entry{}, byKey: newKeyLists()}
}

func (w *window) len() int { return len(w.byID) }

// insert puts e into l, sorted by start: spans arrive nearly in order, so
// the place is found from the end.
func insert(l []*entry, e *entry) []*entry {
	i := len(l)
	for i > 0 && l[i-1].startNs > e.startNs {
		i--
	}
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = e
	return l
}

// add puts row i of r in the window unless a span of its id is there (r
// must stay readable: the window decodes the row again when it needs the
// span); it returns the entry and whether it is new.
func (w *window) add(r *span.Record, i int, seen int64) (*entry, bool) {
	s := &w.scratch
	r.KeyRow(i, s) // the rest is decoded when assembly looks the span up
	if e, ok := w.byID[s.SpanID]; ok {
		return e, false
	}
	e := &entry{rec: r, row: int32(i), startNs: s.StartNs, spanID: s.SpanID, seen: seen}
	w.byID[s.SpanID] = e
	w.keys = s.IndexKeys(w.keys[:0])
	for _, k := range w.keys {
		if x, ok := w.byKey.list(k); ok {
			w.byKey.lists[x] = insert(w.byKey.lists[x], e)
		}
	}
	w.byTime = insert(w.byTime, e)
	w.pending = insert(w.pending, e)
	return e, true
}

// evict removes the spans that started before ns and calls fn with each.
func (w *window) evict(ns int64, fn func(*entry)) {
	for w.head < len(w.byTime) && w.byTime[w.head].startNs < ns {
		e := w.byTime[w.head]
		w.byTime[w.head] = nil
		w.head++
		fn(e)
		delete(w.byID, e.spanID)
		if e.ref != nil {
			w.keys = e.ref.IndexKeys(w.keys[:0])
		} else {
			e.rec.KeyRow(int(e.row), &w.scratch)
			w.keys = w.scratch.IndexKeys(w.keys[:0])
		}
		for _, k := range w.keys {
			w.byKey.remove(k, e)
		}
	}
	if w.head > 1024 && w.head > len(w.byTime)/2 {
		w.byTime = append(w.byTime[:0], w.byTime[w.head:]...)
		w.head = 0
	}
	w.trimPending(func(e *entry) bool { return e.startNs < ns })
}

// trimPending drops the entries at the front of pending for which gone
// holds.
func (w *window) trimPending(gone func(*entry) bool) {
	n := 0
	for n < len(w.pending) && gone(w.pending[n]) {
		w.pending[n] = nil
		n++
	}
	w.pending = w.pending[n:]
}

// pendingInOrder returns, oldest first, the entries that may still be
// pending (the caller checks each one's state, and must not keep the
// slice).
func (w *window) pendingInOrder() []*entry {
	w.trimPending(func(e *entry) bool { return e.state != pending })
	return w.pending
}

// LookupRefs implements trace.RefSource over the window: each key's spans
// within [fromNs, toNs] found once (binary search), counted, then pointed
// at from one slice, each span once (AssembleFrom orders candidates
// itself). The spans are the window's (decoded on their first lookup, the
// same pointer until exported): assembly reads them, never changes them.
func (w *window) LookupRefs(_ context.Context, fromNs, toNs int64, keys []span.Key) ([]*span.Span, error) {
	w.marks++
	w.ranges = w.ranges[:0]
	n := 0
	for _, k := range keys {
		x, ok := w.byKey.find(k)
		if !ok {
			continue
		}
		l := w.byKey.lists[x]
		i := sort.Search(len(l), func(i int) bool { return l[i].startNs >= fromNs })
		j := i
		for ; j < len(l) && l[j].startNs <= toNs; j++ {
			if e := l[j]; e.mark != w.marks {
				e.mark = w.marks
				n++
			}
		}
		if j > i {
			w.ranges = append(w.ranges, l[i:j])
		}
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]*span.Span, 0, n)
	w.marks++
	for _, l := range w.ranges {
		for _, e := range l {
			if e.mark != w.marks {
				e.mark = w.marks
				out = append(out, e.span(&w.slab))
			}
		}
	}
	clear(w.ranges)
	return out, nil
}

// Lookup implements trace.Source over the window (copies of LookupRefs').
func (w *window) Lookup(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	refs, err := w.LookupRefs(ctx, fromNs, toNs, keys)
	if len(refs) == 0 {
		return nil, err
	}
	out := make([]span.Span, len(refs))
	for i, s := range refs {
		out[i] = *s
	}
	return out, err
}

// Get implements trace.Source over the window.
func (w *window) Get(_ context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error) {
	var out []span.Span
	for _, id := range ids {
		if e, ok := w.byID[id]; ok && (fromNs == 0 && toNs == 0 || e.startNs >= fromNs && e.startNs <= toNs) {
			var s span.Span
			e.decode(&s)
			out = append(out, s)
		}
	}
	return out, nil
}
