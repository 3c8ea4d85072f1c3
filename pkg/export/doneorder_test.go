package export

import (
	"math/rand/v2"
	"testing"
)

// TestDoneOrder: over random adds (repeated starts, ids added again) and
// evictions, the map keeps exactly the spans whose latest start is at or
// after every low evicted so far, as a walk of all of them finds; spans of
// newDoneOrder's initial map included.
func TestDoneOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 7))
	m := map[uint64]done{}
	for id := uint64(1); id <= 200; id++ {
		m[id] = done{startNs: rng.Int64N(1000)}
	}
	h := newDoneOrder(m)
	want := map[uint64]int64{}
	for id, d := range m {
		want[id] = d.startNs
	}
	low := int64(0)
	for step := range 20000 {
		if rng.IntN(50) == 0 {
			low += rng.Int64N(40)
			h.evict(m, low)
			for id, s := range want {
				if s < low {
					delete(want, id)
				}
			}
		} else {
			id := uint64(rng.IntN(3000)) + 1
			s := low + rng.Int64N(500)
			m[id] = done{startNs: s}
			want[id] = s
			h.add(id, s)
		}
		if len(m) != len(want) {
			t.Fatalf("step %d: %d spans kept, want %d", step, len(m), len(want))
		}
		for id, s := range want {
			if d, ok := m[id]; !ok || d.startNs != s {
				t.Fatalf("step %d: span %d: kept %v %d, want start %d", step, id, ok, d.startNs, s)
			}
		}
		for i := 1; i < len(*h); i++ {
			if (*h)[(i-1)/2].startNs > (*h)[i].startNs {
				t.Fatalf("step %d: heap order broken at %d", step, i)
			}
		}
	}
}
