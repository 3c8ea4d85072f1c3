package bucket

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// MirrorOptions configure a Mirror. Zero values take the defaults.
type MirrorOptions struct {
	Client *objstore.Client
	Prefix string // "" or ending with '/'
	// Dir is the mirror's own directory: emptied when the mirror opens, then
	// holding <node>/MANIFEST.json and the verified shards. store.Reader reads it.
	Dir        string
	CacheBytes int64 // bound of the downloaded shards (default 1 GiB)
	// MinFree is the free space the cache leaves on its filesystem: a
	// shard that does not fit is a notice (after the least recently used
	// shards are dropped), never a full disk. 0: store.DefaultMinFree of
	// the filesystem's size; -1: none (mirrorspace.go).
	MinFree    int64
	Refresh    time.Duration // list the node manifests at most this often (default 2 s)
	RetryAfter time.Duration // retry a shard that failed after this long (default 30 s)
	Parallel   int           // concurrent file downloads (default 4)
	// SummaryCacheBytes bounds the parsed shard summaries kept in memory
	// (default 256 MiB); SummaryParallel the summary GETs in flight
	// (default 32). summarycache.go.
	SummaryCacheBytes int64
	SummaryParallel   int
	Logger            *slog.Logger
}

// ObjectError names a bucket object that could not be used; queries are
// answered from the other shards and show it as a notice.
type ObjectError struct {
	Key string
	Err error
}

func (e *ObjectError) Error() string { return fmt.Sprintf("bucket object %s: %v", e.Key, e.Err) }
func (e *ObjectError) Unwrap() error { return e.Err }

// errDamaged is a downloaded file whose size or SHA-256 differs from the
// manifest's.
var errDamaged = errors.New("damaged: content differs from the manifest's size and sha256")

// Mirror keeps the shards queries need in a local cache. It is safe for
// concurrent use.
type Mirror struct {
	opt MirrorOptions
	log *slog.Logger

	mu       sync.Mutex
	listedAt time.Time
	listErr  error
	listing  chan struct{} // closed when the listing under way ends (nil: none)
	nodes    map[string]*mnode
	lru      *list.List // *cshard, most recently used first
	used     int64
	calls    map[string]*call // shard id → download in flight
	failed   map[string]failure
	sem      chan struct{}
	seq      int
	fetched  int   // shards downloaded and verified
	reserved int64 // bytes of the downloads in flight (mirrorspace.go)

	sel selection // summaries (summarycache.go, query.go)
}

type mnode struct {
	etag     string
	manifest *Manifest
	err      error
	cached   map[string]*cshard // shard name → cached copy
	written  string             // the local MANIFEST.json last written
}

type cshard struct {
	node  string
	entry Shard
	id    string // node/name/digest
	dir   string // directory name under the node directory
	bytes int64
	pins  int
	elem  *list.Element
}

type call struct {
	done chan struct{}
	cs   *cshard
	err  error
}

type failure struct {
	err error
	at  time.Time
}

// OpenMirror empties opt.Dir and returns a mirror; nothing is downloaded
// until Prepare.
func OpenMirror(opt MirrorOptions) (*Mirror, error) {
	if opt.Client == nil || opt.Dir == "" {
		return nil, errors.New("bucket mirror needs a client and a cache directory")
	}
	if opt.Prefix != "" && !strings.HasSuffix(opt.Prefix, "/") {
		opt.Prefix += "/"
	}
	if opt.CacheBytes <= 0 {
		opt.CacheBytes = 1 << 30
	}
	if opt.Refresh <= 0 {
		opt.Refresh = 2 * time.Second
	}
	if opt.RetryAfter <= 0 {
		opt.RetryAfter = 30 * time.Second
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if opt.SummaryCacheBytes <= 0 {
		opt.SummaryCacheBytes = 256 << 20
	}
	if opt.SummaryParallel <= 0 {
		opt.SummaryParallel = 32
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if err := os.RemoveAll(opt.Dir); err != nil {
		return nil, fmt.Errorf("emptying the cache directory: %w", err)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the cache directory: %w", err)
	}
	opt.MinFree = minFree(opt.Dir, opt.MinFree)
	m := &Mirror{opt: opt, log: opt.Logger, nodes: map[string]*mnode{}, lru: list.New(),
		calls: map[string]*call{}, failed: map[string]failure{}, sem: make(chan struct{}, opt.Parallel)}
	m.sel.cache, m.sel.calls, m.sel.failed = map[string]*sumEntry{}, map[string]*sumCall{}, map[string]failure{}
	m.sel.sem = make(chan struct{}, opt.SummaryParallel)
	return m, nil
}

// Dir is the directory to give store.OpenReader.
func (m *Mirror) Dir() string { return m.opt.Dir }

// Prepare makes the shards overlapping [fromNs, toNs] (0 = unbounded) local
// and listed in the mirror's manifests, and pins them until release is
// called. The error joins what could not be read (the bucket, a node
// manifest, a shard's objects); everything else is served.
func (m *Mirror) Prepare(ctx context.Context, fromNs, toNs int64) (release func(), err error) {
	var errs []error
	if err := m.refresh(ctx, false); err != nil {
		errs = append(errs, err)
	}
	m.mu.Lock()
	wants, nerrs := m.listedLocked(fromNs, toNs, nil)
	m.mu.Unlock()
	errs = append(errs, nerrs...)

	var mu sync.Mutex
	var pinned []*cshard
	var wg sync.WaitGroup
	for _, w := range wants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := m.fetch(ctx, w.node, w.s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			pinned = append(pinned, cs)
		}()
	}
	wg.Wait()
	m.mu.Lock()
	m.evict()
	werr := m.writeManifests()
	m.mu.Unlock()
	if werr != nil {
		errs = append(errs, werr)
	}
	return func() {
		m.mu.Lock()
		for _, cs := range pinned {
			cs.pins--
		}
		m.evict()
		m.writeManifests()
		m.mu.Unlock()
	}, errors.Join(errs...)
}

func shardID(node string, s Shard) string {
	h := sha256.New()
	for _, f := range s.Files {
		fmt.Fprintf(h, "%s %d %s\n", f.Name, f.Size, f.SHA256)
	}
	return node + "/" + s.Name + "/" + hex.EncodeToString(h.Sum(nil))[:16]
}

// fetch returns the cached, pinned copy of a shard, downloading it once
// however many queries ask at the same time.
func (m *Mirror) fetch(ctx context.Context, node string, s Shard) (*cshard, error) {
	id := shardID(node, s)
	m.mu.Lock()
	n := m.nodes[node]
	if cs := n.cached[s.Name]; cs != nil && cs.id == id {
		cs.pins++
		m.lru.MoveToFront(cs.elem)
		m.mu.Unlock()
		return cs, nil
	}
	if f, ok := m.failed[id]; ok && time.Since(f.at) < m.opt.RetryAfter {
		m.mu.Unlock()
		return nil, f.err
	}
	c := m.calls[id]
	if c == nil {
		if err := m.makeRoomLocked(s); err != nil { // a full disk: this shard is a notice
			m.mu.Unlock()
			return nil, &ObjectError{Key: ShardPrefix(m.opt.Prefix, node, s.Name), Err: err}
		}
		c = &call{done: make(chan struct{})}
		m.calls[id] = c
		m.seq++
		tmp := filepath.Join(m.opt.Dir, node, fmt.Sprintf(".download-%d", m.seq))
		go m.download(c, id, node, s, tmp)
	}
	m.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := c.cs
	if cs.elem == nil { // evicted before this waiter got it: rare; ask again later
		return nil, &ObjectError{Key: ShardPrefix(m.opt.Prefix, node, s.Name), Err: errors.New("evicted from the cache while loading (cache too small?)")}
	}
	cs.pins++
	m.lru.MoveToFront(cs.elem)
	return cs, nil
}

// download runs detached from any one query (others may wait on it), with
// its own deadline.
func (m *Mirror) download(c *call, id, node string, s Shard, tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dirName := s.Name + "." + id[strings.LastIndex(id, "/")+1:]
	final := filepath.Join(m.opt.Dir, node, dirName)
	err := m.downloadFiles(ctx, node, s, tmp)
	if err == nil {
		os.RemoveAll(final)
		if rerr := os.Rename(tmp, final); rerr != nil {
			err = &ObjectError{Key: ShardPrefix(m.opt.Prefix, node, s.Name), Err: rerr}
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.calls, id)
	m.reserved -= s.Bytes()
	if err != nil {
		c.err = err
		m.failed[id] = failure{err, time.Now()}
		m.log.Warn("bucket shard not usable", "err", err)
		close(c.done)
		return
	}
	delete(m.failed, id)
	m.fetched++
	cs := &cshard{node: node, entry: s, id: id, dir: dirName, bytes: s.Bytes()}
	n := m.nodes[node]
	if n == nil {
		n = &mnode{cached: map[string]*cshard{}}
		m.nodes[node] = n
	}
	if old := n.cached[s.Name]; old != nil {
		m.drop(old)
	}
	n.cached[s.Name] = cs
	cs.elem = m.lru.PushFront(cs)
	m.used += cs.bytes
	c.cs = cs
	close(c.done)
}

func (m *Mirror) downloadFiles(ctx context.Context, node string, s Shard, tmp string) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(s.Files))
	for i, f := range s.Files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.sem <- struct{}{}
			defer func() { <-m.sem }()
			key := ShardPrefix(m.opt.Prefix, node, s.Name) + f.Name
			if err := m.downloadFile(ctx, key, filepath.Join(tmp, f.Name), f); err != nil {
				errs[i] = &ObjectError{Key: key, Err: err}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// downloadFile streams one object into path, hashing as it goes; a size
// or sum that differs from the manifest's is errDamaged.
func (m *Mirror) downloadFile(ctx context.Context, key, path string, f File) error {
	body, _, err := m.opt.Client.Get(ctx, key)
	if err != nil {
		if objstore.IsNotFound(err) {
			return errors.New("missing from the bucket")
		}
		return err
	}
	defer body.Close()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(body, f.Size+1))
	m.sel.shardBytes.Add(n)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		if n != f.Size {
			return fmt.Errorf("%w (%d bytes, manifest says %d)", errDamaged, n, f.Size)
		}
		return fmt.Errorf("%w (sha256 differs)", errDamaged)
	}
	return nil
}

// drop removes a cached shard (callers hold m.mu; the files go after the
// manifest no longer lists them: open readers keep reading unlinked files).
func (m *Mirror) drop(cs *cshard) {
	if cs.elem != nil {
		m.lru.Remove(cs.elem)
		cs.elem = nil
		m.used -= cs.bytes
	}
	if n := m.nodes[cs.node]; n != nil && n.cached[cs.entry.Name] == cs {
		delete(n.cached, cs.entry.Name)
	}
	go func(dir string) {
		time.Sleep(100 * time.Millisecond) // after the manifest is rewritten
		os.RemoveAll(dir)
	}(filepath.Join(m.opt.Dir, cs.node, cs.dir))
}

// evict drops unpinned shards, least recently used first, while the cache
// is over its bound, and shards their node's manifest no longer lists.
func (m *Mirror) evict() {
	for _, n := range m.nodes {
		live := map[string]bool{}
		if n.manifest != nil {
			for _, s := range n.manifest.Shards {
				live[s.Name] = true
			}
		}
		for name, cs := range n.cached {
			if !live[name] && cs.pins == 0 {
				m.drop(cs)
			}
		}
	}
	for e := m.lru.Back(); e != nil && m.used > m.opt.CacheBytes; {
		prev := e.Prev()
		if cs := e.Value.(*cshard); cs.pins == 0 {
			m.drop(cs)
		}
		e = prev
	}
}

// writeManifests lists, per node, the cached shards its bucket manifest
// still lists (never a merge together with its sources).
func (m *Mirror) writeManifests() error {
	var errs []error
	for node, n := range m.nodes {
		live := map[string]Shard{}
		if n.manifest != nil {
			for _, s := range n.manifest.Shards {
				live[s.Name] = s
			}
		}
		lm := store.Manifest{Version: 1, Node: node, Shards: []store.ShardEntry{}}
		for name, cs := range n.cached {
			s, ok := live[name]
			if !ok || shardID(node, s) != cs.id {
				continue
			}
			// The bucket manifest's sums, already checked at download: the
			// reader checks them again before it opens the shard.
			sums := make([]store.FileSum, len(s.Files))
			for i, f := range s.Files {
				sums[i] = store.FileSum{Name: f.Name, Size: f.Size, SHA256: f.SHA256}
			}
			lm.Shards = append(lm.Shards, store.ShardEntry{Name: cs.dir, MinNs: s.MinNs, MaxNs: s.MaxNs, Spans: s.Spans,
				Batches: s.Batches, Bytes: cs.bytes, Merged: s.Merged, Files: sums})
		}
		sort.Slice(lm.Shards, func(i, j int) bool { return lm.Shards[i].Name < lm.Shards[j].Name })
		b, _ := json.Marshal(lm)
		if string(b) == n.written {
			continue
		}
		dir := filepath.Join(m.opt.Dir, node)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		tmp := filepath.Join(dir, store.ManifestName+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(tmp, filepath.Join(dir, store.ManifestName)); err != nil {
			errs = append(errs, err)
			continue
		}
		n.written = string(b)
	}
	return errors.Join(errs...)
}

// refresh lists the node manifests (at most every Refresh unless force)
// and reads those whose ETag changed. A caller that finds a listing under
// way waits for it and takes its result (a forced refresh then lists
// again): answering from the manifests of before it would give a new
// mirror's concurrent queries no shard at all.
func (m *Mirror) refresh(ctx context.Context, force bool) error {
	m.mu.Lock()
	for m.listing != nil {
		wait := m.listing
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
		if !force {
			err := m.listErr
			m.mu.Unlock()
			return err
		}
	}
	if !force && time.Since(m.listedAt) < m.opt.Refresh {
		err := m.listErr
		m.mu.Unlock()
		return err
	}
	m.listedAt = time.Now()
	done := make(chan struct{})
	m.listing = done
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.listing = nil
		m.mu.Unlock()
		close(done)
	}()
	return m.list(ctx)
}

// list lists the node manifests and reads those whose ETag changed.
func (m *Mirror) list(ctx context.Context) error {
	dir := m.opt.Prefix + manifestsDir
	etags := map[string]string{}
	err := m.opt.Client.List(ctx, dir, 0, func(o objstore.Object) error {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, dir), ".json")
		if ok && validName(name) {
			etags[name] = o.ETag + fmt.Sprint(o.Size, o.LastModified.UnixNano())
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("listing the bucket: %w", err)
		m.mu.Lock()
		m.listErr = err
		m.mu.Unlock()
		return err
	}
	type got struct {
		name, etag string
		man        *Manifest
		err        error
	}
	var res []got
	m.mu.Lock()
	var changed []string
	for name, tag := range etags {
		if n := m.nodes[name]; n == nil || n.etag != tag || n.manifest == nil {
			changed = append(changed, name)
		}
	}
	m.mu.Unlock()
	// Only changed manifests are read, SummaryParallel at a time: a
	// cluster of hundreds of nodes changes a few manifests a second.
	res = make([]got, len(changed))
	var wg sync.WaitGroup
	for i, name := range changed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.sel.sem <- struct{}{}
			defer func() { <-m.sel.sem }()
			key := ManifestKey(m.opt.Prefix, name)
			b, err := m.opt.Client.GetBytes(ctx, key, MaxManifestBytes)
			m.sel.manifestGets.Add(1)
			m.sel.manifestBytes.Add(int64(len(b)))
			var man *Manifest
			if err == nil {
				man, err = ParseManifest(b)
				if err == nil && man.Node != name {
					err = fmt.Errorf("%w: node %q in %s", errManifest, clip(man.Node), name)
				}
			}
			if err != nil {
				err = &ObjectError{Key: key, Err: err}
			}
			res[i] = got{name, etags[name], man, err}
		}()
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listErr = nil
	for _, g := range res {
		n := m.nodes[g.name]
		if n == nil {
			n = &mnode{cached: map[string]*cshard{}}
			m.nodes[g.name] = n
		}
		n.err = g.err
		if g.err == nil {
			n.etag, n.manifest = g.etag, g.man
		}
	}
	for name, n := range m.nodes {
		if _, ok := etags[name]; !ok {
			n.manifest, n.err = nil, nil // the node's manifest is gone
		}
	}
	return nil
}

// MirrorStats describe the bucket as its manifests list it.
type MirrorStats struct {
	Nodes, Shards int
	Spans, Bytes  int64
	NewestNs      int64
	CachedShards  int
	CachedBytes   int64
	Downloads     int // shards downloaded since the mirror opened
	NodeErrors    []error
	// CacheFree is the free space of the cache directory's filesystem (-1:
	// unknown); CacheMinFree what the mirror leaves free there.
	CacheFree, CacheMinFree int64
	Downloaded              Downloads // bytes and objects downloaded since the mirror opened
}

// Stats re-lists the bucket now and sums the node manifests. The error is
// the bucket's (unreachable, credentials refused).
func (m *Mirror) Stats(ctx context.Context) (MirrorStats, error) {
	err := m.refresh(ctx, true)
	m.mu.Lock()
	defer m.mu.Unlock()
	var st MirrorStats
	for _, n := range m.nodes {
		if n.err != nil {
			st.NodeErrors = append(st.NodeErrors, n.err)
		}
		if n.manifest == nil {
			continue
		}
		st.Nodes++
		for _, s := range n.manifest.Shards {
			st.Shards++
			st.Spans += s.Spans
			st.Bytes += s.Bytes()
			st.NewestNs = max(st.NewestNs, s.MaxNs)
		}
	}
	st.CachedShards = m.lru.Len()
	st.CachedBytes = m.used
	st.Downloads = m.fetched
	st.CacheFree, st.CacheMinFree = -1, m.opt.MinFree
	st.Downloaded = m.downloadedLocked()
	if fs, ok, ferr := store.StatFS(m.opt.Dir); ferr == nil && ok {
		st.CacheFree = fs.Avail
	}
	return st, err
}
