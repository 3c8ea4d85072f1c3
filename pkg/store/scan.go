package store

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// scanRun calls fn with every index record of run in [lo, hi] (records of
// the run's full width), ascending or, with reverse, descending, until fn
// returns false. It reads either layout: the entries of a layoutEntries
// shard (key without its prefix, then value) or the blocks of a
// layoutBlocks shard. fn must not keep rec.
func (r *Reader) scanRun(sh *shard, txn *badger.Txn, run byte, lo, hi []byte, reverse bool, fn func(rec []byte) (bool, error)) error {
	if sh.meta.layout() == layoutEntries {
		return scanEntries(txn, run, lo, hi, reverse, fn)
	}
	d, err := sh.directory(txn, run)
	if err != nil {
		return err
	}
	w := recLen(run)
	if !reverse {
		for b := d.firstBlock(lo); b < d.blocks() && bytes.Compare(d.firstOf(b), hi) <= 0; b++ {
			recs, err := r.block(sh, txn, run, uint32(b))
			if err != nil {
				return err
			}
			for off := blockStart(recs, w, lo, false); off < len(recs); off += w {
				rec := recs[off : off+w]
				if bytes.Compare(rec, hi) > 0 {
					return nil
				}
				if more, err := fn(rec); !more || err != nil {
					return err
				}
			}
		}
		return nil
	}
	// The last block whose first record is ≤ hi, down to the block of lo.
	last := d.firstBlock(hi)
	for last+1 < d.blocks() && bytes.Compare(d.firstOf(last+1), hi) <= 0 {
		last++
	}
	for b := last; b >= 0 && d.blocks() > 0; b-- {
		recs, err := r.block(sh, txn, run, uint32(b))
		if err != nil {
			return err
		}
		for off := blockStart(recs, w, hi, true) - w; off >= 0; off -= w {
			rec := recs[off : off+w]
			if bytes.Compare(rec, hi) > 0 {
				continue
			}
			if bytes.Compare(rec, lo) < 0 {
				return nil
			}
			if more, err := fn(rec); !more || err != nil {
				return err
			}
		}
		if bytes.Compare(d.firstOf(b), lo) < 0 {
			return nil
		}
	}
	return nil
}

// blockStart is the offset in sorted recs of the first record ≥ key or,
// with after, of the first record > key (a reverse scan steps back one
// record from there); len(recs) when there is none.
func blockStart(recs []byte, w int, key []byte, after bool) int {
	lo, hi := 0, len(recs)/w
	for lo < hi {
		m := (lo + hi) / 2
		if bytes.Compare(recs[m*w:(m+1)*w], key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for after && lo < len(recs)/w && bytes.Equal(recs[lo*w:(lo+1)*w], key) {
		lo++
	}
	return lo * w
}

// scanEntries is scanRun over a layoutEntries shard.
func scanEntries(txn *badger.Txn, run byte, lo, hi []byte, reverse bool, fn func(rec []byte) (bool, error)) error {
	kl, w := entryKeyLen(run), recLen(run)
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{run}
	opt.Reverse = reverse
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	seek := append([]byte{run}, lo[:kl]...)
	if reverse {
		seek = append([]byte{run}, hi[:kl]...)
	}
	rec := make([]byte, 0, w)
	for it.Seek(seek); it.Valid(); it.Next() {
		key := it.Item().Key()
		if len(key) != kl+1 {
			return fmt.Errorf("%w: %q entry of %d bytes", errKey, run, len(key))
		}
		rec = append(rec[:0], key[1:]...)
		if kl < w {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if run == runSearch && len(v) == searchVal { // before span/2: no workload
				v = append(v, make([]byte, searchVal2-searchVal)...)
			}
			if len(v) != w-kl {
				return fmt.Errorf("%w: %q value of %d bytes", errKey, run, len(v))
			}
			rec = append(rec, v...)
		}
		if (!reverse && bytes.Compare(rec[:kl], hi[:kl]) > 0) || (reverse && bytes.Compare(rec[:kl], lo[:kl]) < 0) {
			return nil
		}
		if bytes.Compare(rec, lo) < 0 || bytes.Compare(rec, hi) > 0 {
			continue
		}
		if more, err := fn(rec); !more || err != nil {
			return err
		}
	}
	return nil
}

// directory returns the directory of run, read on first use.
func (sh *shard) directory(txn *badger.Txn, run byte) (*directory, error) {
	sh.dirMu.Lock()
	defer sh.dirMu.Unlock()
	i := runIndex(run)
	if d := sh.dirs[i]; d != nil {
		return d, nil
	}
	it, err := txn.Get(dirKey(run))
	if err != nil {
		return nil, fmt.Errorf("index directory %q: %w", run, err)
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("index directory %q: %w", run, err)
	}
	d, err := parseDir(run, v)
	if err != nil {
		return nil, fmt.Errorf("index directory %q: %w", run, err)
	}
	sh.dirs[i] = d
	return d, nil
}

// blockID names one index block of a shard in the reader's block cache.
type blockID struct {
	dir string
	run byte
	n   uint32
}

// blockCache keeps decoded index blocks, least recently used out.
type blockCache struct {
	mu    sync.Mutex
	m     map[blockID]*list.Element
	lru   list.List
	bytes int
	max   int // bytes kept at most (ReaderOptions.BlockCacheBytes)
}

type cachedBlock struct {
	id   blockID
	recs []byte
}

// DefaultBlockCacheBytes bounds the decoded index blocks a reader keeps
// unless ReaderOptions say otherwise.
const DefaultBlockCacheBytes = 32 << 20

func (c *blockCache) get(id blockID) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cachedBlock).recs
	}
	return nil
}

func (c *blockCache) put(id blockID, recs []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[blockID]*list.Element{}
	}
	if _, ok := c.m[id]; ok {
		return
	}
	c.m[id] = c.lru.PushFront(&cachedBlock{id, recs})
	c.bytes += len(recs)
	for c.bytes > c.max && c.lru.Len() > 0 {
		e := c.lru.Back()
		c.lru.Remove(e)
		delete(c.m, e.Value.(*cachedBlock).id)
		c.bytes -= len(e.Value.(*cachedBlock).recs)
	}
}

// drop forgets the blocks of a shard that was closed.
func (c *blockCache) drop(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if id.dir == dir {
			c.lru.Remove(e)
			delete(c.m, id)
			c.bytes -= len(e.Value.(*cachedBlock).recs)
		}
	}
}

// block returns the decoded records of block n of run, cached.
func (r *Reader) block(sh *shard, txn *badger.Txn, run byte, n uint32) ([]byte, error) {
	id := blockID{sh.dir, run, n}
	if recs := r.blocks.get(id); recs != nil {
		return recs, nil
	}
	recs, err := readBlock(txn, run, n)
	if err != nil {
		return nil, err
	}
	r.blocks.put(id, recs)
	return recs, nil
}

func readBlock(txn *badger.Txn, run byte, n uint32) ([]byte, error) {
	it, err := txn.Get(blockKey(run, n))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: index block %q %d is missing", errBlock, run, n)
	}
	if err != nil {
		return nil, fmt.Errorf("index block %q %d: %w", run, n, err)
	}
	var recs []byte
	err = it.Value(func(v []byte) error {
		recs, err = parseBlock(run, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("index block %q %d: %w", run, n, err)
	}
	return recs, nil
}

// scanEntryKeys calls f with every key (and, with values, value) of a
// record type.
func scanEntryKeys(txn *badger.Txn, prefix byte, values bool, f func(k, v []byte) error) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{prefix}
	opt.PrefetchValues = values
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var v []byte
		if values {
			var err error
			if v, err = it.Item().ValueCopy(nil); err != nil {
				return err
			}
		}
		if err := f(it.Item().KeyCopy(nil), v); err != nil {
			return err
		}
	}
	return nil
}

// scanAllRecords calls f with every index record of run in a shard of
// either layout, in order.
func scanAllRecords(sh *shard, txn *badger.Txn, run byte, f func(rec []byte) error) error {
	w := recLen(run)
	lo, hi := make([]byte, w), bytes.Repeat([]byte{0xff}, w)
	if sh.meta.layout() == layoutEntries {
		return scanEntries(txn, run, lo, hi, false, func(rec []byte) (bool, error) { return true, f(rec) })
	}
	d, err := sh.directory(txn, run)
	if err != nil {
		return err
	}
	var total uint64
	for b := 0; b < d.blocks(); b++ {
		recs, err := readBlock(txn, run, uint32(b))
		if err != nil {
			return err
		}
		total += uint64(len(recs) / w)
		for off := 0; off < len(recs); off += w {
			if err := f(recs[off : off+w]); err != nil {
				return err
			}
		}
	}
	if total != d.records {
		return fmt.Errorf("%w: %q blocks hold %d records, the directory lists %d", errBlock, run, total, d.records)
	}
	return nil
}
