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

// entry is one span of the window with what the exporter knows of it.
type entry struct {
	s       span.Span
	seen    int64 // when the exporter first read it (unix ns)
	state   state
	traceID [16]byte // the trace id it was queued or exported under
	round   uint64   // the poll round that last assembled it
	mark    uint64   // the lookup that last returned it
}

// window holds the spans of the last minutes, indexed like a store (by id
// and by every index key, each key's spans sorted by start), for assembly
// without reading shards again. It implements trace.Source. Only the
// exporter's loop uses it.
type window struct {
	byID   map[uint64]*entry
	byKey  map[span.Key][]*entry // sorted by start
	byTime []*entry              // every entry, sorted by start (from head on)
	head   int
	keys   []span.Key // scratch
	marks  uint64
}

func newWindow() *window {
	return &window{byID: map[uint64]*entry{}, byKey: map[span.Key][]*entry{}}
}

func (w *window) len() int { return len(w.byID) }

// insert puts e into l, sorted by start: spans arrive nearly in order, so
// the place is found from the end.
func insert(l []*entry, e *entry) []*entry {
	i := len(l)
	for i > 0 && l[i-1].s.StartNs > e.s.StartNs {
		i--
	}
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = e
	return l
}

// add puts s in the window unless a span of its id is there; it returns the
// entry and whether it is new.
func (w *window) add(s *span.Span, seen int64) (*entry, bool) {
	if e, ok := w.byID[s.SpanID]; ok {
		return e, false
	}
	e := &entry{s: *s, seen: seen}
	w.byID[s.SpanID] = e
	w.keys = s.IndexKeys(w.keys[:0])
	for _, k := range w.keys {
		w.byKey[k] = insert(w.byKey[k], e)
	}
	w.byTime = insert(w.byTime, e)
	return e, true
}

// evict removes the spans that started before ns and calls fn with each.
func (w *window) evict(ns int64, fn func(*entry)) {
	for w.head < len(w.byTime) && w.byTime[w.head].s.StartNs < ns {
		e := w.byTime[w.head]
		w.byTime[w.head] = nil
		w.head++
		fn(e)
		delete(w.byID, e.s.SpanID)
		w.keys = e.s.IndexKeys(w.keys[:0])
		for _, k := range w.keys {
			l := w.byKey[k]
			for i, x := range l { // the oldest: at the front
				if x == e {
					l = append(l[:i], l[i+1:]...)
					break
				}
			}
			if len(l) == 0 {
				delete(w.byKey, k)
			} else {
				w.byKey[k] = l
			}
		}
	}
	if w.head > 1024 && w.head > len(w.byTime)/2 {
		w.byTime = append(w.byTime[:0], w.byTime[w.head:]...)
		w.head = 0
	}
}

// oldest returns the entries in start order (the caller must not keep it).
func (w *window) inOrder() []*entry { return w.byTime[w.head:] }

// each calls fn once with every entry that carries one of keys and starts
// within [fromNs, toNs].
func (w *window) each(keys []span.Key, fromNs, toNs int64, fn func(*entry)) {
	w.marks++
	for _, k := range keys {
		l := w.byKey[k]
		i := sort.Search(len(l), func(i int) bool { return l[i].s.StartNs >= fromNs })
		for ; i < len(l) && l[i].s.StartNs <= toNs; i++ {
			if e := l[i]; e.mark != w.marks {
				e.mark = w.marks
				fn(e)
			}
		}
	}
}

// Lookup implements trace.Source over the window. It counts first, so that
// the copies it returns are allocated once.
func (w *window) Lookup(_ context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	n := 0
	w.each(keys, fromNs, toNs, func(*entry) { n++ })
	if n == 0 {
		return nil, nil
	}
	out := make([]span.Span, 0, n)
	w.each(keys, fromNs, toNs, func(e *entry) { out = append(out, e.s) })
	return out, nil // AssembleFrom orders candidates itself
}

// Get implements trace.Source over the window.
func (w *window) Get(_ context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error) {
	var out []span.Span
	for _, id := range ids {
		if e, ok := w.byID[id]; ok && (fromNs == 0 && toNs == 0 || e.s.StartNs >= fromNs && e.s.StartNs <= toNs) {
			out = append(out, e.s)
		}
	}
	return out, nil
}
