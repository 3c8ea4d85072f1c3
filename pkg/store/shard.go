package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// shardMeta is the M record of a shard, rewritten with every batch.
type shardMeta struct {
	Node    string `json:"node"`
	MinNs   int64  `json:"min_ns"`
	MaxNs   int64  `json:"max_ns"`
	Spans   int64  `json:"spans"`
	Batches int64  `json:"batches"`
}

func badgerOptions(dir string, readOnly bool) badger.Options {
	o := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithReadOnly(readOnly).
		WithCompression(options.ZSTD).
		WithZSTDCompressionLevel(1).
		WithNumVersionsToKeep(1).
		WithMemTableSize(16 << 20).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(1 << 20).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false).
		WithDetectConflicts(false)
	return o
}

// headOptions are for the small shards a writer seals every few seconds:
// they live until their window is merged, so they skip block compression
// and the compaction on close (the merged shard is compressed and compact).
func headOptions(dir string) badger.Options {
	return badgerOptions(dir, false).WithCompression(options.None).WithCompactL0OnClose(false)
}

// shardWriter appends batches to one read-write Badger shard.
type shardWriter struct {
	dir  string
	db   *badger.DB
	meta shardMeta
	seen map[valueEntry]bool
	// seenWorkload: (namespace, workload) pairs written
	seenWorkload map[[2]string]bool
	kbuf         []byte
	vbuf         []byte
	keys         []span.Key
}

func openShardWriter(dir, node string, merged bool) (*shardWriter, error) {
	o := headOptions(dir)
	if merged {
		o = badgerOptions(dir, false).WithCompactL0OnClose(true)
	}
	db, err := badger.Open(o)
	if err != nil {
		return nil, fmt.Errorf("opening shard %s: %w", dir, err)
	}
	w := &shardWriter{dir: dir, db: db, meta: shardMeta{Node: node}, seen: map[valueEntry]bool{}, seenWorkload: map[[2]string]bool{}}
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
	return w, nil
}

// write stores one batch of spans: the Arrow value, its index entries and
// the updated meta, in one Badger write batch.
func (w *shardWriter) write(spans []span.Span, b *span.Builder) error {
	if len(spans) == 0 {
		return nil
	}
	for i := range spans {
		b.Append(&spans[i])
	}
	rec := b.NewRecord()
	val, err := encodeBatch(rec)
	rec.Release()
	if errors.Is(err, errBatchTooLarge) && len(spans) > 1 {
		// Beyond what a reader accepts (maxDecodedBytes): two batches.
		if err := w.write(spans[:len(spans)/2], b); err != nil {
			return err
		}
		return w.write(spans[len(spans)/2:], b)
	}
	if err != nil {
		return err
	}
	batch := uint32(w.meta.Batches)
	wb := w.db.NewWriteBatch()
	defer wb.Cancel()
	if err := wb.Set(batchKey(batch), val); err != nil {
		return err
	}
	meta := w.meta
	for i := range spans {
		s := &spans[i]
		r := ref{start: s.StartNs, batch: batch, row: uint32(i)}
		w.keys = s.IndexKeys(w.keys[:0])
		for _, k := range w.keys {
			w.kbuf = corrKey(w.kbuf, k.Kind, keyValue(k), r)
			if err := wb.Set(append([]byte(nil), w.kbuf...), nil); err != nil {
				return err
			}
		}
		rv := make([]byte, refLen)
		putRef(rv, r)
		if err := wb.Set(spanIDKey(s.SpanID), rv); err != nil {
			return err
		}
		sf := searchFields{service: hashString(s.Service), endpoint: hashString(s.Endpoint), protocol: s.L7Protocol,
			status: s.ResponseStatus, tap: s.TapSide, duration: int64(s.Duration())}
		if s.Workload != "" {
			sf.workload = hashString(s.Workload)
			wk := [2]string{s.Namespace, s.Workload}
			if !w.seenWorkload[wk] {
				w.seenWorkload[wk] = true
				if err := wb.Set(workloadKey(s.Namespace, s.Workload), nil); err != nil {
					return err
				}
			}
		}
		w.kbuf = searchKey(w.kbuf, hashString(s.Namespace), r)
		if err := wb.Set(append([]byte(nil), w.kbuf...), sf.put(nil)); err != nil {
			return err
		}
		ve := valueEntry{s.Namespace, s.Service, s.Endpoint, s.L7Protocol}
		if !w.seen[ve] {
			w.seen[ve] = true
			if err := wb.Set(valuesKey(ve), nil); err != nil {
				return err
			}
		}
		if meta.Spans == 0 || s.StartNs < meta.MinNs {
			meta.MinNs = s.StartNs
		}
		if s.StartNs > meta.MaxNs {
			meta.MaxNs = s.StartNs
		}
		meta.Spans++
	}
	meta.Batches++
	mb, _ := json.Marshal(meta)
	if err := wb.Set([]byte{pMeta}, mb); err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("writing batch to %s: %w", w.dir, err)
	}
	w.meta = meta
	return nil
}

func (w *shardWriter) close() error {
	if err := w.db.Close(); err != nil {
		return fmt.Errorf("closing shard %s: %w", w.dir, err)
	}
	return nil
}
