package store

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// ShardError names a shard that could not be read. Queries return the
// results of every other shard together with the joined ShardErrors.
type ShardError struct {
	Shard string // shard directory
	Err   error
}

func (e *ShardError) Error() string { return fmt.Sprintf("shard %s: %v", e.Shard, e.Err) }
func (e *ShardError) Unwrap() error { return e.Err }

// shard is one sealed shard opened read-only (see opener).
type shard struct {
	dir  string // the shard's directory
	db   *badger.DB
	meta shardMeta

	dirMu sync.Mutex
	dirs  [3]*directory // layoutBlocks: run directories, read once
}

// openReadOnly turns Badger panics on corrupt files into errors. Panics in
// goroutines Badger starts cannot be recovered: the opener verifies the
// files before Badger sees them.
func openReadOnly(dir string) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("opening read-only: badger panicked: %v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil, fmt.Errorf("not a Badger directory: %w", err)
	}
	db, err = badger.Open(badgerOptions(dir, true))
	if err != nil {
		return nil, fmt.Errorf("opening read-only: %w", err)
	}
	return db, nil
}

func (s *shard) close() { s.db.Close() }

// view runs fn in a read transaction, turning panics (and faults on mapped
// files) into a ShardError.
func (s *shard) view(fn func(txn *badger.Txn) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ShardError{s.dir, fmt.Errorf("badger panicked: %v", r)}
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if err := s.db.View(fn); err != nil {
		var se *ShardError
		if errors.As(err, &se) {
			return err
		}
		return &ShardError{s.dir, err}
	}
	return nil
}

func (s *shard) batch(txn *badger.Txn, n uint32) (*Batch, error) {
	it, err := txn.Get(batchKey(n))
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", n, err)
	}
	var b *Batch
	err = it.Value(func(v []byte) error {
		var err error
		b, err = DecodeBatch(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", n, err)
	}
	return b, nil
}

// all decodes every span of the shard in batch order.
func (s *shard) all() ([]span.Span, error) {
	var out []span.Span
	err := s.view(func(txn *badger.Txn) error {
		return eachBatch(txn, func(_ uint32, b *Batch) error {
			out = append(out, b.All()...)
			return nil
		})
	})
	return out, err
}

// eachBatch decodes every batch of a shard in order and calls fn with it;
// the batch is released when fn returns.
func eachBatch(txn *badger.Txn, fn func(n uint32, b *Batch) error) error {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{pBatch}
	it := txn.NewIterator(opt)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		n, err := parseBatchKey(it.Item().Key())
		if err != nil {
			return err
		}
		err = it.Item().Value(func(v []byte) error {
			b, err := DecodeBatch(v)
			if err != nil {
				return fmt.Errorf("batch %d: %w", n, err)
			}
			defer b.Release()
			return fn(n, b)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

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
}

type nodeState struct {
	dir      string
	modTime  time.Time
	size     int64
	manifest *Manifest
	err      error
	open     map[string]*shard // shard name → open shard
	failed   map[string]error
}

type batchID struct {
	dir string
	n   uint32
}

type cached struct {
	id batchID
	b  *Batch
}

const cacheBatches = 256

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
	type cand struct {
		ns *nodeState
		e  ShardEntry
	}
	var todo []cand
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
			case e.MaxNs < newest-int64(r.opt.Resident) || ns.failed[e.Name] != nil:
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
		listed := false
		if c.ns.manifest != nil {
			for _, e := range c.ns.manifest.Shards {
				listed = listed || e.Name == c.e.Name
			}
		}
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
	return resident
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
			out = append(out, target{err: ns.err})
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
	r.refresh(false)
	// Opening shards mutates node state: take the write lock for that step.
	r.mu.Lock()
	ts := r.shards(from, to, keep)
	r.mu.Unlock()
	r.mu.RLock()
	defer r.mu.RUnlock()
	var errs []error
	for _, t := range ts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.err != nil {
			errs = append(errs, t.err)
			continue
		}
		if t.sh.db.IsClosed() {
			continue // left the manifest while we were waiting
		}
		if err := fn(t.sh); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// getBatch returns a decoded batch, cached.
func (r *Reader) getBatch(sh *shard, txn *badger.Txn, n uint32) (*Batch, error) {
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

// rows decodes the referenced rows of one shard.
func (r *Reader) rows(sh *shard, txn *badger.Txn, refs []ref, keep func(*span.Span) bool, out []span.Span) ([]span.Span, error) {
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].batch != refs[j].batch {
			return refs[i].batch < refs[j].batch
		}
		return refs[i].row < refs[j].row
	})
	var b *Batch
	cur := uint32(0)
	for i, rf := range refs {
		if b == nil || rf.batch != cur {
			var err error
			if b, err = r.getBatch(sh, txn, rf.batch); err != nil {
				return out, &ShardError{sh.dir, err}
			}
			cur = rf.batch
		}
		if int(rf.row) >= b.Len() {
			return out, &ShardError{sh.dir, fmt.Errorf("index points at row %d of batch %d with %d rows", rf.row, rf.batch, b.Len())}
		}
		if i > 0 && refs[i-1] == rf {
			continue
		}
		var s span.Span
		b.Row(int(rf.row), &s)
		if keep == nil || keep(&s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Lookup returns the spans that carry any of keys and start within [fromNs,
// toNs], ordered by start time. A non-nil error lists shards that failed;
// the spans of all other shards are returned with it.
func (r *Reader) Lookup(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	want := map[span.Key]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out []span.Span
	var mu sync.Mutex
	err := r.withShards(ctx, fromNs, toNs, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			var refs []ref
			var lo, hi []byte
			for k := range want {
				v := keyValue(k)
				lo = corrKey(lo, k.Kind, v, ref{start: fromNs})
				hi = corrKey(hi, k.Kind, v, ref{start: toNs, batch: ^uint32(0), row: ^uint32(0)})
				err := r.scanRun(sh, txn, runKey, lo[1:], hi[1:], false, func(rec []byte) (bool, error) {
					refs = append(refs, getRef(rec[9:]))
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			var ks []span.Key
			res, err := r.rows(sh, txn, refs, func(s *span.Span) bool {
				ks = s.IndexKeys(ks[:0])
				for _, k := range ks {
					if want[k] {
						return true
					}
				}
				return false
			}, nil)
			mu.Lock()
			out = append(out, res...)
			mu.Unlock()
			return err
		})
	})
	return sortDedup(out), err
}

func sortDedup(s []span.Span) []span.Span {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].StartNs != s[j].StartNs {
			return s[i].StartNs < s[j].StartNs
		}
		return s[i].SpanID < s[j].SpanID
	})
	out := s[:0]
	for i := range s {
		if i > 0 && s[i].SpanID == s[i-1].SpanID && s[i].StartNs == s[i-1].StartNs {
			continue
		}
		out = append(out, s[i])
	}
	return out
}

// Get returns the spans with the given ids. With fromNs = toNs = 0 every
// shard whose span-id range (ShardEntry.MinSpanID) may hold one of them is
// searched.
func (r *Reader) Get(ctx context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error) {
	var out []span.Span
	mayHold := func(e *ShardEntry) bool {
		for _, id := range ids {
			if e.mayHoldID(id) {
				return true
			}
		}
		return false
	}
	err := r.withShardsFor(ctx, fromNs, toNs, mayHold, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			var refs []ref
			lo, hi := make([]byte, spanIDRecLen), make([]byte, spanIDRecLen)
			for i := 8; i < spanIDRecLen; i++ {
				hi[i] = 0xff
			}
			for _, id := range ids {
				binary.BigEndian.PutUint64(lo, id)
				binary.BigEndian.PutUint64(hi, id)
				err := r.scanRun(sh, txn, runSpanID, lo, hi, false, func(rec []byte) (bool, error) {
					refs = append(refs, getRef(rec[8:]))
					return true, nil
				})
				if err != nil {
					return err
				}
			}
			var err error
			out, err = r.rows(sh, txn, refs, nil, out)
			return err
		})
	})
	return sortDedup(out), err
}

// SearchQuery selects spans for Search. Empty fields do not filter.
type SearchQuery struct {
	FromNs, ToNs int64
	Namespace    string
	Service      string
	Workload     string // span/2 shards only
	Endpoint     string
	Protocol     string // span.L7Protocol name, e.g. "http"
	Status       string // span.ResponseStatus name, e.g. "server_error"
	TapSides     []span.TapSide
	MinDuration  time.Duration
	MaxDuration  time.Duration // 0: no bound
	Limit        int           // default 100
}

// Search returns the newest spans in [FromNs, ToNs] matching q, newest first,
// at most q.Limit. It filters on the covering search index and decodes only
// the rows it returns.
func (r *Reader) Search(ctx context.Context, q SearchQuery) ([]span.Span, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var proto span.L7Protocol
	var status span.ResponseStatus
	var err error
	if q.Protocol != "" {
		if proto, err = span.ParseL7Protocol(q.Protocol); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	if q.Status != "" {
		if status, err = span.ParseResponseStatus(q.Status); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	svc, ep, wl := hashString(q.Service), hashString(q.Endpoint), hashString(q.Workload)
	taps := map[span.TapSide]bool{}
	for _, t := range q.TapSides {
		taps[t] = true
	}
	match := func(f searchFields) bool {
		return (q.Service == "" || f.service == svc) && (q.Endpoint == "" || f.endpoint == ep) && (q.Workload == "" || f.workload == wl) &&
			(q.Protocol == "" || f.protocol == proto) && (q.Status == "" || f.status == status) &&
			(len(taps) == 0 || taps[f.tap]) && f.duration >= int64(q.MinDuration) &&
			(q.MaxDuration == 0 || f.duration <= int64(q.MaxDuration))
	}
	type hit struct {
		sh *shard
		rf ref
	}
	var hits []hit
	var mu sync.Mutex
	serr := r.withShards(ctx, q.FromNs, q.ToNs, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			var nss []uint64
			if q.Namespace != "" {
				nss = []uint64{hashString(q.Namespace)}
			} else {
				vals, err := shardValues(txn)
				if err != nil {
					return err
				}
				seen := map[uint64]bool{}
				for _, v := range vals {
					h := hashString(v.Namespace)
					if !seen[h] {
						seen[h] = true
						nss = append(nss, h)
					}
				}
			}
			var local []hit
			lo, hi := make([]byte, searchRecLen), make([]byte, searchRecLen)
			to := q.ToNs
			if to == 0 {
				to = int64(^uint64(0) >> 1)
			}
			for _, ns := range nss {
				copy(lo, searchKey(nil, ns, ref{start: q.FromNs})[1:])
				copy(hi, searchKey(nil, ns, ref{start: to, batch: ^uint32(0), row: ^uint32(0)})[1:])
				for i := searchLen - 1; i < searchRecLen; i++ {
					hi[i] = 0xff
				}
				n := 0
				err := r.scanRun(sh, txn, runSearch, lo, hi, true, func(rec []byte) (bool, error) {
					f, err := parseSearchFields(rec[searchLen-1:])
					if err != nil {
						return false, err
					}
					if match(f) {
						local = append(local, hit{sh, getRef(rec[8:])})
						n++
					}
					return n < q.Limit, nil
				})
				if err != nil {
					return err
				}
			}
			mu.Lock()
			hits = append(hits, local...)
			mu.Unlock()
			return nil
		})
	})
	sort.Slice(hits, func(i, j int) bool { return hits[i].rf.start > hits[j].rf.start })
	if len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	// Decode the chosen rows, shard by shard.
	byShard := map[*shard][]ref{}
	for _, h := range hits {
		byShard[h.sh] = append(byShard[h.sh], h.rf)
	}
	var out []span.Span
	var errs []error
	if serr != nil {
		errs = append(errs, serr)
	}
	r.mu.RLock()
	for sh, refs := range byShard {
		if sh.db.IsClosed() {
			continue
		}
		err := sh.view(func(txn *badger.Txn) error {
			var err error
			out, err = r.rows(sh, txn, refs, nil, out)
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].StartNs != out[j].StartNs {
			return out[i].StartNs > out[j].StartNs
		}
		return out[i].SpanID > out[j].SpanID
	})
	return out, errors.Join(errs...)
}

// scanKeys calls f with every key of a record type.
func scanKeys(txn *badger.Txn, prefix byte, f func(key []byte) error) error {
	return scanEntryKeys(txn, prefix, false, func(k, _ []byte) error { return f(k) })
}

func shardValues(txn *badger.Txn) ([]valueEntry, error) {
	var out []valueEntry
	err := scanKeys(txn, pValues, func(k []byte) error {
		v, err := parseValuesKey(k)
		if err == nil {
			out = append(out, v)
		}
		return err
	})
	return out, err
}

func shardWorkloads(txn *badger.Txn, ns string) ([]string, error) {
	var out []string
	err := scanKeys(txn, pWorkld, func(k []byte) error {
		n, w, err := parseWorkloadKey(k)
		if err == nil && (ns == "" || n == ns) {
			out = append(out, w)
		}
		return err
	})
	return out, err
}

// ValuesQuery asks for the distinct values of one field.
type ValuesQuery struct {
	Field        string // "namespace", "service", "workload", "endpoint", "protocol"
	FromNs, ToNs int64  // 0, 0: all shards
	Namespace    string // filter (service, endpoint, protocol)
	Service      string // filter (endpoint, protocol)
}

// Values returns the sorted distinct non-empty values of a field.
func (r *Reader) Values(ctx context.Context, q ValuesQuery) ([]string, error) {
	pick := map[string]func(valueEntry) string{
		"namespace": func(v valueEntry) string { return v.Namespace },
		"service":   func(v valueEntry) string { return v.Service },
		"endpoint":  func(v valueEntry) string { return v.Endpoint },
		"protocol": func(v valueEntry) string {
			if v.Protocol == 0 {
				return ""
			}
			return v.Protocol.String()
		},
	}[q.Field]
	if pick == nil && q.Field != "workload" {
		return nil, fmt.Errorf("values: unknown field %q (namespace, service, workload, endpoint, protocol)", q.Field)
	}
	set := map[string]bool{}
	var mu sync.Mutex
	err := r.withShards(ctx, q.FromNs, q.ToNs, func(sh *shard) error {
		return sh.view(func(txn *badger.Txn) error {
			if q.Field == "workload" {
				ws, err := shardWorkloads(txn, q.Namespace)
				mu.Lock()
				defer mu.Unlock()
				for _, w := range ws {
					set[w] = true
				}
				return err
			}
			vals, err := shardValues(txn)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range vals {
				if (q.Namespace == "" || v.Namespace == q.Namespace) && (q.Service == "" || v.Service == q.Service) {
					if s := pick(v); s != "" {
						set[s] = true
					}
				}
			}
			return nil
		})
	})
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, err
}

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
