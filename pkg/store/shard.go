package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// shardMeta is the M record of a shard, rewritten with every batch.
type shardMeta struct {
	Node    string `json:"node"`
	MinNs   int64  `json:"min_ns"`
	MaxNs   int64  `json:"max_ns"`
	Spans   int64  `json:"spans"`
	Batches int64  `json:"batches"`
	// Layout is the index layout (absent: layoutEntries); Indexed says a
	// layoutBlocks shard has its record blocks (written when it is sealed).
	Layout  int  `json:"layout,omitempty"`
	Indexed bool `json:"indexed,omitempty"`
	// SpanIDs bound the shard's span ids (ShardEntry.SpanIDs); empty:
	// unknown (shards written before, or merged from such).
	SpanIDs []IDRange `json:"span_ids,omitempty"`
}

// entry is the manifest entry of the sealed shard dir with this meta.
func (m *shardMeta) entry(name string, bytes int64, files []FileSum) ShardEntry {
	return ShardEntry{Name: name, MinNs: m.MinNs, MaxNs: m.MaxNs, Spans: m.Spans, Batches: m.Batches, Bytes: bytes,
		Files: files, SpanIDs: m.SpanIDs}
}

// layout returns the shard's index layout.
func (m *shardMeta) layout() int {
	if m.Layout == 0 {
		return layoutEntries
	}
	return m.Layout
}

// writeLayout is the layout of new shards; tests set layoutEntries to make
// shards as older collectors did.
var writeLayout = layoutBlocks

func badgerOptions(dir string, readOnly bool) badger.Options {
	o := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithReadOnly(readOnly).
		WithCompression(options.ZSTD).
		WithZSTDCompressionLevel(1).
		WithNumVersionsToKeep(1).
		WithMemTableSize(mergedMemTable).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(1 << 20).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false).
		WithDetectConflicts(false).
		// A shard is written once and read as it is: compacting its level 0
		// on close rewrote every table once more for no reader's benefit.
		WithCompactL0OnClose(false)
	return o
}

// readOptions are for opening a sealed shard read-only. A shard read once
// from start to end (once: a merge's source, every batch and block read
// once) is opened without Badger's block and index caches: it builds two
// ristretto caches, with their buffers and goroutines, at every open
// (~1 ms of CPU of a ~1.5 ms open, ADR 0004, ninth round), for blocks and
// indexes nothing reads twice. Readers keep them (queries read a shard's
// directories and blocks again and again). Compression is for writing
// only (each table's own is in Badger's MANIFEST, read-only writes
// nothing); Badger refuses it without a block cache.
func readOptions(dir string, once bool) badger.Options {
	o := badgerOptions(dir, true)
	if once {
		o = o.WithCompression(options.None).WithBlockCacheSize(0).WithIndexCacheSize(0)
	}
	return o
}

// headOptions are for the small shards a writer seals every few seconds:
// they live until their window is merged, so they skip block compression.
// A batch value (over headValueThreshold: all but the smallest) goes to
// the value log as it is, once, and the memtable holds its pointer, the
// meta and at seal the index blocks: a 2 MiB memtable (allocated and
// cleared at every open) takes a head, where a memtable holding the values
// needed 8 MiB, copied them into its arena and flushed them into a table.
//
// A head's writer reads nothing through caches (its tables are not
// compressed, and its merge and readers open it apart): no block or index
// cache, which Badger otherwise builds at every open (two ristretto caches,
// their buffers allocated and cleared every 2 s; ADR 0004, eighth round).
//
// Its value log files are headValueLog bytes: Badger refuses a value larger
// than a value log file ("Value with size … exceeded … limit"), and a batch
// value takes up to arrowipc.MaxDecodedBytes (ADR 0004, ninth round).
func headOptions(dir string) badger.Options {
	return badgerOptions(dir, false).WithCompression(options.None).WithMemTableSize(headMemTable).
		WithValueThreshold(headValueThreshold).WithValueLogFileSize(headValueLog).WithBlockCacheSize(0).WithIndexCacheSize(0)
}

// headValueLog is the size of a head's value log files: larger than any
// batch value. The writer cuts batches that would decode to more than
// arrowipc.MaxDecodedBytes; a batch's value is its buffers, each stored
// compressed only when that is shorter, and their IPC framing (a few KiB),
// so it takes less than that and 16 MiB more. At 16 MiB (before) a batch
// of incompressible strings over 16 MiB was dropped as a write error.
// Badger creates the file sparse at twice the size and maps it; its first
// write reads the file around it as far as the disk's readahead (8 MiB on
// this project's machines), whatever the file's size: 64 MiB costs no more
// CPU to open than 16 did (ADR 0004, ninth round).
const headValueLog = arrowipc.MaxDecodedBytes + 16<<20

// Memtable sizes of head shards and merge outputs (headroom.go counts
// what their flushes and compactions write), and the size from which a
// head's values go to its value log (at most 15% of its memtable, Badger's
// limit for one write).
const (
	headMemTable       = 2 << 20
	mergedMemTable     = 16 << 20
	headValueThreshold = 64 << 10
)

// shardWriter appends batches to one read-write Badger shard.
type shardWriter struct {
	dir  string
	db   *badger.DB
	meta shardMeta
	seen map[valueEntry]bool
	// seenWorkload: (namespace, workload) pairs written
	seenWorkload map[[2]string]bool
	// segs holds the index records of a layoutBlocks shard per run (in
	// runs order): sorted segments, one per batch of a head shard (in
	// memory) and one per source of a merge (its blocks as stored), merged
	// into blocks when the shard is sealed (runs.go).
	segs [3][]segment
	head bool // a head shard, not a merge's output
	// idsUnknown: a merged source had no span-id range, so neither has
	// the merge.
	idsUnknown bool
	// wal is what the writes so far put into Badger's logs (headroom.go);
	// mem what of it went into memtables (values under the threshold).
	wal, mem int64
	// stream writes a merge's output in key order (mergestream.go).
	stream *mergeStream
}

func openShardWriter(dir, node string, merged bool, memtable int64) (*shardWriter, error) {
	o := headOptions(dir)
	if memtable > o.MemTableSize {
		o = o.WithMemTableSize(memtable)
	}
	// A head a crash left replays its write-ahead logs, each into a
	// memtable: one written with a larger memtable (an older writer's 8
	// MiB) needs as large a one, or Badger exits the process (its arena
	// "too small").
	if m := memLogBytes(dir) / 2; m > o.MemTableSize {
		o = o.WithMemTableSize(m)
	}
	if merged {
		o = mergedOptions(dir)
	}
	db, err := badger.Open(o)
	if err != nil {
		return nil, fmt.Errorf("opening shard %s: %w", dir, err)
	}
	w := &shardWriter{dir: dir, db: db, meta: shardMeta{Node: node}, seen: map[valueEntry]bool{}, seenWorkload: map[[2]string]bool{},
		head: !merged}
	if merged {
		if w.stream, err = newMergeStream(db); err != nil {
			db.Close()
			return nil, fmt.Errorf("opening shard %s: %w", dir, err)
		}
		w.meta.Layout = writeLayout
		return w, nil
	}
	// A recovered shard continues its meta and batch numbering.
	err = db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte{pMeta})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &w.meta) })
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("reading shard meta %s: %w", dir, err)
	}
	switch {
	case w.meta.Batches == 0:
		w.meta.Layout = writeLayout
	case w.meta.layout() == layoutBlocks && !w.meta.Indexed:
		// A head shard recovered after a crash: its records were in memory.
		if err := w.rebuildRecords(); err != nil {
			db.Close()
			return nil, fmt.Errorf("recovering the index of %s: %w", dir, err)
		}
	}
	return w, nil
}

// runIndex is the position of a run in runs and shardWriter.recs.
func runIndex(run byte) int { return bytes.IndexByte(runs, run) }

// entryKeyLen is how much of a record of run is the Badger key in
// layoutEntries shards (after the prefix byte); the rest is the value.
func entryKeyLen(run byte) int {
	switch run {
	case runKey:
		return keyRecLen
	case runSpanID:
		return 8
	default:
		return searchLen - 1
	}
}

// rebuildRecords recomputes the index records from the stored batches.
func (w *shardWriter) rebuildRecords() error {
	var x indexer
	return w.db.View(func(txn *badger.Txn) error {
		return eachBatch(txn, func(n uint32, b *arrowipc.Batch) error {
			w.addSegments(x.batchRecords(b.All(), n))
			return nil
		})
	})
}

// addSegments adds a batch's (or a layout-1 merge source's) sorted
// records.
func (w *shardWriter) addSegments(recs [3][]byte) {
	for i, r := range recs {
		if len(r) > 0 {
			w.segs[i] = append(w.segs[i], segment{recs: r})
		}
	}
}

// recBytes is the size of the index records the shard holds in memory
// until sealed.
func (w *shardWriter) recBytes() int64 {
	var n int64
	for _, segs := range w.segs {
		for _, s := range segs {
			if s.src == nil {
				n += int64(len(s.recs))
			}
		}
	}
	return n
}

func (w *shardWriter) close() error {
	write := w.writeIndex
	if w.stream != nil {
		write = w.finishStream
	}
	if err := write(); err != nil {
		if w.stream != nil {
			w.abort()
		} else {
			w.db.Close()
		}
		return err
	}
	if err := w.db.Close(); err != nil {
		return fmt.Errorf("closing shard %s: %w", w.dir, err)
	}
	return nil
}

// copyShard appends the batches of a sealed shard to w, a merge's output
// (its stream writer, mergestream.go), without decoding them: each Arrow value is copied under a new batch number, and so are its
// index records (read from the source's blocks or, in a layoutEntries
// shard, its entries) with their batch number moved by the same offset.
func (w *shardWriter) copyShard(src *shard) error {
	off := uint32(w.meta.Batches)
	sm := src.meta
	return src.view(func(txn *badger.Txn) error {
		var copied []kv // the batches, in key order
		var batches uint32
		err := scanEntryKeys(txn, pBatch, true, func(k, v []byte) error {
			n, err := parseBatchKey(k)
			if err != nil {
				return err
			}
			if int64(n) >= sm.Batches {
				return fmt.Errorf("%w: batch %d of a shard of %d batches", errKey, n, sm.Batches)
			}
			batches++
			copied = append(copied, kv{batchKey(off + n), v})
			return nil
		})
		if err != nil {
			return err
		}
		if int64(batches) != sm.Batches {
			return fmt.Errorf("shard %s holds %d batches, its meta counts %d", src.dir, batches, sm.Batches)
		}
		// Values and workloads are written with the index (finishStream).
		for _, p := range []byte{pValues, pWorkld} {
			err := scanEntryKeys(txn, p, false, func(k, _ []byte) error {
				if p == pValues {
					ve, err := parseValuesKey(k)
					if err == nil {
						w.seen[ve] = true
					}
					return err
				}
				ns, wl, err := parseWorkloadKey(k)
				if err == nil {
					w.seenWorkload[[2]string{ns, wl}] = true
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		// The source's runs: sorted segments, its blocks as stored (decoded
		// when the index is written) or, in a layoutEntries shard, records.
		var recs [3][]byte
		var srcs [3]*blockSource
		for i, run := range runs {
			if sm.layout() == layoutBlocks {
				b, err := sourceBlocks(src, txn, run)
				if err != nil {
					return err
				}
				b.off, b.batches = off, sm.Batches
				srcs[i] = b
				continue
			}
			rl := recLen(run)
			bo := batchOffset(run)
			err := scanAllRecords(src, txn, run, func(rec []byte) error {
				n := binary.BigEndian.Uint32(rec[bo:])
				if int64(n) >= sm.Batches {
					return fmt.Errorf("%w: record of batch %d in a shard of %d batches", errBlock, n, sm.Batches)
				}
				j := len(recs[i])
				recs[i] = append(recs[i], rec[:rl]...)
				binary.BigEndian.PutUint32(recs[i][j+bo:], off+n)
				return nil
			})
			if err != nil {
				return err
			}
		}
		meta := w.meta
		if meta.Spans == 0 || sm.MinNs < meta.MinNs {
			meta.MinNs = sm.MinNs
		}
		meta.MaxNs = max(meta.MaxNs, sm.MaxNs)
		if len(sm.SpanIDs) == 0 && sm.Spans > 0 { // a source without ranges: the merge has none
			w.idsUnknown = true
		}
		if meta.SpanIDs = nil; !w.idsUnknown {
			meta.SpanIDs = slices.Clone(w.meta.SpanIDs)
			for _, r := range sm.SpanIDs {
				meta.SpanIDs = addID(meta.SpanIDs, r)
			}
		}
		meta.Spans += sm.Spans
		meta.Batches += sm.Batches
		if err := w.stream.write(copied); err != nil {
			return fmt.Errorf("copying %s: %w", src.dir, err)
		}
		w.meta = meta
		w.addSegments(recs)
		for i, b := range srcs {
			if b != nil && len(b.blocks) > 0 {
				w.segs[i] = append(w.segs[i], segment{src: b})
			}
		}
		return nil
	})
}

// sourceBlocks reads the encoded blocks of run in a layoutBlocks shard, in
// order, checked against its directory: every block listed, numbered from
// 0, holding together the records the directory counts. Their content is
// checked when they are decoded (parseBlockInto).
func sourceBlocks(sh *shard, txn *badger.Txn, run byte) (*blockSource, error) {
	d, err := sh.directory(txn, run)
	if err != nil {
		return nil, err
	}
	b := &blockSource{run: run, blocks: make([][]byte, 0, d.blocks())}
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{pBlock, run}
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	var total uint64
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		n := uint32(len(b.blocks))
		if !bytes.Equal(item.Key(), blockKey(run, n)) {
			return nil, fmt.Errorf("%w: index block %q %d is missing (found key %x)", errBlock, run, n, item.Key())
		}
		if len(b.blocks) == d.blocks() {
			return nil, fmt.Errorf("%w: %q blocks past the %d of the directory", errBlock, run, d.blocks())
		}
		err := item.Value(func(v []byte) error {
			if len(v) < blockHeader {
				return fmt.Errorf("%w: index block %q %d: %d bytes, header needs %d", errBlock, run, n, len(v), blockHeader)
			}
			total += uint64(binary.BigEndian.Uint32(v[2:])) // checked against its content when decoded
			b.blocks = append(b.blocks, append(make([]byte, 0, len(v)), v...))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(b.blocks) != d.blocks() {
		return nil, fmt.Errorf("%w: index block %q %d is missing", errBlock, run, len(b.blocks))
	}
	if total != d.records {
		return nil, fmt.Errorf("%w: %q blocks hold %d records, the directory lists %d", errBlock, run, total, d.records)
	}
	return b, nil
}

// batchOffset is where a record of run holds its batch number.
func batchOffset(run byte) int {
	if run == runKey {
		return 1 + 8 + 8
	}
	return 8 + 8
}
