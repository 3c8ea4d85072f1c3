//go:build linux

package ebpf

import (
	"encoding/binary"
	"sync"
)

// records carries raw ring-buffer records from the ring reader to the
// session worker, so the reader drains the ring while sessions parse, and
// a slow parse (or a burst) waits in memory the collector owns instead of
// in the kernel's ring, where a full ring drops events. The reader copies
// each record once, into a chunk of length-prefixed records; it publishes
// the chunk when the ring is empty or the chunk is full. The worker takes
// every published chunk at once, in order, and gives them back for reuse.
// At most limit bytes wait: beyond that the reader waits too, and the ring
// (then the kernel's drop counter) takes the excess.
type records struct {
	mu      sync.Mutex
	cond    *sync.Cond // the worker freed space
	ready   [][]byte   // published chunks, oldest first
	free    [][]byte   // chunks to reuse
	pending int        // bytes in ready
	limit   int
	wake    chan struct{} // one pending wake-up of the worker
}

// chunkSize is the size a chunk is published at, at the latest.
const chunkSize = 256 << 10

func newRecords(limit int) *records {
	q := &records{limit: limit, wake: make(chan struct{}, 1)}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// chunk returns an empty chunk to fill.
func (q *records) chunk() []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.free); n > 0 {
		c := q.free[n-1]
		q.free = q.free[:n-1]
		return c[:0]
	}
	return make([]byte, 0, chunkSize+4096)
}

// add appends one record to chunk c.
func add(c []byte, rec []byte) []byte {
	c = binary.LittleEndian.AppendUint32(c, uint32(len(rec)))
	return append(c, rec...)
}

// publish hands chunk c to the worker, waiting while limit bytes wait
// already (the worker runs until the reader has stopped, so it frees them).
func (q *records) publish(c []byte) {
	if len(c) == 0 {
		return
	}
	q.mu.Lock()
	for q.pending > 0 && q.pending+len(c) > q.limit {
		q.cond.Wait()
	}
	q.ready = append(q.ready, c)
	q.pending += len(c)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every published chunk, oldest first.
func (q *records) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.ready
	q.ready = nil
	return out
}

// done gives back chunks the worker has handled.
func (q *records) done(chunks [][]byte) {
	q.mu.Lock()
	for _, c := range chunks {
		q.pending -= len(c)
		if len(q.free) < 8 {
			q.free = append(q.free, c)
		}
	}
	q.cond.Broadcast()
	q.mu.Unlock()
}

// each calls fn for every record of chunk c.
func each(c []byte, fn func([]byte)) {
	for len(c) >= 4 {
		n := int(binary.LittleEndian.Uint32(c))
		if n > len(c)-4 {
			return // cannot happen: chunks are written by add
		}
		fn(c[4 : 4+n])
		c = c[4+n:]
	}
}
