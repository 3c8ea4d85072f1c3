package store

import (
	"os"
	"path/filepath"
	"strings"
)

// memLogBytes is the size of the largest memtable write-ahead log (.mem
// file) in a shard directory; Badger creates each at twice its memtable
// size. 0 when there is none (a new or sealed shard).
func memLogBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			n = max(n, fi.Size())
		}
	}
	return n
}

// Sizes of a head's memtable: at least headMemTable; at most
// maxHeadMemTable.
const maxHeadMemTable = 16 << 20

// headMemFor sizes the next head's memtable to the last head's: what went
// into its memtables (index blocks, meta, small values; mem bytes) and a
// quarter more, in MiB, so that a head fills one memtable, flushed once
// at its seal: several would be flushed as they fill and, from five on,
// compacted. Its arena is allocated and cleared at every open, so it is no
// larger than that.
func headMemFor(mem int64) int64 {
	n := (mem + mem/4 + 1<<20 - 1) &^ (1<<20 - 1)
	return min(maxHeadMemTable, max(headMemTable, n))
}
