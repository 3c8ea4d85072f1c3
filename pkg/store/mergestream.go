package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/ristretto/v2/z"
)

// A merge's output is written with Badger's stream writer: its keys are
// sorted (batches in order, then the index, the meta and the distinct
// values), so they go straight into tables at the last level, without the
// write-ahead log, the memtable and its flush (ADR 0004, fifth round).
// Every key is written once, in key order, in one stream.

// mergedTable is the size of the tables of a merged shard. The stream
// writer builds tables of the last level, BaseTableSize times
// TableSizeMultiplier for each level below the first two, and allocates
// twice that for each table builder up front (Badger's defaults: 64 MiB
// tables, a 128 MiB buffer per merge).
const mergedTable = 8 << 20

// mergedOptions are for a merge's output, written by the stream writer.
func mergedOptions(dir string) badger.Options {
	o := badgerOptions(dir, false)
	base := int64(mergedTable)
	for i := 2; i < o.MaxLevels; i++ {
		base /= int64(o.TableSizeMultiplier)
	}
	return o.WithBaseTableSize(base)
}

// mergeStream writes the sorted entries of one merged shard.
type mergeStream struct {
	sw   *badger.StreamWriter
	last []byte // the last key written: keys must ascend
}

func newMergeStream(db *badger.DB) (*mergeStream, error) {
	sw := db.NewStreamWriter()
	// Incremental: the shard is new and empty, and unlike Prepare this
	// does not drop it (which would allocate a second memtable).
	if err := sw.PrepareIncremental(); err != nil {
		sw.Cancel()
		return nil, fmt.Errorf("preparing the stream writer: %w", err)
	}
	return &mergeStream{sw: sw}, nil
}

// write sends entries, whose keys must ascend after every key written
// before, as one buffer.
func (m *mergeStream) write(sets []kv) error {
	if len(sets) == 0 {
		return nil
	}
	var size int
	for _, e := range sets {
		size += len(e.k) + len(e.v) + 32
	}
	buf := z.NewBuffer(size, "store.mergeStream")
	defer buf.Release()
	for _, e := range sets {
		if m.last != nil && bytes.Compare(e.k, m.last) <= 0 {
			return fmt.Errorf("stream writer: key %x after %x", e.k, m.last)
		}
		m.last = append(m.last[:0], e.k...)
		badger.KVToBuffer(&pb.KV{Key: e.k, Value: e.v, Version: 1}, buf)
	}
	if err := m.sw.Write(buf); err != nil {
		return fmt.Errorf("stream writer: %w", err)
	}
	return nil
}

// finish writes the index, the meta and the distinct values and
// workloads of the shard, and flushes its tables.
func (w *shardWriter) finishStream() error {
	var sets []kv
	sw, err := w.encodeIndex()
	if err != nil {
		return fmt.Errorf("writing the index of %s: %w", w.dir, err)
	}
	if sw != nil {
		sets = sw.sets
		w.meta = sw.meta
	}
	for ve := range w.seen {
		sets = append(sets, kv{valuesKey(ve), nil})
	}
	for wk := range w.seenWorkload {
		sets = append(sets, kv{workloadKey(wk[0], wk[1]), nil})
	}
	if !slices.ContainsFunc(sets, func(e kv) bool { return len(e.k) == 1 && e.k[0] == pMeta }) {
		mb, _ := json.Marshal(w.meta)
		sets = append(sets, kv{[]byte{pMeta}, mb})
	}
	slices.SortFunc(sets, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	if err := w.stream.write(sets); err != nil {
		return fmt.Errorf("writing the index of %s: %w", w.dir, err)
	}
	if err := w.stream.sw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", w.dir, err)
	}
	w.segs = [3][]segment{}
	return nil
}

// abort ends a merge's shard without writing its index (the caller
// removes its directory).
func (w *shardWriter) abort() {
	if w.stream != nil {
		w.stream.sw.Cancel()
	}
	w.db.Close()
}
