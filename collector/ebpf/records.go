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

// eventRecord returns ring record rec cut to its event: the header and the
// cap bytes captured. A syscall's event with at most 1 KiB of payload is
// built in a record of its size class (bpf/socket/socket.bpf.c RING_STEP),
// up to 63 bytes longer than the event; the bytes past it are an earlier
// lap's. A record shorter than its header or than its cap says is kept
// whole (DecodeEvent rejects it).
func eventRecord(rec []byte) []byte {
	if len(rec) < EventHeaderSize {
		return rec
	}
	if n := uint64(EventHeaderSize) + uint64(binary.LittleEndian.Uint32(rec[40:])); n < uint64(len(rec)) {
		return rec[:n]
	}
	return rec
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
	if n := len(q.ready); n > 0 && cap(q.ready[n-1])-len(q.ready[n-1]) >= len(c) {
		// The worker is behind and the newest waiting chunk has room: the
		// records go there, so a trickle of small chunks published every
		// poll while the worker is stuck holds about what it carries, not
		// a whole chunk's memory each.
		q.ready[n-1] = append(q.ready[n-1], c...)
		q.recycle(c)
	} else {
		q.ready = append(q.ready, c)
	}
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
		q.recycle(c)
	}
	q.cond.Broadcast()
	q.mu.Unlock()
}

// recycle keeps chunk c for reuse, up to as many chunks as the limit
// holds (what a burst needed once, it needs again: allocating and faulting
// in chunks of 260 KiB anew was ~2% of the collector's CPU under nginx +
// wrk with 8 kept); q.mu is held.
func (q *records) recycle(c []byte) {
	if len(q.free) < max(8, q.limit/chunkSize) {
		q.free = append(q.free, c[:0])
	}
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
