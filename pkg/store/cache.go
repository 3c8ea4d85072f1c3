package store

import (
	"github.com/dgraph-io/badger/v4"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// The reader keeps the cacheBatches most recently used decoded batches,
// by shard directory and batch number; a shard that leaves its manifest
// drops its batches and index blocks (dropCached).
type batchID struct {
	dir string
	n   uint32
}

// cached is one entry of the reader's LRU list.
type cached struct {
	id batchID
	b  *arrowipc.Batch
}

const cacheBatches = 256

// dropCached forgets the cached batches and index blocks of a shard.
func (r *Reader) dropCached(dir string) {
	r.blocks.drop(dir)
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	for id, e := range r.cache {
		if id.dir == dir {
			e.Value.(*cached).b.Release()
			r.lru.Remove(e)
			delete(r.cache, id)
		}
	}
}

// getBatch returns a decoded batch, cached.
func (r *Reader) getBatch(sh *shard, txn *badger.Txn, n uint32) (*arrowipc.Batch, error) {
	id := batchID{sh.dir, n}
	r.cacheMu.Lock()
	if e, ok := r.cache[id]; ok {
		r.lru.MoveToFront(e)
		b := e.Value.(*cached).b
		r.cacheMu.Unlock()
		return b, nil
	}
	r.cacheMu.Unlock()
	b, err := sh.batch(txn, n)
	if err != nil {
		return nil, err
	}
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	if e, ok := r.cache[id]; ok {
		b.Release()
		return e.Value.(*cached).b, nil
	}
	r.cache[id] = r.lru.PushFront(&cached{id, b})
	for r.lru.Len() > cacheBatches {
		e := r.lru.Back()
		c := e.Value.(*cached)
		// Batches handed out are only read under r.mu.RLock within one query;
		// eviction never releases memory Go still references (Go allocator).
		r.lru.Remove(e)
		delete(r.cache, c.id)
	}
	return b, nil
}
