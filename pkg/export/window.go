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
}

// window holds the spans of the last minutes, indexed like a store (by id
// and by every index key), for assembly without reading shards again. It
// implements trace.Source. Only the exporter's loop uses it.
type window struct {
	byID  map[uint64]*entry
	byKey map[span.Key][]*entry
	keys  []span.Key // scratch
}

func newWindow() *window {
	return &window{byID: map[uint64]*entry{}, byKey: map[span.Key][]*entry{}}
}

func (w *window) len() int { return len(w.byID) }

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
		w.byKey[k] = append(w.byKey[k], e)
	}
	return e, true
}

// evict removes the spans that started before ns and calls fn with each.
func (w *window) evict(ns int64, fn func(*entry)) {
	for id, e := range w.byID {
		if e.s.StartNs >= ns {
			continue
		}
		fn(e)
		delete(w.byID, id)
		w.keys = e.s.IndexKeys(w.keys[:0])
		for _, k := range w.keys {
			l := w.byKey[k]
			for i, x := range l {
				if x == e {
					l[i] = l[len(l)-1]
					l = l[:len(l)-1]
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
}

// Lookup implements trace.Source over the window.
func (w *window) Lookup(_ context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	var out []span.Span
	seen := map[uint64]bool{}
	for _, k := range keys {
		for _, e := range w.byKey[k] {
			if e.s.StartNs < fromNs || e.s.StartNs > toNs || seen[e.s.SpanID] {
				continue
			}
			seen[e.s.SpanID] = true
			out = append(out, e.s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].StartNs != out[j].StartNs {
			return out[i].StartNs < out[j].StartNs
		}
		return out[i].SpanID < out[j].SpanID
	})
	return out, nil
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
