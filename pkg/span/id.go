package span

import (
	"hash/fnv"
	"sync/atomic"
	"time"
)

// IDGenerator hands out span ids that are unique per collector and, in
// practice, across collectors and restarts: the top 16 bits hash the node
// name, the low 48 bits count up from the start time in microseconds. A
// collector producing fewer than one span per microsecond on average never
// reaches the range a later restart begins at; 2^48 µs is about 8.9 years.
type IDGenerator struct {
	prefix uint64
	next   atomic.Uint64
}

// NewIDGenerator returns a generator for the named node.
func NewIDGenerator(node string, now time.Time) *IDGenerator {
	h := fnv.New32a()
	h.Write([]byte(node))
	g := &IDGenerator{prefix: uint64(h.Sum32()&0xffff) << 48}
	g.next.Store(uint64(now.UnixMicro()))
	return g
}

// Next returns a fresh, non-zero id. Safe for concurrent use.
func (g *IDGenerator) Next() uint64 {
	n := g.next.Add(1) & (1<<48 - 1)
	if n == 0 {
		n = g.next.Add(1) & (1<<48 - 1)
	}
	return g.prefix | n
}
