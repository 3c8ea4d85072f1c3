//go:build linux

package agent

import (
	"sync"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// spanQueue hands finished spans from the captures' readers to one goroutine
// that writes them to the store, so a reader never waits while a batch is
// cut (Arrow encoding, compression, Badger): the eBPF ring reader keeps
// draining the ring buffer meanwhile. At most max spans wait; beyond that
// put waits too (back-pressure as before, never loss).
//
// The queue hands over whole store batches: a multiple of rows spans, which
// the store encodes where the queue holds them (store.Writer.Write), without
// copying each span's 688 bytes into the store's pending spans. Spans that
// make no whole batch are handed over once the oldest of them waited wait,
// or at close, with cut set: the writer then cuts them as a batch at once.
type spanQueue struct {
	mu      sync.Mutex
	ready   sync.Cond // a whole batch, the wait over, or closed
	notFull sync.Cond
	pending []span.Span
	spare   []span.Span // the buffer the writer gave back
	max     int
	rows    int           // spans of a store batch
	wait    time.Duration // longest a span waits for a whole batch
	firstAt time.Time     // when pending's oldest span came
	due     bool          // pending's oldest span waited wait
	timer   *time.Timer
	closed  bool
	done    chan struct{}
}

// newSpanQueue starts the writing goroutine; write gets the spans in the
// order they were put, in batches of a multiple of rows spans, or of fewer
// with cut set. limit is raised to two batches when below.
func newSpanQueue(limit, rows int, wait time.Duration, write func(batch []span.Span, cut bool)) *spanQueue {
	q := &spanQueue{max: max(limit, 2*rows), rows: rows, wait: wait, done: make(chan struct{})}
	q.ready.L, q.notFull.L = &q.mu, &q.mu
	q.timer = time.AfterFunc(time.Hour, q.expire)
	q.timer.Stop()
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
		q.firstAt = time.Now()
		q.timer.Reset(q.wait)
	}
	if len(q.pending) == q.rows {
		q.ready.Signal()
	}
	q.mu.Unlock()
}

// expire marks the pending spans due once the oldest waited long enough; a
// timer armed for spans handed over since is re-armed for the ones now
// pending.
func (q *spanQueue) expire() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return
	}
	if left := q.wait - time.Since(q.firstAt); left > 0 {
		q.timer.Reset(left)
		return
	}
	q.due = true
	q.ready.Signal()
}

func (q *spanQueue) run(write func(batch []span.Span, cut bool)) {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.pending) < q.rows && !q.due && !q.closed {
			q.ready.Wait()
		}
		all := q.pending
		if len(all) == 0 {
			q.due = false
			closed := q.closed
			q.mu.Unlock()
			if closed { // and drained
				return
			}
			continue
		}
		cut := q.due || q.closed
		n := len(all)
		if !cut {
			n -= n % q.rows
		}
		// The spans beyond the whole batches (those put since the last
		// one filled: few) start the next buffer.
		next := q.spare
		if next == nil && n < len(all) {
			next = make([]span.Span, 0, q.max)
		}
		q.pending = append(next[:0], all[n:]...)
		q.spare = nil
		q.due = false
		if len(q.pending) > 0 {
			q.firstAt = time.Now()
			q.timer.Reset(q.wait)
		}
		q.notFull.Broadcast()
		q.mu.Unlock()
		write(all[:n], cut)
		clear(all) // no references kept into the next round
		q.mu.Lock()
		q.spare = all[:0]
		q.mu.Unlock()
	}
}

// close writes what is queued and stops; put must not be called after.
func (q *spanQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.ready.Signal()
	q.notFull.Broadcast()
	q.mu.Unlock()
	<-q.done
	q.timer.Stop()
}
