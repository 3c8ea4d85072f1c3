package bucket

import (
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

// UploaderOptions configure an Uploader. Zero values take the defaults.
type UploaderOptions struct {
	Client   *objstore.Client
	Prefix   string // "" or ending with '/'
	DataDir  string // the writer's data directory; the node directory is DataDir/Node
	Node     string
	Interval time.Duration // look for new shards this often (default 1 s)
	// Retention ages shards out of the bucket: a shard whose newest span is
	// older is dropped from the manifest and its objects deleted (0: keep).
	Retention time.Duration
	// Grace is how long objects of replaced or expired shards stay after
	// they leave the manifest, for readers holding the older one (default 2 min).
	Grace      time.Duration
	MaxBackoff time.Duration // retry delay cap after errors (default 30 s)
	// SummaryFalsePositive is the false positive rate of the key filters
	// of each shard's summary (default summary.DefaultFalsePositive).
	SummaryFalsePositive float64
	Logger               *slog.Logger
	Now                  func() time.Time
}

// skipFiles are shard files readers never need: Badger's DISCARD is the
// writer's value-log GC bookkeeping (1 MiB, unused by read-only opens).
var skipFiles = map[string]bool{"DISCARD": true, SummaryName: true}

// Uploader ships one node's sealed shards. It is safe for concurrent use.
type Uploader struct {
	opt     UploaderOptions
	nodeDir string
	log     *slog.Logger

	mu        sync.Mutex
	remote    *Manifest            // nil until read from the bucket
	inBucket  map[string]bool      // shards uploaded (listed now or earlier)
	firstSeen map[string]time.Time // pending local shard → when first seen
	stats     UploadStats
}

// UploadStats are the Uploader's counters (the collector's /metrics).
type UploadStats struct {
	Shards, Bytes, Errors uint64
	Pending               int           // local shards not yet in the bucket
	Lag                   time.Duration // age of the oldest pending shard (since first seen)
	LastError             string
	Connected             bool // the bucket manifest has been read
	// SummaryBytes and SummaryTime: the summaries built (summary.go).
	SummaryBytes uint64
	SummaryTime  time.Duration
}

// NewUploader checks the options; Run does the work.
func NewUploader(opt UploaderOptions) (*Uploader, error) {
	if opt.Client == nil || opt.DataDir == "" || !validName(opt.Node) {
		return nil, errors.New("uploader needs a client, a data directory and a node name")
	}
	if opt.Prefix != "" && !strings.HasSuffix(opt.Prefix, "/") {
		opt.Prefix += "/"
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.Grace <= 0 {
		opt.Grace = 2 * time.Minute
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Uploader{opt: opt, nodeDir: filepath.Join(opt.DataDir, opt.Node),
		log:      opt.Logger.With("bucket", "s3://"+opt.Client.Bucket()+"/"+opt.Prefix, "node", opt.Node),
		inBucket: map[string]bool{}, firstSeen: map[string]time.Time{}}, nil
}

// Uploaded reports whether a local shard is in the bucket (or was, before a
// merge or retention replaced it). The store writer's retention keeps local
// shards that are not.
func (u *Uploader) Uploaded(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.inBucket[name]
}

// Stats returns the counters.
func (u *Uploader) Stats() UploadStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	now := u.opt.Now()
	for _, t := range u.firstSeen {
		s.Lag = max(s.Lag, now.Sub(t))
	}
	s.Pending = len(u.firstSeen)
	s.Connected = u.remote != nil
	return s
}

// Run uploads until ctx is done. Errors are logged and retried with
// exponential backoff; Run never gives up.
func (u *Uploader) Run(ctx context.Context) {
	delay := u.opt.Interval
	lastLogged, lastMsg := time.Time{}, ""
	for {
		err := u.Sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			msg := describe(err)
			u.mu.Lock()
			u.stats.Errors++
			u.stats.LastError = msg
			u.mu.Unlock()
			if msg != lastMsg || time.Since(lastLogged) > time.Minute {
				u.log.Error("uploading shards", "err", msg, "retry_in", delay)
				lastLogged, lastMsg = time.Now(), msg
			}
			delay = min(delay*2, u.opt.MaxBackoff)
		} else {
			if lastMsg != "" {
				u.log.Info("uploading shards: bucket reachable again")
				lastMsg = ""
			}
			delay = u.opt.Interval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// describe turns refused credentials and unreachable servers into a
// sentence an operator acts on.
func describe(err error) string {
	switch p := objstore.Problem(err); {
	case objstore.IsAuth(err):
		return p + " (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file): " + err.Error()
	case p != "":
		return p + ": " + err.Error()
	}
	return err.Error()
}

// Sync does one round: read the bucket manifest if not yet done, upload
// every local shard missing from it (each shard's files, then the manifest),
// apply retention and delete objects whose grace has passed.
func (u *Uploader) Sync(ctx context.Context) error {
	if err := u.load(ctx); err != nil {
		return err
	}
	local, err := u.localManifest()
	if err != nil {
		return err
	}
	now := u.opt.Now()
	cutoff := int64(0)
	if u.opt.Retention > 0 {
		cutoff = now.Add(-u.opt.Retention).UnixNano()
	}
	u.mu.Lock()
	var pending []store.ShardEntry
	live := map[string]bool{}
	for _, s := range local.Shards {
		if s.MaxNs < cutoff {
			u.inBucket[s.Name] = true // past the bucket's retention: never uploaded, done all the same
		}
		if u.inBucket[s.Name] {
			continue
		}
		live[s.Name] = true
		pending = append(pending, s)
		if _, ok := u.firstSeen[s.Name]; !ok {
			u.firstSeen[s.Name] = now
		}
	}
	for name := range u.firstSeen {
		if !live[name] {
			delete(u.firstSeen, name) // merged or dropped locally before upload
		}
	}
	// Forget uploaded shards that are neither local nor in the manifest any
	// more: only local shards are ever asked about.
	keep := map[string]bool{}
	for _, s := range local.Shards {
		keep[s.Name] = true
	}
	for _, s := range u.remote.Shards {
		keep[s.Name] = true
	}
	for name := range u.inBucket {
		if !keep[name] {
			delete(u.inBucket, name)
		}
	}
	u.mu.Unlock()
	sort.Slice(pending, func(i, j int) bool { return pending[i].MinNs < pending[j].MinNs })
	for _, s := range pending {
		if err := ctx.Err(); err != nil {
			return err
		}
		files, sum, n, err := u.uploadShard(ctx, s)
		if errors.Is(err, os.ErrNotExist) {
			// A merge replaced it after we read the manifest; the merged
			// shard is uploaded instead.
			u.mu.Lock()
			delete(u.firstSeen, s.Name)
			u.mu.Unlock()
			continue
		}
		if err != nil {
			return err
		}
		if err := u.publish(ctx, s, files, sum); err != nil {
			return err
		}
		u.mu.Lock()
		u.stats.Shards++
		u.stats.Bytes += uint64(n)
		delete(u.firstSeen, s.Name)
		u.mu.Unlock()
		u.log.Debug("uploaded shard", "shard", s.Name, "bytes", n, "files", len(files))
	}
	return u.collect(ctx, cutoff)
}

// load reads the bucket manifest once, then deletes the objects of shards
// it does not list (an upload a crash interrupted).
func (u *Uploader) load(ctx context.Context) error {
	u.mu.Lock()
	loaded := u.remote != nil
	u.mu.Unlock()
	if loaded {
		return nil
	}
	c := u.opt.Client
	key := ManifestKey(u.opt.Prefix, u.opt.Node)
	var m *Manifest
	b, err := c.GetBytes(ctx, key, MaxManifestBytes)
	switch {
	case objstore.IsNotFound(err):
		m = &Manifest{Version: manifestVersion, Node: u.opt.Node}
	case err != nil:
		return fmt.Errorf("reading the bucket manifest: %w", err)
	default:
		if m, err = ParseManifest(b); err != nil {
			u.log.Error("bucket manifest unreadable: starting a new one (its shards are uploaded again)", "key", key, "err", err)
			m = &Manifest{Version: manifestVersion, Node: u.opt.Node}
		}
	}
	known := map[string]bool{}
	for _, s := range m.Shards {
		known[s.Name] = true
	}
	for _, g := range m.Deleting {
		known[g.Name] = true
	}
	var orphans []string
	np := NodePrefix(u.opt.Prefix, u.opt.Node)
	err = c.List(ctx, np, 0, func(o objstore.Object) error {
		shard, _, _ := strings.Cut(strings.TrimPrefix(o.Key, np), "/")
		if !known[shard] {
			orphans = append(orphans, o.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing the node's objects: %w", err)
	}
	for _, k := range orphans {
		if err := c.Delete(ctx, k); err != nil {
			return fmt.Errorf("deleting an unlisted object: %w", err)
		}
	}
	if len(orphans) > 0 {
		u.log.Info("deleted objects of unfinished uploads", "objects", len(orphans))
	}
	u.mu.Lock()
	u.remote = m
	for _, s := range m.Shards {
		u.inBucket[s.Name] = true
	}
	for _, s := range m.Deleting {
		u.inBucket[s.Name] = true
	}
	u.mu.Unlock()
	u.log.Info("object store connected", "shards", len(m.Shards))
	return nil
}

func (u *Uploader) localManifest() (*store.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(u.nodeDir, store.ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return &store.Manifest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the local manifest: %w", err)
	}
	return store.ParseManifest(b)
}

// uploadShard puts every file of a local shard, then its summary, and
// returns their sizes and sums. os.ErrNotExist: the shard directory is
// gone. A shard whose summary cannot be built is uploaded without one
// (readers download it to find out what it holds).
func (u *Uploader) uploadShard(ctx context.Context, s store.ShardEntry) ([]File, *File, int64, error) {
	name := s.Name
	dir := filepath.Join(u.nodeDir, name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, 0, err
	}
	sb, serr := u.buildSummary(s)
	if errors.Is(serr, os.ErrNotExist) {
		return nil, nil, 0, serr
	}
	if serr != nil {
		u.log.Warn("shard uploaded without a summary: readers download it to learn what it holds", "shard", name, "err", serr)
	}
	var files []File
	var total int64
	for _, e := range ents {
		if !e.Type().IsRegular() || skipFiles[e.Name()] {
			continue
		}
		f, err := u.uploadFile(ctx, filepath.Join(dir, e.Name()), ShardPrefix(u.opt.Prefix, u.opt.Node, name)+e.Name())
		if err != nil {
			return nil, nil, 0, err
		}
		files = append(files, f)
		total += f.Size
	}
	if len(files) == 0 {
		return nil, nil, 0, fmt.Errorf("shard %s: %w (no files)", name, os.ErrNotExist)
	}
	var sum *File
	if serr == nil {
		if sum, err = u.putSummary(ctx, name, sb); err != nil {
			return nil, nil, 0, err
		}
		total += sum.Size
	}
	return files, sum, total, nil
}

func (u *Uploader) uploadFile(ctx context.Context, path, key string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("reading %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := u.opt.Client.Put(ctx, key, f, n, sum); err != nil {
		return File{}, err
	}
	return File{Name: filepath.Base(path), Size: n, SHA256: sum}, nil
}

// publish lists an uploaded shard in the bucket manifest, in place of the
// shards a merge replaced, and writes the manifest.
func (u *Uploader) publish(ctx context.Context, s store.ShardEntry, files []File, sum *File) error {
	now := u.opt.Now()
	u.mu.Lock()
	m := u.remote.clone()
	u.mu.Unlock()
	drop := map[string]bool{}
	for _, src := range s.Sources {
		drop[src] = true
	}
	kept := m.Shards[:0]
	for _, e := range m.Shards {
		if drop[e.Name] || e.Name == s.Name {
			if e.Name != s.Name {
				m.Deleting = append(m.Deleting, garbage(e, now.Add(u.opt.Grace)))
			}
			continue
		}
		kept = append(kept, e)
	}
	m.Shards = append(kept, Shard{Name: s.Name, MinNs: s.MinNs, MaxNs: s.MaxNs, Spans: s.Spans, Batches: s.Batches,
		Merged: s.Merged, Sources: s.Sources, UploadedNs: now.UnixNano(), Files: files, SpanIDs: s.SpanIDs, Summary: sum})
	if err := u.write(ctx, m); err != nil {
		return err
	}
	u.mu.Lock()
	u.remote = m
	u.inBucket[s.Name] = true
	u.mu.Unlock()
	return nil
}

func garbage(s Shard, after time.Time) Garbage {
	g := Garbage{Name: s.Name, AfterNs: after.UnixNano()}
	for _, f := range s.Files {
		g.Files = append(g.Files, f.Name)
	}
	if s.Summary != nil {
		g.Files = append(g.Files, s.Summary.Name)
	}
	return g
}

func (m *Manifest) clone() *Manifest {
	c := *m
	c.Shards = append([]Shard(nil), m.Shards...)
	c.Deleting = append([]Garbage(nil), m.Deleting...)
	return &c
}

func (u *Uploader) write(ctx context.Context, m *Manifest) error {
	m.UpdatedNs = u.opt.Now().UnixNano()
	sort.Slice(m.Shards, func(i, j int) bool { return m.Shards[i].MinNs < m.Shards[j].MinNs })
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := u.opt.Client.PutBytes(ctx, ManifestKey(u.opt.Prefix, u.opt.Node), b); err != nil {
		return fmt.Errorf("writing the bucket manifest: %w", err)
	}
	return nil
}

// collect applies the bucket retention and deletes the objects of shards
// whose grace has passed.
func (u *Uploader) collect(ctx context.Context, cutoff int64) error {
	now := u.opt.Now()
	u.mu.Lock()
	m := u.remote.clone()
	u.mu.Unlock()
	changed := false
	if cutoff > 0 {
		kept := m.Shards[:0]
		for _, s := range m.Shards {
			if s.MaxNs < cutoff {
				m.Deleting = append(m.Deleting, garbage(s, now.Add(u.opt.Grace)))
				changed = true
				continue
			}
			kept = append(kept, s)
		}
		m.Shards = kept
	}
	if changed {
		if err := u.write(ctx, m); err != nil {
			return err
		}
		u.mu.Lock()
		u.remote = m
		u.mu.Unlock()
		m = m.clone()
	}
	var due, rest []Garbage
	for _, g := range m.Deleting {
		if g.AfterNs <= now.UnixNano() {
			due = append(due, g)
		} else {
			rest = append(rest, g)
		}
	}
	if len(due) == 0 {
		return nil
	}
	for _, g := range due {
		for _, f := range g.Files {
			if err := u.opt.Client.Delete(ctx, ShardPrefix(u.opt.Prefix, u.opt.Node, g.Name)+f); err != nil {
				return err
			}
		}
	}
	m.Deleting = rest
	if err := u.write(ctx, m); err != nil {
		return err
	}
	u.mu.Lock()
	u.remote = m
	u.mu.Unlock()
	u.log.Debug("deleted replaced or expired shards from the bucket", "shards", len(due))
	return nil
}
