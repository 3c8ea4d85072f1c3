//go:build linux

package ebpf

import (
	"sync"
	"sync/atomic"
	"time"
)

// caughtUp lets Flush wait for the ring reader: until every record the
// kernel wrote before the call has been read and handed to the worker.
// Without it, Flush ended connections whose last events (a response, a
// close) were still in the ring or in the reader's unpublished chunk: on a
// machine where the reader ran late, an exchange ended without its
// response. A waiter registers (gen counts them), wakes the reader
// (ringbuf's Flush), and is released when a read the reader began after
// the registration found the ring empty: everything written before was
// read by then, and the reader publishes before it releases.
type caughtUp struct {
	gen   atomic.Uint64 // waiters registered so far
	mu    sync.Mutex
	waits []caughtUpWait
}

type caughtUpWait struct {
	gen  uint64
	done chan struct{}
}

// caughtUpBound bounds Flush's wait, for a reader that cannot catch up (it
// waits itself for a worker held up by a span consumer that blocks).
const caughtUpBound = 10 * time.Second

// register adds a waiter, released by a read begun after it.
func (u *caughtUp) register() <-chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	w := caughtUpWait{gen: u.gen.Add(1), done: make(chan struct{})}
	u.waits = append(u.waits, w)
	return w.done
}

// release lets go the waiters registered before a read that began when
// gen waiters were registered and that ended at an empty ring.
func (u *caughtUp) release(began uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	kept := u.waits[:0]
	for _, w := range u.waits {
		if w.gen <= began {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	u.waits = kept
}

// waitReader waits until the reader has handed over every record the ring
// held when it was called, the reader stopped, or caughtUpBound passed.
func (c *Capture) waitReader() {
	if c.rd == nil || c.q == nil {
		return
	}
	done := c.caught.register()
	c.rd.Flush() // wakes the reader now rather than at its next poll
	t := time.NewTimer(caughtUpBound)
	defer t.Stop()
	select {
	case <-done:
	case <-c.readerDone:
	case <-t.C:
	}
}
