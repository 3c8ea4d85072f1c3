package store

import (
	"context"
	"errors"
	"path/filepath"
	"sort"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Stats describes what a Reader sees.
type Stats struct {
	Nodes              []NodeStats
	Shards             int
	Spans              int64
	Bytes              int64
	OldestNs, NewestNs int64 // span start times; 0 when empty
}

// NodeStats is the part of Stats of one node directory.
type NodeStats struct {
	Node, Dir          string
	Shards             int
	Merged             int
	Spans, Bytes       int64
	OldestNs, NewestNs int64
	Err                error // manifest unreadable
}

// nodeNames lists the node directories in order. Callers hold r.mu.
func (r *Reader) nodeNames() []string {
	dirs := make([]string, 0, len(r.nodes))
	for d := range r.nodes {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

// Stats sums the manifests; it opens no shard.
func (r *Reader) Stats(ctx context.Context) (Stats, error) {
	r.refresh(true)
	r.mu.RLock()
	defer r.mu.RUnlock()
	var st Stats
	var errs []error
	for _, d := range r.nodeNames() {
		ns := r.nodes[d]
		n := NodeStats{Dir: d, Node: filepath.Base(d), Err: ns.err}
		if ns.err != nil {
			errs = append(errs, ns.err)
		}
		if ns.manifest != nil {
			n.Node = ns.manifest.Node
			for _, s := range ns.manifest.Shards {
				n.Shards++
				if s.Merged {
					n.Merged++
				}
				n.Spans += s.Spans
				n.Bytes += s.Bytes
				if n.OldestNs == 0 || s.MinNs < n.OldestNs {
					n.OldestNs = s.MinNs
				}
				n.NewestNs = max(n.NewestNs, s.MaxNs)
			}
		}
		st.Nodes = append(st.Nodes, n)
		st.Shards += n.Shards
		st.Spans += n.Spans
		st.Bytes += n.Bytes
		if n.OldestNs != 0 && (st.OldestNs == 0 || n.OldestNs < st.OldestNs) {
			st.OldestNs = n.OldestNs
		}
		st.NewestNs = max(st.NewestNs, n.NewestNs)
	}
	return st, errors.Join(errs...)
}

// Verify checks every listed shard against the checksums recorded when it
// was sealed (files unchanged since their last check are not read again)
// and returns a ShardError for each shard that fails, with the errors of
// unreadable manifests. A shard that fails is closed and refused until a
// later Verify finds its files as sealed again (restored from a backup,
// say). It opens no shard.
func (r *Reader) Verify(ctx context.Context) error {
	r.refresh(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, d := range r.nodeNames() {
		ns := r.nodes[d]
		if ns.err != nil {
			errs = append(errs, ns.err)
		}
		if ns.manifest == nil {
			continue
		}
		for _, e := range ns.manifest.Shards {
			if err := ctx.Err(); err != nil {
				return err
			}
			var ve *verifyError
			if ferr := ns.failed[e.Name]; ferr != nil && !errors.As(ferr, &ve) {
				errs = append(errs, ferr) // Badger could not open it: not again
				continue
			}
			delete(ns.failed, e.Name) // refused by its checksums: repaired since?
			dir := filepath.Join(ns.dir, e.Name)
			if err := r.opener.verify(dir, e.Files); err != nil {
				err = &ShardError{dir, err}
				ns.failed[e.Name] = err
				if sh, ok := ns.open[e.Name]; ok {
					sh.close()
					delete(ns.open, e.Name)
					r.dropCached(sh.dir)
				}
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Dump calls fn for every span of every shard overlapping [fromNs, toNs]
// (0, 0: all), shard by shard in manifest order.
func (r *Reader) Dump(ctx context.Context, fromNs, toNs int64, fn func(*span.Span) bool) error {
	stopped := false // fn had enough: the errors of the other shards are still returned
	return r.withShards(ctx, fromNs, toNs, func(sh *shard) error {
		if stopped {
			return nil
		}
		spans, err := sh.all()
		for i := range spans {
			s := &spans[i]
			if (fromNs != 0 && s.StartNs < fromNs) || (toNs != 0 && s.StartNs > toNs) {
				continue
			}
			if !fn(s) {
				stopped = true
				return nil
			}
		}
		return err
	})
}
