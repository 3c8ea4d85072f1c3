package store

import (
	"context"
	"path/filepath"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// Follow reads, shard by shard, the listed shards whose newest span starts
// at or after fromNs and that done does not name (by shard directory): it
// calls fn with every span of such a shard, as a row of its decoded record
// (r.Row(i, &s) decodes it; r stays readable after fn returns, so a caller
// may keep r and decode its rows later instead of copying spans), then
// read with the shard's directory. A merged shard
// whose sources done all names holds nothing new: read gets it at once, so
// that the caller can mark it done too. It is how a follower (zerotrace
// export) sees every span as shards are sealed without reading a shard
// twice. A shard that fails part-way is not reported read (its spans so
// far may come again); errors of single shards are joined.
func (r *Reader) Follow(ctx context.Context, fromNs int64, done func(dir string) bool, fn func(r *span.Record, i int), read func(dir string)) error {
	r.refresh(false)
	want := map[string]bool{} // name/min_ns of the shards to read
	var known []string        // merged shards of sources all done
	r.mu.RLock()
	for _, ns := range r.nodes {
		if ns.manifest == nil {
			continue
		}
		for _, e := range ns.manifest.Shards {
			dir := filepath.Join(ns.dir, e.Name)
			if e.MaxNs < fromNs || done(dir) {
				continue
			}
			if e.Merged && len(e.Sources) > 0 && allDone(ns.dir, e.Sources, done) {
				known = append(known, dir)
				continue
			}
			want[e.Name+"/"+strconv.FormatInt(e.MinNs, 10)] = true
		}
	}
	r.mu.RUnlock()
	for _, dir := range known {
		read(dir)
	}
	if len(want) == 0 {
		return nil
	}
	keep := func(e *ShardEntry) bool { return want[e.Name+"/"+strconv.FormatInt(e.MinNs, 10)] }
	return r.withShardsFor(ctx, fromNs, 0, keep, func(sh *shard) error {
		if done(sh.dir) {
			return nil
		}
		err := sh.view(func(txn *badger.Txn) error {
			return eachBatch(txn, func(_ uint32, b *arrowipc.Batch) error {
				b.Retain() // the caller may keep b.Record: never released
				for i := 0; i < b.Len(); i++ {
					fn(b.Record, i)
				}
				return nil
			})
		})
		if err != nil {
			return err // read again at the next call
		}
		read(sh.dir)
		return nil
	})
}

func allDone(nodeDir string, names []string, done func(string) bool) bool {
	for _, n := range names {
		if !done(filepath.Join(nodeDir, n)) {
			return false
		}
	}
	return true
}
