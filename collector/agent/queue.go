//go:build linux

package agent

import (
	"sync"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// spanQueue hands finished spans from the captures' readers to one goroutine
// that writes them to the store, so a reader never waits while a batch is
// cut (Arrow encoding, compression, Badger): the eBPF ring reader keeps
// draining the ring buffer meanwhile. At most max spans wait; beyond that
// put waits too (back-pressure as before, never loss).
type spanQueue struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	pending  []span.Span
	max      int
	closed   bool
	done     chan struct{}
}

// newSpanQueue starts the writing goroutine; write gets the spans in the
// order they were put, in batches.
func newSpanQueue(max int, write func([]span.Span)) *spanQueue {
	q := &spanQueue{max: max, done: make(chan struct{})}
	q.notEmpty.L, q.notFull.L = &q.mu, &q.mu
	go q.run(write)
	return q
}

// put queues a copy of s.
func (q *spanQueue) put(s *span.Span) {
	q.mu.Lock()
	for len(q.pending) >= q.max && !q.closed {
		q.notFull.Wait()
	}
	if q.pending == nil {
		// Full size at once: grown by append, the batches were copied
		// over and over while the writer was behind (growslice was ~5% of
		// the collector's CPU under nginx + wrk). Pages are touched only
		// as far as spans fill them.
		q.pending = make([]span.Span, 0, q.max)
	}
	q.pending = append(q.pending, *s)
	if len(q.pending) == 1 {
		q.notEmpty.Signal()
	}
	q.mu.Unlock()
}

func (q *spanQueue) run(write func([]span.Span)) {
	defer close(q.done)
	var spare []span.Span
	for {
		q.mu.Lock()
		for len(q.pending) == 0 && !q.closed {
			q.notEmpty.Wait()
		}
		batch := q.pending
		if len(batch) == 0 { // closed and drained
			q.mu.Unlock()
			return
		}
		q.pending = spare[:0] // nil the first time: put makes it
		q.notFull.Broadcast()
		q.mu.Unlock()
		write(batch)
		clear(batch) // no references kept into the next round
		spare = batch
	}
}

// close writes what is queued and stops; put must not be called after.
func (q *spanQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.notEmpty.Signal()
	q.notFull.Broadcast()
	q.mu.Unlock()
	<-q.done
}
