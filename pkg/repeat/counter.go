package repeat

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// DefaultCapacity bounds the keys a Counter tracks per window (about 2 MB
// of map at most, twice: this window's and the last).
const DefaultCapacity = 1 << 16

// Counter counts repeated keys in a stream of spans, in tumbling windows of
// Bound.Window by the spans' start times. It keeps a count per key and
// point for this window and the one before (a span arriving late is counted
// in its own window), so its memory is bounded by the keys of two windows,
// and at most capacity keys each: keys beyond that are not tracked, and
// their exchanges are counted as untracked. Add is for one goroutine; Stats
// may be read from any.
type Counter struct {
	bound    Bound
	capacity int
	onRepeat func(Repeated)
	seed     maphash.Seed
	h        maphash.Hash
	win      [2]window // [0]: the newest window, [1]: the one before
	keys     [2]atomic.Uint64
	exch     [2]atomic.Uint64
	untrack  atomic.Uint64
	scratch  []span.Key
}

type window struct {
	index  int64
	counts map[uint64]uint32
}

// Stats are a Counter's totals since it started.
type Stats struct {
	// Keys is the number of times a key went over the bound at a point
	// (once per key, point and window), by kind: [0] X-Request-ID, [1]
	// trace id.
	Keys [2]uint64
	// Exchanges is the number of exchanges beyond the bound, by kind.
	Exchanges [2]uint64
	// Untracked is the number of exchanges whose key could not be tracked
	// (the window's table was full).
	Untracked uint64
}

// NewCounter returns a Counter for bound (zero fields: the defaults) that
// tracks at most capacity keys per window (0: DefaultCapacity). onRepeat,
// if not nil, is called with the key and point each time a key goes over
// the bound (from Add's goroutine).
func NewCounter(bound Bound, capacity int, onRepeat func(Repeated)) *Counter {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	c := &Counter{bound: bound.OrDefault(), capacity: capacity, onRepeat: onRepeat, seed: maphash.MakeSeed()}
	c.h.SetSeed(c.seed)
	for i := range c.win {
		c.win[i] = window{index: -1 << 62, counts: map[uint64]uint32{}}
	}
	return c
}

// kindIndex is the Stats index of a key kind.
func kindIndex(k span.KeyKind) int {
	if k == span.KeyTraceID {
		return 1
	}
	return 0
}

// Add counts s if it is an exchange (PointOf) that carries a key.
func (c *Counter) Add(s *span.Span) {
	p, ok := PointOf(s)
	if !ok {
		return
	}
	c.scratch = Keys(s, c.scratch[:0])
	if len(c.scratch) == 0 {
		return
	}
	w := c.window(s.StartNs / int64(c.bound.Window))
	if w == nil {
		return // older than the last window
	}
	for _, k := range c.scratch {
		h := c.hash(k, p)
		n, ok := w.counts[h]
		if !ok && len(w.counts) >= c.capacity {
			c.untrack.Add(1)
			continue
		}
		n++
		w.counts[h] = n
		if int(n) <= c.bound.Exchanges {
			continue
		}
		i := kindIndex(k.Kind)
		c.exch[i].Add(1)
		if int(n) == c.bound.Exchanges+1 {
			c.keys[i].Add(1)
			if c.onRepeat != nil {
				c.onRepeat(Repeated{Key: k, Point: p, Service: s.Service, Exchanges: int(n)})
			}
		}
	}
}

// window returns the window of index i, moving the windows on when i is
// newer than the newest; nil when i is older than the one before it.
func (c *Counter) window(i int64) *window {
	switch {
	case i == c.win[0].index:
		return &c.win[0]
	case i == c.win[1].index:
		return &c.win[1]
	case i < c.win[0].index:
		return nil
	}
	old := c.win[1].counts
	clear(old)
	if i == c.win[0].index+1 {
		c.win[1] = c.win[0]
	} else {
		c.win[1] = window{index: i - 1, counts: map[uint64]uint32{}}
	}
	c.win[0] = window{index: i, counts: old}
	return &c.win[0]
}

func (c *Counter) hash(k span.Key, p Point) uint64 {
	h := &c.h
	h.Reset()
	var b [6]byte
	b[0], b[1] = byte(k.Kind), byte(p.Tap)
	binary.LittleEndian.PutUint32(b[2:], p.PID)
	h.Write(b[:])
	h.WriteString(p.Node)
	h.WriteByte(0)
	h.WriteString(p.NIC)
	h.WriteByte(0)
	if k.Kind == span.KeyTraceID {
		h.Write(k.T[:])
	} else {
		h.WriteString(k.S)
	}
	return h.Sum64()
}

// Stats returns the totals.
func (c *Counter) Stats() Stats {
	return Stats{
		Keys:      [2]uint64{c.keys[0].Load(), c.keys[1].Load()},
		Exchanges: [2]uint64{c.exch[0].Load(), c.exch[1].Load()},
		Untracked: c.untrack.Load(),
	}
}
