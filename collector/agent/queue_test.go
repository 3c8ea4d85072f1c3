//go:build linux

package agent

import (
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestSpanQueue: every span put reaches the writer once, in each producer's
// order, while the writer is slower than the producers and the queue holds
// at most max; close returns only after the last one is written.
func TestSpanQueue(t *testing.T) {
	const producers, each, limit = 3, 2000, 64
	var (
		mu      sync.Mutex
		got     []span.Span
		biggest int
	)
	q := newSpanQueue(limit, func(batch []span.Span) {
		time.Sleep(50 * time.Microsecond) // a slow store
		mu.Lock()
		got = append(got, batch...)
		biggest = max(biggest, len(batch))
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s := span.Span{PID: uint32(p), SpanID: uint64(i)}
				q.put(&s)
				s.SpanID = 1 << 40 // the caller may reuse its span
			}
		}()
	}
	wg.Wait()
	q.close()
	if len(got) != producers*each {
		t.Fatalf("writer got %d spans, want %d", len(got), producers*each)
	}
	next := map[uint32]uint64{}
	for _, s := range got {
		if s.SpanID != next[s.PID] {
			t.Fatalf("producer %d: span %d written after %d", s.PID, s.SpanID, next[s.PID])
		}
		next[s.PID]++
	}
	if biggest > limit {
		t.Errorf("a batch of %d spans: more than the %d the queue may hold", biggest, limit)
	}
}
