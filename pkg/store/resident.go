package store

import (
	"context"
	"path/filepath"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// cand is a shard of a node's manifest the resident loop may open or verify.
type cand struct {
	ns *nodeState
	e  ShardEntry
}

// residentLoop keeps the recent shards resident (ReaderOptions.Resident)
// until Close.
func (r *Reader) residentLoop() {
	defer r.done.Done()
	tick := time.NewTicker(RefreshInterval)
	defer tick.Stop()
	for {
		r.Warm(context.Background())
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
	}
}

// Warm verifies and opens, and reads the index directories of, the shards
// ReaderOptions.Resident keeps resident that are not open yet, and returns
// how many are resident. The resident loop calls it; callers may too (the
// benchmark, to start from a reader that has been running). Shards that
// fail are remembered as failed, as a query would, and answer with their
// error.
func (r *Reader) Warm(ctx context.Context) int {
	if r.opt.Resident <= 0 {
		return 0
	}
	r.warmMu.Lock()
	defer r.warmMu.Unlock()
	r.refresh(false)
	var todo, older []cand
	resident := 0
	r.mu.RLock()
	for _, ns := range r.nodes {
		if ns.manifest == nil {
			continue
		}
		var newest int64
		for _, e := range ns.manifest.Shards {
			newest = max(newest, e.MaxNs)
		}
		for _, e := range ns.manifest.Shards {
			switch {
			case ns.failed[e.Name] != nil:
			case e.MaxNs < newest-int64(r.opt.Resident):
				older = append(older, cand{ns, e})
			case ns.open[e.Name] != nil:
				resident++
			default:
				todo = append(todo, cand{ns, e})
			}
		}
	}
	r.mu.RUnlock()
	// Newest first: the most likely to be asked for.
	sort.Slice(todo, func(i, j int) bool { return todo[i].e.MaxNs > todo[j].e.MaxNs })
	for _, c := range todo {
		if ctx.Err() != nil {
			break
		}
		select {
		case <-r.stop:
			return resident
		default:
		}
		// Verifying and opening take no lock: queries go on meanwhile.
		sh, err := r.opener.open(filepath.Join(c.ns.dir, c.e.Name), c.e)
		r.mu.Lock()
		listed := c.ns.lists(c.e.Name)
		switch {
		case !listed || c.ns.open[c.e.Name] != nil:
			if sh != nil {
				sh.close()
			}
			sh = nil
			if !listed { // left the manifest while it was verified
				r.opener.forget(filepath.Join(c.ns.dir, c.e.Name))
			}
		case err != nil:
			c.ns.failed[c.e.Name] = err
		default:
			c.ns.open[c.e.Name] = sh
			resident++
		}
		r.mu.Unlock()
		if sh != nil && sh.meta.layout() == layoutBlocks {
			r.mu.RLock()
			if !sh.db.IsClosed() {
				sh.view(func(txn *badger.Txn) error {
					for _, run := range runs {
						if _, err := sh.directory(txn, run); err != nil {
							return err
						}
					}
					return nil
				})
			}
			r.mu.RUnlock()
		}
	}
	r.verifyAhead(ctx, older)
	return resident
}

// verifyAhead verifies the files of the shards of older (newest first, up
// to ReaderOptions.VerifyAheadBytes of files, counting those verified
// before) without opening them. A shard failing is remembered as failed,
// as a query opening it would.
func (r *Reader) verifyAhead(ctx context.Context, older []cand) {
	sort.Slice(older, func(i, j int) bool { return older[i].e.MaxNs > older[j].e.MaxNs })
	budget := r.opt.VerifyAheadBytes
	for _, c := range older {
		for _, f := range c.e.Files {
			budget -= f.Size
		}
		if budget < 0 || ctx.Err() != nil {
			return
		}
		select {
		case <-r.stop:
			return
		default:
		}
		dir := filepath.Join(c.ns.dir, c.e.Name)
		r.mu.RLock()
		open := c.ns.open[c.e.Name] != nil
		r.mu.RUnlock()
		if open || r.opener.known(dir, c.e.Files) {
			continue
		}
		// Hashing takes no lock: queries go on meanwhile.
		err := r.opener.verify(dir, c.e.Files)
		r.mu.Lock()
		listed := c.ns.lists(c.e.Name)
		switch {
		case !listed: // left the manifest while it was verified
			r.opener.forget(dir)
		case err != nil && c.ns.open[c.e.Name] == nil:
			c.ns.failed[c.e.Name] = &ShardError{dir, err}
		}
		r.mu.Unlock()
	}
}

// lists reports whether the node's manifest holds the shard name.
func (ns *nodeState) lists(name string) bool {
	if ns.manifest == nil {
		return false
	}
	for _, e := range ns.manifest.Shards {
		if e.Name == name {
			return true
		}
	}
	return false
}
