package store

// recArena keeps the memory of one run's index segments whose shard was
// sealed for the segments of the next batches: a head holds 2 s of
// records (~200 bytes per span) that would otherwise be allocated, cleared
// and collected batch after batch (128 MB in 8 s of nginx + wrk).
type recArena struct {
	free  [][]byte // released slices
	bytes int      // their capacity in all
}

// arenaMaxBytes bounds what an arena keeps: what a head of ~2 s at 100k
// spans/s releases of its largest run.
const arenaMaxBytes = 32 << 20

// take returns a slice of n bytes: a released one that fits, or a new one
// with room for a batch slightly larger next time.
func (a *recArena) take(n int) []byte {
	if n == 0 {
		return nil
	}
	for i := len(a.free) - 1; i >= 0; i-- {
		if b := a.free[i]; cap(b) >= n {
			last := len(a.free) - 1
			a.free[i] = a.free[last]
			a.free[last] = nil
			a.free = a.free[:last]
			a.bytes -= cap(b)
			return b[:n]
		}
	}
	return make([]byte, n, n+n/8)
}

// put releases b, which its holder no longer reads.
func (a *recArena) put(b []byte) {
	if cap(b) > 0 && a.bytes+cap(b) <= arenaMaxBytes {
		a.free = append(a.free, b[:0])
		a.bytes += cap(b)
	}
}
