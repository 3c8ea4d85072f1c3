package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// shardWrite is a set of Badger entries encoded for a shard but not yet
// written: a batch of spans or a shard's index. Its size is known before
// Badger sees a byte of it, so the writer can decide whether the disk has
// room for it (headroom.go); nothing of the shard changes until commit.
type shardWrite struct {
	spans int
	sets  []kv
	recs  [3][]byte // index records the batch adds (layoutBlocks), kept until the seal
	vals  []valueEntry
	wls   [][2]string
	meta  shardMeta // the shard's meta once written
	index bool      // the shard's index: its records are written
}

type kv struct{ k, v []byte }

// walEntryOverhead bounds what Badger adds to an entry in its write-ahead
// log (header, version, checksum); walTxnOverhead what a commit adds.
const (
	walEntryOverhead = 40
	walTxnOverhead   = 64
)

// walBytes is what the write adds to the shard's write-ahead log (or value
// log, for values over the threshold).
func (sw *shardWrite) walBytes() int64 {
	n := int64(walTxnOverhead)
	for _, e := range sw.sets {
		n += int64(len(e.k)+len(e.v)) + walEntryOverhead
	}
	return n
}

// memBytes is what the write puts into a head's memtable: its entries
// but the values that go to the value log.
func (sw *shardWrite) memBytes() int64 {
	n := int64(walTxnOverhead)
	for _, e := range sw.sets {
		n += int64(len(e.k)) + walEntryOverhead
		if len(e.v) < headValueThreshold {
			n += int64(len(e.v))
		}
	}
	return n
}

// recBytes is the raw size of the index records the batch adds.
func (sw *shardWrite) recBytes() int64 {
	return int64(len(sw.recs[0]) + len(sw.recs[1]) + len(sw.recs[2]))
}

// batchEncoder is the writer's encoder: the stored stream of a batch
// (arrowipc.Encoder) and its index records, both reused batch after batch.
// Not safe for concurrent use.
type batchEncoder struct {
	ipc *arrowipc.Encoder
	ix  indexer // the batches' index records
}

func newBatchEncoder() *batchEncoder { return &batchEncoder{ipc: arrowipc.NewEncoder()} }

// prepare encodes spans as one batch after the shard's current content (or
// several, when one would be larger than a reader accepts).
func (w *shardWriter) prepare(spans []span.Span, enc *batchEncoder) ([]*shardWrite, error) {
	var out []*shardWrite
	meta := w.meta
	seenV, seenW := map[valueEntry]bool{}, map[[2]string]bool{}
	var encode func(spans []span.Span) error
	encode = func(spans []span.Span) error {
		if len(spans) == 0 {
			return nil
		}
		val, err := enc.ipc.Encode(spans)
		if errors.Is(err, arrowipc.ErrTooLarge) && len(spans) > 1 {
			// Beyond what a reader accepts (arrowipc.MaxDecodedBytes): two batches.
			if err := encode(spans[:len(spans)/2]); err != nil {
				return err
			}
			return encode(spans[len(spans)/2:])
		}
		if err != nil {
			return err
		}
		sw := w.batchEntries(spans, val, meta, seenV, seenW, &enc.ix)
		meta = sw.meta
		out = append(out, sw)
		return nil
	}
	if err := encode(spans); err != nil {
		return nil, err
	}
	return out, nil
}

// batchEntries builds the entries of one batch: the Arrow value, its
// index entries or records, the values and workloads not seen before and
// the updated meta. seenV and seenW hold what earlier batches of the same
// prepare add.
func (w *shardWriter) batchEntries(spans []span.Span, val []byte, meta shardMeta, seenV map[valueEntry]bool, seenW map[[2]string]bool,
	x *indexer) *shardWrite {
	batch := uint32(meta.Batches)
	sw := &shardWrite{spans: len(spans), sets: []kv{{batchKey(batch), val}}}
	meta.SpanIDs = slices.Clone(meta.SpanIDs) // widened in place below: not the shard's until commit
	if meta.layout() == layoutBlocks {
		sw.recs = x.batchRecords(spans, batch)
	}
	var lastVE valueEntry
	for i := range spans {
		s := &spans[i]
		if meta.layout() != layoutBlocks {
			sw.sets = w.appendEntries(sw.sets, s, ref{start: s.StartNs, batch: batch, row: uint32(i)}, x)
		}
		if s.Workload != "" {
			wk := [2]string{s.Namespace, s.Workload}
			if !w.seenWorkload[wk] && !seenW[wk] {
				seenW[wk] = true
				sw.wls = append(sw.wls, wk)
				sw.sets = append(sw.sets, kv{workloadKey(s.Namespace, s.Workload), nil})
			}
		}
		// Spans of one connection follow each other with the same (and
		// the very same) strings: a value equal to the last span's is
		// seen already, without two lookups hashing its three strings.
		if ve := (valueEntry{s.Namespace, s.Service, s.Endpoint, s.L7Protocol}); i == 0 || ve != lastVE {
			lastVE = ve
			if !w.seen[ve] && !seenV[ve] {
				seenV[ve] = true
				sw.vals = append(sw.vals, ve)
				sw.sets = append(sw.sets, kv{valuesKey(ve), nil})
			}
		}
		if meta.Spans == 0 || s.StartNs < meta.MinNs {
			meta.MinNs = s.StartNs
		}
		meta.SpanIDs = addID(meta.SpanIDs, IDRange{s.SpanID, s.SpanID})
		if s.StartNs > meta.MaxNs {
			meta.MaxNs = s.StartNs
		}
		meta.Spans++
	}
	meta.Batches++
	sw.meta = meta
	mb, _ := json.Marshal(meta)
	sw.sets = append(sw.sets, kv{[]byte{pMeta}, mb})
	return sw
}

// appendEntries adds the index of span s as layoutEntries writes it: one
// Badger entry per record.
func (w *shardWriter) appendEntries(sets []kv, s *span.Span, r ref, x *indexer) []kv {
	var recs [3][]byte
	x.appendRecords(&recs, s, r)
	for i, run := range runs {
		wl, kl := recLen(run), entryKeyLen(run)
		for off := 0; off < len(recs[i]); off += wl {
			rec := recs[i][off : off+wl]
			var val []byte
			if kl < wl {
				val = rec[kl:]
			}
			sets = append(sets, kv{append([]byte{run}, rec[:kl]...), val})
		}
	}
	return sets
}

// commit writes prepared writes in order, each in one Badger write batch,
// and takes their records, values and meta into the shard. It returns the
// spans written (those of the writes before a failed one).
func (w *shardWriter) commit(sws ...*shardWrite) (spans int, err error) {
	for _, sw := range sws {
		wb := w.db.NewWriteBatch()
		for _, e := range sw.sets {
			if err := wb.Set(e.k, e.v); err != nil {
				wb.Cancel()
				return spans, fmt.Errorf("writing to %s: %w", w.dir, err)
			}
		}
		err := wb.Flush()
		wb.Cancel()
		if err != nil {
			return spans, fmt.Errorf("writing to %s: %w", w.dir, err)
		}
		spans += sw.spans
		w.wal += sw.walBytes()
		w.mem += sw.memBytes()
		w.meta = sw.meta
		if sw.index {
			w.segs = [3][]segment{}
			continue
		}
		w.addSegments(sw.recs)
		for _, ve := range sw.vals {
			w.seen[ve] = true
		}
		for _, wk := range sw.wls {
			w.seenWorkload[wk] = true
		}
	}
	return spans, nil
}

// encodeIndex encodes the sorted record blocks and directories of a
// layoutBlocks shard and marks it indexed; nil when it has none to write.
// An error is a merge source's block that does not decode.
func (w *shardWriter) encodeIndex() (*shardWrite, error) {
	if w.meta.layout() != layoutBlocks || w.meta.Indexed || w.meta.Batches == 0 {
		return nil, nil
	}
	enc, _ := blockCodec()
	if w.head {
		enc = headBlockEnc
	}
	sw := &shardWrite{index: true}
	var buf, col []byte
	for i, run := range runs {
		rl, cut := recLen(run), cutOf(run)
		var first []byte
		var n uint32
		var total uint64
		emit := func(blk []byte) {
			first = append(first, blk[:rl]...)
			sw.sets = append(sw.sets, kv{blockKey(run, n), encodeBlockWith(enc, run, blk, &col)})
			n++
			total += uint64(len(blk) / rl)
		}
		before := len(sw.sets)
		var ok bool
		var err error
		if buf, ok, err = mergeSegments(w.segs[i], rl, cut, buf, emit); err != nil {
			return nil, err
		}
		if !ok {
			// A segment was not sorted (a damaged source): sort them all.
			sw.sets, first, n, total = sw.sets[:before], nil, 0, 0
			var recs []byte
			for j := range w.segs[i] {
				r, err := w.segs[i][j].all()
				if err != nil {
					return nil, err
				}
				recs = append(recs, r...)
			}
			sortRecords(recs, rl)
			for off := 0; off < len(recs); off += cut * rl {
				emit(recs[off:min(len(recs), off+cut*rl)])
			}
		}
		sw.sets = append(sw.sets, kv{dirKey(run), encodeDir(run, total, first)})
	}
	sw.meta = w.meta
	sw.meta.Indexed = true
	mb, _ := json.Marshal(sw.meta)
	sw.sets = append(sw.sets, kv{[]byte{pMeta}, mb})
	return sw, nil
}

// writeIndex writes the shard's index (encodeIndex) now.
func (w *shardWriter) writeIndex() error {
	sw, err := w.encodeIndex()
	if err != nil {
		return fmt.Errorf("writing the index of %s: %w", w.dir, err)
	}
	if sw != nil {
		if _, err := w.commit(sw); err != nil {
			return fmt.Errorf("writing the index of %s: %w", w.dir, err)
		}
	}
	return nil
}
