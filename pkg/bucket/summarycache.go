package bucket

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/summary"
)

// selection is the mirror's state for choosing shards by their summaries
// (query.go): the summaries read so far, least recently used out, and the
// bytes the mirror downloaded.
type selection struct {
	mu     sync.Mutex
	cache  map[string]*sumEntry // summary id → parsed summary
	lru    list.List            // *sumEntry, most recently used first
	bytes  int64
	calls  map[string]*sumCall
	failed map[string]failure
	sem    chan struct{} // summary GETs in flight

	// What the mirror downloaded, for stats and benchmarks.
	shardBytes, summaryBytes, manifestBytes atomic.Int64
	summaryGets, manifestGets               atomic.Int64
}

type sumEntry struct {
	id   string
	s    *summary.Summary
	size int64
	elem *list.Element
}

type sumCall struct {
	done chan struct{}
	s    *summary.Summary
	err  error
}

// errSummaryMismatch: a summary whose header disagrees with its shard's
// manifest entry.
var errSummaryMismatch = errors.New("summary disagrees with the manifest (time range or span count)")

func summaryID(node string, s Shard) string {
	return node + "/" + s.Name + "/" + s.Summary.SHA256[:16]
}

// summaryOf returns the parsed summary of a listed shard, downloading it
// once however many queries ask; a summary that cannot be read is an
// *ObjectError, remembered for RetryAfter.
func (m *Mirror) summaryOf(ctx context.Context, node string, s Shard) (*summary.Summary, error) {
	sel := &m.sel
	id := summaryID(node, s)
	sel.mu.Lock()
	if e := sel.cache[id]; e != nil {
		sel.lru.MoveToFront(e.elem)
		sel.mu.Unlock()
		return e.s, nil
	}
	if f, ok := sel.failed[id]; ok && time.Since(f.at) < m.opt.RetryAfter {
		sel.mu.Unlock()
		return nil, f.err
	}
	c := sel.calls[id]
	if c == nil {
		c = &sumCall{done: make(chan struct{})}
		sel.calls[id] = c
		go m.loadSummary(c, id, node, s)
	}
	sel.mu.Unlock()
	select {
	case <-c.done:
		return c.s, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loadSummary downloads, verifies and parses one summary, detached from
// the queries waiting for it.
func (m *Mirror) loadSummary(c *sumCall, id, node string, s Shard) {
	sel := &m.sel
	sel.sem <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	key := ShardPrefix(m.opt.Prefix, node, s.Name) + s.Summary.Name
	b, err := m.opt.Client.GetBytes(ctx, key, s.Summary.Size)
	cancel()
	<-sel.sem
	sel.summaryGets.Add(1)
	sel.summaryBytes.Add(int64(len(b)))
	var sum *summary.Summary
	switch {
	case objstore.IsNotFound(err):
		err = errors.New("missing from the bucket")
	case err != nil:
	case int64(len(b)) != s.Summary.Size:
		err = fmt.Errorf("%w (%d bytes, manifest says %d)", errDamaged, len(b), s.Summary.Size)
	case !sumMatches(b, s.Summary.SHA256):
		err = fmt.Errorf("%w (sha256 differs)", errDamaged)
	default:
		if sum, err = summary.Parse(b); err == nil && (sum.MinNs != s.MinNs || sum.MaxNs != s.MaxNs || sum.Spans != s.Spans) {
			sum, err = nil, errSummaryMismatch
		}
	}
	if err != nil {
		err = &ObjectError{Key: key, Err: err}
	}
	sel.mu.Lock()
	defer sel.mu.Unlock()
	delete(sel.calls, id)
	c.s, c.err = sum, err
	close(c.done)
	if err != nil {
		sel.failed[id] = failure{err, time.Now()}
		return
	}
	delete(sel.failed, id)
	e := &sumEntry{id: id, s: sum, size: int64(len(b))}
	e.elem = sel.lru.PushFront(e)
	sel.cache[id] = e
	sel.bytes += e.size
	for sel.bytes > m.opt.SummaryCacheBytes && sel.lru.Len() > 1 {
		old := sel.lru.Back().Value.(*sumEntry)
		sel.lru.Remove(old.elem)
		delete(sel.cache, old.id)
		sel.bytes -= old.size
	}
}

func sumMatches(b []byte, want string) bool {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]) == want
}

// summaries returns the summaries of cands (nil where a shard has none or
// it cannot be read, with the reason in errs at the same index), fetched
// in parallel.
func (m *Mirror) summaries(ctx context.Context, cands []cand) ([]*summary.Summary, []error) {
	sums := make([]*summary.Summary, len(cands))
	errs := make([]error, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		if c.cached || c.s.Summary == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = m.summaryOf(ctx, c.node, c.s)
		}()
	}
	wg.Wait()
	return sums, errs
}

// Downloads counts what a mirror downloaded since it opened.
type Downloads struct {
	ShardBytes    int64 `json:"shardBytes"`
	SummaryBytes  int64 `json:"summaryBytes"`
	ManifestBytes int64 `json:"manifestBytes"`
	Summaries     int64 `json:"summaries"` // GETs
	Manifests     int64 `json:"manifests"` // GETs
	Shards        int   `json:"shards"`    // shards downloaded and verified
}

// Downloaded returns the mirror's download counters.
func (m *Mirror) Downloaded() Downloads {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.downloadedLocked()
}

func (m *Mirror) downloadedLocked() Downloads {
	return Downloads{ShardBytes: m.sel.shardBytes.Load(), SummaryBytes: m.sel.summaryBytes.Load(),
		ManifestBytes: m.sel.manifestBytes.Load(), Summaries: m.sel.summaryGets.Load(),
		Manifests: m.sel.manifestGets.Load(), Shards: m.fetched}
}
