package store

import (
	"container/list"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Reader answers queries over the sealed shards of one or more data
// directories. It is safe for concurrent use.
type Reader struct {
	roots  []string
	opener opener

	mu        sync.RWMutex
	nodes     map[string]*nodeState // node directory → state
	refreshed time.Time

	cacheMu sync.Mutex
	cache   map[batchID]*list.Element
	lru     *list.List

	blocks blockCache // decoded index blocks (layoutBlocks)

	opt      ReaderOptions
	warmMu   sync.Mutex    // one Warm at a time
	stop     chan struct{} // closed by Close: ends the resident loop
	stopOnce sync.Once
	done     sync.WaitGroup
}

// ReaderOptions configure a Reader. Zero values take the defaults.
type ReaderOptions struct {
	// Resident, when positive, keeps the shards whose newest span is at
	// most this much older than their node's newest span verified, open
	// and with their index directories read, ahead of queries: a
	// background loop opens them as the manifests list them, so that the
	// first query touching a recent shard does not pay for its checksums
	// (ADR 0002) and its open. Long-running readers (the plugin) set it;
	// one-shot commands leave it 0.
	Resident time.Duration
	// BlockCacheBytes bounds the decoded index blocks kept (default
	// DefaultBlockCacheBytes).
	BlockCacheBytes int
	// VerifyAheadBytes, with Resident, bounds the files of the shards
	// older than the resident ones that the background loop verifies
	// against their checksums (newest first) without opening them: the
	// first query reaching one then opens it without hashing it (ADR
	// 0002; only its files' sizes and times are checked again). Zero
	// takes DefaultVerifyAheadBytes, negative verifies none ahead.
	VerifyAheadBytes int64
}

// DefaultVerifyAheadBytes is ReaderOptions.VerifyAheadBytes's default: at
// ~1 GB/s of SHA-256, about a CPU-second once per reader.
const DefaultVerifyAheadBytes = 1 << 30

type nodeState struct {
	dir      string
	modTime  time.Time
	size     int64
	manifest *Manifest
	err      error
	open     map[string]*shard // shard name → open shard
	failed   map[string]error
}

// RefreshInterval bounds how often a Reader re-reads the manifests.
var RefreshInterval = 500 * time.Millisecond

// OpenReader reads the shards under dataDirs. Each directory is a node
// directory (holding MANIFEST.json) or a parent of node directories. The
// directories may be empty or missing: shards are picked up as they appear.
func OpenReader(dataDirs ...string) (*Reader, error) {
	return OpenReaderWith(ReaderOptions{}, dataDirs...)
}

// OpenReaderWith is OpenReader with options.
func OpenReaderWith(opt ReaderOptions, dataDirs ...string) (*Reader, error) {
	if len(dataDirs) == 0 {
		return nil, errors.New("store reader needs at least one data directory")
	}
	if opt.BlockCacheBytes <= 0 {
		opt.BlockCacheBytes = DefaultBlockCacheBytes
	}
	if opt.VerifyAheadBytes == 0 {
		opt.VerifyAheadBytes = DefaultVerifyAheadBytes
	}
	r := &Reader{roots: dataDirs, nodes: map[string]*nodeState{}, cache: map[batchID]*list.Element{}, lru: list.New(),
		opt: opt, stop: make(chan struct{})}
	r.blocks.max = opt.BlockCacheBytes
	r.refresh(true)
	if opt.Resident > 0 {
		r.done.Add(1)
		go r.residentLoop()
	}
	return r, nil
}

// Roots returns the data directories the reader was opened with.
func (r *Reader) Roots() []string { return append([]string(nil), r.roots...) }

// nodeDirs lists the node directories under the roots.
func (r *Reader) nodeDirs() []string {
	var out []string
	for _, root := range r.roots {
		if _, err := os.Stat(filepath.Join(root, ManifestName)); err == nil {
			out = append(out, root)
			continue
		}
		ents, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range ents {
			d := filepath.Join(root, e.Name())
			if _, err := os.Stat(filepath.Join(d, ManifestName)); e.IsDir() && err == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

// refresh re-reads changed manifests and closes shards that left them.
func (r *Reader) refresh(force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !force && time.Since(r.refreshed) < RefreshInterval {
		return
	}
	r.refreshed = time.Now()
	for _, d := range r.nodeDirs() {
		st, err := os.Stat(filepath.Join(d, ManifestName))
		if err != nil {
			continue
		}
		ns := r.nodes[d]
		if ns == nil {
			ns = &nodeState{dir: d, open: map[string]*shard{}, failed: map[string]error{}}
			r.nodes[d] = ns
		}
		if ns.manifest != nil && st.ModTime().Equal(ns.modTime) && st.Size() == ns.size {
			continue
		}
		var prevShards []string
		if ns.manifest != nil {
			for _, e := range ns.manifest.Shards {
				prevShards = append(prevShards, e.Name)
			}
		}
		m, err := readManifest(d)
		ns.modTime, ns.size = st.ModTime(), st.Size()
		if err != nil {
			ns.err = err
			continue
		}
		ns.manifest, ns.err = m, nil
		live := map[string]bool{}
		for _, s := range m.Shards {
			live[s.Name] = true
		}
		for name, sh := range ns.open {
			if !live[name] {
				sh.close()
				delete(ns.open, name)
				r.dropCached(sh.dir)
			}
		}
		for name := range ns.failed {
			if !live[name] {
				delete(ns.failed, name)
			}
		}
		for _, prev := range prevShards {
			if !live[prev] {
				r.opener.forget(filepath.Join(d, prev))
			}
		}
	}
}

// target is one shard a query reads.
type target struct {
	sh  *shard
	err error
}

// shards opens (once) and returns the shards overlapping [from, to] that
// keep (nil: all) accepts; to = 0 means no upper bound. Callers hold r.mu
// for writing.
func (r *Reader) shards(from, to int64, keep func(*ShardEntry) bool) []target {
	var out []target
	type pending struct {
		ns *nodeState
		e  ShardEntry
		at int // index in out
	}
	var open []pending
	for _, ns := range r.nodes {
		if ns.err != nil {
			out = append(out, target{err: &NodeError{Node: filepath.Base(ns.dir), Err: ns.err}})
		}
		if ns.manifest == nil {
			continue
		}
		for _, e := range ns.manifest.Shards {
			if e.MaxNs < from || (to != 0 && e.MinNs > to) || (keep != nil && !keep(&e)) {
				continue
			}
			if ferr := ns.failed[e.Name]; ferr != nil {
				out = append(out, target{err: ferr})
				continue
			}
			if sh, ok := ns.open[e.Name]; ok {
				out = append(out, target{sh: sh})
				continue
			}
			open = append(open, pending{ns, e, len(out)})
			out = append(out, target{})
		}
	}
	// Shards not open yet are verified and opened concurrently: hashing
	// their files is most of a cold query's time.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, p := range open {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sh, err := r.opener.open(filepath.Join(p.ns.dir, p.e.Name), p.e)
			out[p.at] = target{sh: sh, err: err}
		}()
	}
	wg.Wait()
	for _, p := range open {
		t := &out[p.at]
		switch prev, ok := p.ns.open[p.e.Name]; {
		case t.err != nil:
			p.ns.failed[p.e.Name] = t.err
		case ok: // opened meanwhile (Warm)
			t.sh.close()
			t.sh = prev
		default:
			p.ns.open[p.e.Name] = t.sh
		}
	}
	return out
}

// withShards refreshes, then calls fn for each shard overlapping [from, to].
// Errors of single shards are collected; fn's results are kept.
func (r *Reader) withShards(ctx context.Context, from, to int64, fn func(*shard) error) error {
	return r.withShardsFor(ctx, from, to, nil, fn)
}

// withShardsFor is withShards over the shards keep accepts (nil: all).
func (r *Reader) withShardsFor(ctx context.Context, from, to int64, keep func(*ShardEntry) bool, fn func(*shard) error) error {
	return r.eachShard(ctx, from, to, keep, 1, fn)
}

// withShardsConcurrently is withShardsFor calling fn on up to GOMAXPROCS
// shards at a time (fn must be safe for that): a lookup's window touches
// several shards, each decoding a block per key whether it holds the key
// or not.
func (r *Reader) withShardsConcurrently(ctx context.Context, from, to int64, keep func(*ShardEntry) bool, fn func(*shard) error) error {
	return r.eachShard(ctx, from, to, keep, runtime.GOMAXPROCS(0), fn)
}

// eachShard calls fn on the shards of [from, to] keep accepts, at most
// par at a time; the shards' errors are joined in the shards' order.
func (r *Reader) eachShard(ctx context.Context, from, to int64, keep func(*ShardEntry) bool, par int, fn func(*shard) error) error {
	r.refresh(false)
	// Opening shards mutates node state: take the write lock for that step.
	r.mu.Lock()
	ts := r.shards(from, to, keep)
	r.mu.Unlock()
	r.mu.RLock()
	defer r.mu.RUnlock()
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, par))
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return err
		}
		if t.err != nil {
			errs[i] = t.err
			continue
		}
		if t.sh.db.IsClosed() {
			continue // left the manifest while we were waiting
		}
		if par <= 1 || len(ts) == 1 {
			errs[i] = fn(t.sh)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(t.sh)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops the resident loop and closes every open shard.
func (r *Reader) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	r.done.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ns := range r.nodes {
		for name, sh := range ns.open {
			sh.close()
			delete(ns.open, name)
		}
	}
	r.cacheMu.Lock()
	for id, e := range r.cache {
		e.Value.(*cached).b.Release()
		delete(r.cache, id)
	}
	r.lru.Init()
	r.cacheMu.Unlock()
	return nil
}

// Refresh re-reads the manifests now, whatever RefreshInterval says (the
// object-store mirror calls it after listing newly downloaded shards).
func (r *Reader) Refresh() { r.refresh(true) }
