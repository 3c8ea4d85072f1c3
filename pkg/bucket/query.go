package bucket

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/summary"
)

// Query reads the bucket for one query, downloading only the shards that
// may answer it (docs/adr/0005-shard-summaries.md): each Lookup (an
// assembly round) asks the summaries of the shards in its window which of
// them may hold one of its keys, Get asks the span-id ranges of the
// manifests, Search the summaries' search sets, newest shards first, until
// the newest matches are certain. Shards without a summary (uploaded
// before summaries), and shards whose summary cannot be read (with a
// notice), are downloaded as before. It implements trace.Source and the
// searcher the plugin's pagers use; the answers are those of a reader over
// every shard of the bucket. Release unpins the shards it downloaded.
type Query struct {
	m        *Mirror
	r        *store.Reader // reads the mirror's directory
	from, to int64

	mu     sync.Mutex
	pinned map[string]*cshard // shard id → pinned copy
	notes  []error
	noted  map[string]bool
}

// NewQuery starts a query over r, a reader of the mirror's directory.
// fromNs and toNs (0: unbounded) bound the lookups that have no bounds of
// their own: the seed of a trace found by id (a trace link carries the
// dashboard's time range).
func (m *Mirror) NewQuery(r *store.Reader, fromNs, toNs int64) *Query {
	return &Query{m: m, r: r, from: fromNs, to: toNs, pinned: map[string]*cshard{}, noted: map[string]bool{}}
}

// Release unpins the shards the query downloaded; the cache may drop them.
func (q *Query) Release() {
	q.mu.Lock()
	pinned := q.pinned
	q.pinned = map[string]*cshard{}
	q.mu.Unlock()
	m := q.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cs := range pinned {
		cs.pins--
	}
	m.evict()
	m.writeManifests()
}

// Err joins what the query could not read the usual way: unreadable node
// manifests and shards, summaries that could not be used (their shards
// were downloaded instead).
func (q *Query) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return errors.Join(q.notes...)
}

func (q *Query) note(err error) {
	if err == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := err.Error(); !q.noted[s] {
		q.noted[s] = true
		q.notes = append(q.notes, err)
	}
}

// cand is a listed shard a query may need.
type cand struct {
	node   string
	s      Shard
	cached bool // a verified copy is in the cache
}

// bounds applies the query's range to a lookup without bounds.
func (q *Query) bounds(from, to int64) (int64, int64) {
	if from <= 0 && (to <= 0 || to == math.MaxInt64) {
		return q.from, q.to
	}
	return from, to
}

// candidates lists the shards overlapping [from, to] (to 0: unbounded)
// that keep accepts, after refreshing the node manifests.
func (q *Query) candidates(ctx context.Context, from, to int64, keep func(*Shard) bool) []cand {
	m := q.m
	q.note(m.refresh(ctx, false))
	m.mu.Lock()
	out, errs := m.listedLocked(from, to, keep)
	m.mu.Unlock()
	for _, err := range errs {
		q.note(err)
	}
	return out
}

// listedLocked lists the shards the node manifests list overlapping [from,
// to] (to 0: unbounded) that keep (nil: all) accepts, and the errors of the
// node manifests that could not be read. Callers hold m.mu.
func (m *Mirror) listedLocked(from, to int64, keep func(*Shard) bool) ([]cand, []error) {
	var out []cand
	var errs []error
	for name, n := range m.nodes {
		if n.err != nil {
			errs = append(errs, n.err)
		}
		if n.manifest == nil {
			continue
		}
		for _, s := range n.manifest.Shards {
			if s.MaxNs < from || (to != 0 && s.MinNs > to) || (keep != nil && !keep(&s)) {
				continue
			}
			cs := n.cached[s.Name]
			out = append(out, cand{node: name, s: s, cached: cs != nil && cs.id == shardID(name, s)})
		}
	}
	return out, errs
}

// choose keeps the candidates whose summary matches, those cached already,
// and those without a usable summary (with a notice when it was damaged
// or missing).
func (q *Query) choose(ctx context.Context, cands []cand, match func(*summary.Summary) bool) []cand {
	sums, errs := q.m.summaries(ctx, cands)
	var out []cand
	for i, c := range cands {
		switch {
		case c.cached || c.s.Summary == nil:
		case errs[i] != nil:
			if ctx.Err() != nil {
				continue
			}
			q.note(fmt.Errorf("%w; downloaded the shard instead", errs[i]))
		case !match(sums[i]):
			continue
		}
		out = append(out, c)
	}
	return out
}

// load downloads (or finds in the cache) and pins the chosen shards, in
// parallel, and lists them for the reader.
func (q *Query) load(ctx context.Context, cands []cand) {
	var wg sync.WaitGroup
	for _, c := range cands {
		id := shardID(c.node, c.s)
		q.mu.Lock()
		_, done := q.pinned[id]
		q.mu.Unlock()
		if done {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := q.m.fetch(ctx, c.node, c.s)
			if err != nil {
				q.note(err)
				return
			}
			q.mu.Lock()
			_, dup := q.pinned[id]
			if !dup {
				q.pinned[id] = cs
			}
			q.mu.Unlock()
			if dup { // a concurrent call of the same query pinned it first
				q.m.mu.Lock()
				cs.pins--
				q.m.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	m := q.m
	m.mu.Lock()
	err := m.writeManifests()
	m.mu.Unlock()
	q.note(err)
	q.r.Refresh()
}

// Lookup returns the spans carrying any of keys that start within [fromNs,
// toNs], downloading only the shards whose summaries may hold one.
func (q *Query) Lookup(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	fromNs, toNs = q.bounds(fromNs, toNs)
	probes := make([]summary.Probe, len(keys))
	for i, k := range keys {
		probes[i] = summary.NewProbe(k.Kind, store.KeyValue(k))
	}
	cands := q.candidates(ctx, fromNs, toNs, nil)
	q.load(ctx, q.choose(ctx, cands, func(s *summary.Summary) bool {
		for i := range probes {
			if s.MayHold(&probes[i]) {
				return true
			}
		}
		return false
	}))
	if toNs == 0 {
		toNs = math.MaxInt64
	}
	return q.r.Lookup(ctx, fromNs, toNs, keys)
}

// Get returns the spans with the given ids, downloading only the shards
// whose span-id ranges may hold one (all shards of the range for those
// listed without ranges).
func (q *Query) Get(ctx context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error) {
	fromNs, toNs = q.bounds(fromNs, toNs)
	cands := q.candidates(ctx, fromNs, toNs, func(s *Shard) bool {
		if len(s.SpanIDs) == 0 {
			return true
		}
		for _, id := range ids {
			for _, r := range s.SpanIDs {
				if id >= r[0] && id <= r[1] {
					return true
				}
			}
		}
		return false
	})
	q.load(ctx, cands)
	return q.r.Get(ctx, fromNs, toNs, ids)
}

// SearchStep is how many shards, newest first, a search examines before it
// looks whether its newest matches are certain; it doubles each time.
var SearchStep = 64

// Search returns what store.Reader.Search returns over every shard of the
// bucket: the newest sq.Limit spans matching sq. It examines the shards
// overlapping the range newest first (by their newest span), downloads
// those whose search sets match, and stops once the sq.Limit-th match is
// newer than every shard not examined yet.
func (q *Query) Search(ctx context.Context, sq store.SearchQuery) ([]span.Span, error) {
	limit := sq.Limit
	if limit <= 0 {
		limit = 100
	}
	to := sq.ToNs
	if to == math.MaxInt64 {
		to = 0
	}
	cands := q.candidates(ctx, sq.FromNs, to, nil)
	sort.Slice(cands, func(i, j int) bool { return cands[i].s.MaxNs > cands[j].s.MaxNs })
	match := func(s *summary.Summary) bool { return s.MayMatch(sq.Namespace, sq.Service, sq.Workload) }
	step := SearchStep
	for next := 0; ; step *= 2 {
		end := min(len(cands), next+step)
		q.load(ctx, q.choose(ctx, cands[next:end], match))
		next = end
		res, err := q.r.Search(ctx, sq)
		if next == len(cands) || ctx.Err() != nil {
			return res, err
		}
		if len(res) >= limit && res[limit-1].StartNs > cands[next].s.MaxNs {
			return res, err
		}
	}
}
