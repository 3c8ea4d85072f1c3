//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// bucketReads reads the bucket as the plugin does in bucket mode (its own
// mirror and cache, a bucket.Query per query, trace assembly over it), in
// this process and without the plugin package: the collector binary links
// no Grafana SDK (and through it no test package).
type bucketReads struct {
	c        *objstore.Client
	prefix   string
	dir      string
	from, to time.Time
}

// benchSource is one data source's mirror: an empty cache, the node
// manifests listed (a running plugin keeps them listed:
// bucket_manifest_refresh).
type benchSource struct {
	m *bucket.Mirror
	r *store.Reader
}

func (p *bucketReads) open(uid string) (*benchSource, error) {
	m, err := bucket.OpenMirror(bucket.MirrorOptions{Client: p.c, Prefix: p.prefix, Dir: filepath.Join(p.dir, "cache", uid),
		CacheBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("opening the bucket mirror: %w", err)
	}
	if _, err := m.Stats(context.Background()); err != nil {
		return nil, fmt.Errorf("listing the bucket: %w", err)
	}
	r, err := store.OpenReader(m.Dir())
	if err != nil {
		return nil, err
	}
	return &benchSource{m: m, r: r}, nil
}

func (s *benchSource) close() { s.r.Close() }

func (p *bucketReads) downloaded(s *benchSource) bucket.Downloads { return s.m.Downloaded() }

// trace assembles the trace of a request's first span over the whole
// window and checks it holds exactly the request's spans.
func (p *bucketReads) trace(s *benchSource, tr spangen.Trace) error {
	q := s.m.NewQuery(s.r, p.from.UnixNano(), p.to.UnixNano())
	defer q.Release()
	t, err := trace.AssembleRef(context.Background(), q, trace.Config{}, trace.DerivedID(tr.Spans[0].SpanID))
	if err != nil {
		return err
	}
	if err := q.Err(); err != nil {
		return fmt.Errorf("notice: %w", err)
	}
	if len(t.Spans) != len(tr.Spans) {
		return fmt.Errorf("%d spans, the request has %d", len(t.Spans), len(tr.Spans))
	}
	want := map[uint64]bool{}
	for _, s := range tr.Spans {
		want[s.SpanID] = true
	}
	for i := range t.Spans {
		if !want[t.Spans[i].SpanID] {
			return fmt.Errorf("span %s is not the request's", span.FormatSpanID(t.Spans[i].SpanID))
		}
	}
	return nil
}

// search finds the newest 20 traces of a namespace in the window's last
// 15 minutes as the plugin's search does: the newest matching spans, each
// new one's trace assembled once.
func (p *bucketReads) search(s *benchSource, ns string) error {
	from, to := p.to.Add(-15*time.Minute).UnixNano(), p.to.UnixNano()
	q := s.m.NewQuery(s.r, from, to)
	defer q.Release()
	ctx := context.Background()
	seen := map[uint64]bool{}
	traces := 0
	// The newest matching spans, more of them while they hold too few
	// traces (the plugin's search pages on the same way).
	for limit := 20 * 8; ; limit *= 2 {
		hits, err := q.Search(ctx, store.SearchQuery{FromNs: from, ToNs: to, Namespace: ns, Limit: limit})
		if err != nil {
			return err
		}
		for i := range hits {
			if traces == 20 {
				break
			}
			if seen[hits[i].SpanID] {
				continue
			}
			t, err := trace.AssembleRef(ctx, q, trace.Config{}, trace.LinkID(&hits[i]))
			if err != nil {
				return fmt.Errorf("trace of span %s: %w", span.FormatSpanID(hits[i].SpanID), err)
			}
			for j := range t.Spans {
				seen[t.Spans[j].SpanID] = true
			}
			seen[hits[i].SpanID] = true
			traces++
		}
		if traces == 20 || len(hits) < limit {
			break
		}
	}
	if err := q.Err(); err != nil {
		return fmt.Errorf("notice: %w", err)
	}
	if traces != 20 {
		return fmt.Errorf("%d traces, want 20", traces)
	}
	return nil
}
