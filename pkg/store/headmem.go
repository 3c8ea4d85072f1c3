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
func headMemFor(mem int64) int64 { return quarterMoreMiB(mem, headMemTable, maxHeadMemTable) }

// quarterMoreMiB is n and a quarter more, rounded up to MiB, within lo–hi.
func quarterMoreMiB(n, lo, hi int64) int64 {
	n = (n + n/4 + 1<<20 - 1) &^ (1<<20 - 1)
	return min(hi, max(lo, n))
}

// Sizes of a head's value log files: Badger's least to the size every
// shard's were before (badgerOptions).
const (
	minHeadVlog = 1 << 20
	maxHeadVlog = 16 << 20
)

// headVlogFor sizes the next head's value log files to the last head's
// value logs (vlog bytes, after their seal) and a quarter more, in MiB.
// Badger creates each value log file at twice that size, sparse, and
// mapped; on the ext4 machine it was measured on, the first write into a
// new file cost CPU in proportion to the file's size, not to what is
// written (ADR 0004, seventh round: 1.5 ms for 16 MiB, 0.02 ms for 64
// KiB), and a head holding 0.5 MB of values paid for 32 MiB at every
// open, every 2 s. A head at the collector's rate (~8 MB of values) keeps
// one file, as before.
func headVlogFor(vlog int64) int64 { return quarterMoreMiB(vlog, minHeadVlog, maxHeadVlog) }

// vlogBytes is the size of the value log files among a shard's files.
func vlogBytes(files []FileSum) int64 {
	var n int64
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".vlog") {
			n += f.Size
		}
	}
	return n
}
