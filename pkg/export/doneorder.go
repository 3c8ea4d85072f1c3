package export

import "container/heap"

// doneOrder orders the exported spans of the checkpoint's map by start, so
// that the spans leaving the window are found without walking the map
// every poll.
type doneOrder []doneRef

type doneRef struct {
	startNs int64
	id      uint64
}

func (h doneOrder) Len() int           { return len(h) }
func (h doneOrder) Less(i, j int) bool { return h[i].startNs < h[j].startNs }
func (h doneOrder) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *doneOrder) Push(x any)        { *h = append(*h, x.(doneRef)) }
func (h *doneOrder) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// newDoneOrder orders the spans of m.
func newDoneOrder(m map[uint64]done) *doneOrder {
	h := make(doneOrder, 0, len(m))
	for id, d := range m {
		h = append(h, doneRef{d.startNs, id})
	}
	heap.Init(&h)
	return &h
}

func (h *doneOrder) add(id uint64, startNs int64) { heap.Push(h, doneRef{startNs, id}) }

// evict deletes from m the spans that started before low.
func (h *doneOrder) evict(m map[uint64]done, low int64) {
	for h.Len() > 0 && (*h)[0].startNs < low {
		r := heap.Pop(h).(doneRef)
		if d, ok := m[r.id]; ok && d.startNs < low {
			delete(m, r.id)
		}
	}
}
