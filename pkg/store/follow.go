package store

import (
	"context"
	"path/filepath"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Follow reads, shard by shard, the listed shards whose newest span starts
// at or after fromNs and that done does not name (by shard directory), and
// calls fn with each one's directory and spans. A merged shard whose
// sources done all names holds nothing new: fn gets it with no spans, so
// that the caller can mark it done too. It is how a follower (zerotrace
// export) sees every span once as shards are sealed, without reading a
// shard twice. Errors of single shards are joined; fn's error stops.
func (r *Reader) Follow(ctx context.Context, fromNs int64, done func(dir string) bool, fn func(dir string, spans []span.Span) error) error {
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
		if err := fn(dir, nil); err != nil {
			return err
		}
	}
	if len(want) == 0 {
		return nil
	}
	keep := func(e *ShardEntry) bool { return want[e.Name+"/"+strconv.FormatInt(e.MinNs, 10)] }
	var stop error
	err := r.withShardsFor(ctx, fromNs, 0, keep, func(sh *shard) error {
		if stop != nil || done(sh.dir) {
			return nil
		}
		spans, err := sh.all()
		if err != nil {
			return err // the shard is read again at the next call
		}
		stop = fn(sh.dir, spans)
		return nil
	})
	if stop != nil {
		return stop
	}
	return err
}

func allDone(nodeDir string, names []string, done func(string) bool) bool {
	for _, n := range names {
		if !done(filepath.Join(nodeDir, n)) {
			return false
		}
	}
	return true
}
