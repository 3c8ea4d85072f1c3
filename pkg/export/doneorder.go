package export

// doneOrder orders the exported spans of the checkpoint's map by start, so
// that the spans leaving the window are found without walking the map
// every poll. A binary min-heap by start, written out rather than through
// container/heap, whose Push and Pop box each 16-byte ref (an allocation
// per span exported).
type doneOrder []doneRef

type doneRef struct {
	startNs int64
	id      uint64
}

// newDoneOrder orders the spans of m.
func newDoneOrder(m map[uint64]done) *doneOrder {
	h := make(doneOrder, 0, len(m))
	for id, d := range m {
		h.add(id, d.startNs)
	}
	return &h
}

func (h *doneOrder) add(id uint64, startNs int64) {
	*h = append(*h, doneRef{startNs, id})
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].startNs <= s[i].startNs {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

// pop removes and returns the ref of the earliest start.
func (h *doneOrder) pop() doneRef {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s[l].startNs < s[m].startNs {
			m = l
		}
		if r := l + 1; r < n && s[r].startNs < s[m].startNs {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// evict deletes from m the spans that started before low.
func (h *doneOrder) evict(m map[uint64]done, low int64) {
	for len(*h) > 0 && (*h)[0].startNs < low {
		r := h.pop()
		if d, ok := m[r.id]; ok && d.startNs < low {
			delete(m, r.id)
		}
	}
}
