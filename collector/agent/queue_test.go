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
// at most max; batches not cut are whole store batches; close returns only
// after the last one is written.
func TestSpanQueue(t *testing.T) {
	const producers, each, limit, rows = 3, 2000, 64, 16
	var (
		mu      sync.Mutex
		got     []span.Span
		biggest int
	)
	var late int // batches of fewer than whole batches, handed over after the wait
	q := newSpanQueue(limit, rows, time.Millisecond, func(batch []span.Span) {
		time.Sleep(50 * time.Microsecond) // a slow store
		mu.Lock()
		got = append(got, batch...)
		biggest = max(biggest, len(batch))
		if len(batch)%rows != 0 {
			late++
		}
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
				if i%500 == 0 {
					time.Sleep(3 * time.Millisecond) // spans left waiting past the interval
				}
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
	if late == 0 {
		t.Errorf("no batch handed over after the wait: the producers' pauses tested nothing")
	}
}

// TestSpanQueueWholeBatches: the writer gets whole store batches as they
// fill (which the store encodes without copying them), the rest only once
// the oldest of it waited, or at close.
func TestSpanQueueWholeBatches(t *testing.T) {
	const rows, wait = 8, 100 * time.Millisecond
	got := make(chan int, 100)
	q := newSpanQueue(4*rows, rows, wait, func(batch []span.Span) {
		for i := range batch {
			if batch[i].SpanID == 0 {
				t.Errorf("span %d of a batch of %d: cleared", i, len(batch))
			}
		}
		got <- len(batch)
	})
	put := func(n int) {
		for range n {
			q.put(&span.Span{SpanID: 1})
		}
	}
	expect := func(want int) {
		t.Helper()
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("writer got %d spans, want %d", n, want)
			}
		case <-time.After(time.Second):
			t.Fatalf("writer got nothing in 1s, want %d spans", want)
		}
	}
	whole := func(n int) { // handed over as one or more whole batches
		t.Helper()
		for n > 0 {
			select {
			case g := <-got:
				if g%rows != 0 || g > n {
					t.Fatalf("writer got %d spans, want whole batches of %d up to %d spans", g, rows, n)
				}
				n -= g
			case <-time.After(time.Second):
				t.Fatalf("writer got nothing in 1s, want whole batches of %d spans", n)
			}
		}
	}
	nothing := func(d time.Duration) {
		t.Helper()
		select {
		case n := <-got:
			t.Fatalf("writer got %d spans, want nothing yet", n)
		case <-time.After(d):
		}
	}
	start := time.Now()
	put(rows - 1)
	nothing(wait / 2)
	expect(rows - 1)
	if d := time.Since(start); d < wait {
		t.Errorf("%d spans handed over after %v, before the wait %v", rows-1, d, wait)
	}
	put(2*rows + 3)
	whole(2 * rows)
	nothing(wait / 2)
	expect(3)
	put(rows + 2)
	whole(rows)
	q.close()
	expect(2) // written before close returned
}
