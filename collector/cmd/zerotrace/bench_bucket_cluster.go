//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// clusterBench sizes the cluster part of bench bucket.
type clusterBench struct {
	nodes, minutes int
	rate           float64 // spans per node and second
	queries        int     // cold trace queries (and warm repeats)
	searches       int     // cold searches
	fullQueries    int     // traces also read by a reader of the whole window (the reader before summaries)
}

// benchBucketCluster writes minutes of a generated Bookinfo cluster into
// the bucket under prefix (one sealed shard per node and minute, written
// with the store writer and shipped by the uploader), then times the
// plugin's queries on it: cold and warm trace queries, cold searches of
// one namespace, the refresh of the node manifests.
func benchBucketCluster(c *objstore.Client, creds objstore.Credentials, bf bucketFlags, prefix string, cb clusterBench) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "zt-bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Duration(cb.minutes) * time.Minute)
	// One Bookinfo instance per node, each request 38 spans over two nodes.
	interval := time.Duration(38 / cb.rate * float64(time.Second))
	fmt.Printf("# cluster: %d nodes × %d minutes at %.0f spans/s per node (a request every %v per Bookinfo instance, %d instances, each request over two nodes)\n",
		cb.nodes, cb.minutes, cb.rate, interval.Round(time.Millisecond), cb.nodes)
	t0 := time.Now()
	seeds, written, err := writeCluster(filepath.Join(tmp, "data"), start, cb, interval)
	if err != nil {
		return err
	}
	genTime := time.Since(t0)
	t0 = time.Now()
	up, err := uploadCluster(ctx, c, prefix, filepath.Join(tmp, "data"), cb.nodes)
	if err != nil {
		return err
	}
	fmt.Printf("# data set: %d spans (%.0f spans/s per node) in %d shards, %.1f MB of shards and %.1f MB of summaries (%.1f%%, %.1f ms to build each); written in %s, uploaded in %s\n",
		written, float64(written)/float64(cb.nodes)/(float64(cb.minutes)*60), up.shards, float64(up.shardBytes)/1e6,
		float64(up.summaryBytes)/1e6, 100*float64(up.summaryBytes)/float64(up.shardBytes),
		float64(up.summaryTime.Milliseconds())/float64(max(1, up.shards)), genTime.Round(time.Second), time.Since(t0).Round(time.Second))

	r := rand.New(rand.NewPCG(7, 7))
	p := bucketReads{c: c, prefix: prefix, dir: tmp, from: start, to: end}
	var cold, warm []time.Duration
	var share []float64
	var sumBytes, shardBytes, shardsGot, sumsGot, extra []int64
	for i, tr := range seeds {
		ds, err := p.open(fmt.Sprintf("cold-%d", i))
		if err != nil {
			return err
		}
		before := p.downloaded(ds)
		t1 := time.Now()
		if err := p.trace(ds, tr); err != nil {
			return fmt.Errorf("cold trace %d: %w", i, err)
		}
		cold = append(cold, time.Since(t1))
		d := p.downloaded(ds)
		got := d.ShardBytes + d.SummaryBytes - before.ShardBytes - before.SummaryBytes
		share = append(share, 100*float64(got)/float64(up.shardBytes))
		sumBytes, shardBytes = append(sumBytes, d.SummaryBytes-before.SummaryBytes), append(shardBytes, d.ShardBytes-before.ShardBytes)
		shardsGot = append(shardsGot, int64(d.Shards-before.Shards))
		holding := map[[2]int64]bool{} // (node, minute) shards holding the request's spans
		for _, s := range tr.Spans {
			var n int64
			fmt.Sscanf(s.Node, "node-%d", &n)
			holding[[2]int64{n, (s.StartNs - start.UnixNano()) / int64(time.Minute)}] = true
		}
		extra = append(extra, int64(d.Shards-before.Shards-len(holding)))
		sumsGot = append(sumsGot, d.Summaries-before.Summaries)
		for range 3 {
			t1 := time.Now()
			if err := p.trace(ds, tr); err != nil {
				return fmt.Errorf("warm trace %d: %w", i, err)
			}
			warm = append(warm, time.Since(t1))
		}
		ds.close()
	}
	var search []time.Duration
	for i := range cb.searches {
		ds, err := p.open(fmt.Sprintf("search-%d", i))
		if err != nil {
			return err
		}
		ns := fmt.Sprintf("bookinfo-%03d", r.IntN(cb.nodes))
		t1 := time.Now()
		if err := p.search(ds, ns); err != nil {
			return fmt.Errorf("cold search %d: %w", i, err)
		}
		search = append(search, time.Since(t1))
		ds.close()
	}
	refresh, err := manifestRefresh(ctx, c, prefix, tmp)
	if err != nil {
		return err
	}
	medianInt := func(v []int64) int64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	medianF := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	what := fmt.Sprintf("%d nodes × %d min", cb.nodes, cb.minutes)
	fmt.Printf("bucket_trace_cold_p50: %s  (goal ≤ 1 s at 200 nodes × 30 min; %s, %d traces of 38 spans, empty cache, the plugin's bucket query (bucket.Query, trace assembly) over the whole window; median %d shards (%.0f KB) and %d summaries (%.0f KB); peer: Tempo reads one bloom filter per block, for the trace id only)\n",
		ms(percentile(cold, 0.5)), what, len(cold), medianInt(shardsGot), float64(medianInt(shardBytes))/1e3, medianInt(sumsGot), float64(medianInt(sumBytes))/1e3)
	fmt.Printf("bucket_trace_cold_p99: %s  (goal ≤ 2 s at 200 nodes × 30 min; max %s)\n", ms(percentile(cold, 0.99)), ms(percentile(cold, 1)))
	fmt.Printf("# shards downloaded beyond those holding the request's spans (false positives, and shards whose keys match for real: a process's other calls): median %d, max %d\n",
		medianInt(extra), slices.Max(extra))
	fmt.Printf("bucket_trace_warm_p50: %s  (goal ≤ 50 ms; the same trace again, %d queries)\n", ms(percentile(warm, 0.5)), len(warm))
	fmt.Printf("bucket_cold_download_share: %.3f %%  (goal ≤ 1 %% of the window's %.0f MB of shards; summaries and shards downloaded by one cold trace query, median; max %.3f %%)\n",
		medianF(share), float64(up.shardBytes)/1e6, slices.Max(share))
	if len(search) > 0 {
		fmt.Printf("bucket_search_cold_p50: %s  (goal ≤ 2 s; one namespace, 15 minutes, the plugin's search of 20 traces, empty cache; max %s)\n", ms(percentile(search, 0.5)), ms(percentile(search, 1)))
	}
	fmt.Printf("bucket_manifest_refresh: %s  (%d node manifests unchanged: one listing, %d GETs; the first read of all of them, %.1f MB, took %s)\n",
		ms(refresh.unchanged), cb.nodes, refresh.gets, float64(refresh.firstBytes)/1e6, ms(refresh.first))
	if cb.fullQueries > 0 {
		return fullWindow(ctx, c, prefix, tmp, seeds[:min(cb.fullQueries, len(seeds))], start, end)
	}
	return nil
}

// writeCluster writes the cluster's requests of every minute to one writer
// per node, sealing a shard per node and minute (what merges make of a
// collector's head shards), using every CPU. It returns cb.queries
// requests drawn at random from every minute but the last (still
// settling) as the seeds of the trace queries — only those are kept: all
// of 200 nodes × 30 minutes would be 18 million spans in memory.
func writeCluster(dir string, start time.Time, cb clusterBench, interval time.Duration) ([]spangen.Trace, int, error) {
	gen := spangen.NewCluster(spangen.ClusterConfig{Nodes: cb.nodes, Seed: 11, Start: start, Interval: interval})
	var now atomic.Int64
	quiet := slog.New(slog.DiscardHandler)
	ws := make([]*store.Writer, cb.nodes)
	for i := range ws {
		w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: spangen.NodeName(i), NoBackground: true, Logger: quiet,
			BatchRows: 16384, Now: func() time.Time { return time.Unix(0, now.Load()) }})
		if err != nil {
			return nil, 0, err
		}
		defer w.Close()
		ws[i] = w
	}
	seeds := newSample(cb.queries, rand.New(rand.NewPCG(7, 7)))
	written := 0
	for m := 1; m <= cb.minutes; m++ {
		cut := start.Add(time.Duration(m) * time.Minute)
		now.Store(cut.UnixNano())
		byNode := make([][]span.Span, cb.nodes)
		trs := gen.Until(cut)
		for _, tr := range trs {
			for _, s := range tr.Spans {
				var n int
				fmt.Sscanf(s.Node, "node-%d", &n)
				byNode[n] = append(byNode[n], s)
			}
			written += len(tr.Spans)
			if m < cb.minutes && len(tr.Spans) == 38 {
				seeds.offer(tr)
			}
		}
		if err := forEach(cb.nodes, runtime.GOMAXPROCS(0), func(i int) error {
			if err := ws[i].Write(byNode[i]...); err != nil {
				return err
			}
			return ws[i].Seal()
		}); err != nil {
			return nil, 0, err
		}
	}
	if len(seeds.kept) == 0 {
		return nil, 0, errors.New("no request to query: --minutes must be 2 or more")
	}
	return seeds.kept, written, nil
}

// sample keeps n of the traces offered, each offered trace as likely as
// any other (reservoir sampling).
type sample struct {
	n    int
	seen int
	r    *rand.Rand
	kept []spangen.Trace
}

func newSample(n int, r *rand.Rand) *sample { return &sample{n: n, r: r} }

func (s *sample) offer(tr spangen.Trace) {
	s.seen++
	if len(s.kept) < s.n {
		s.kept = append(s.kept, tr)
	} else if i := s.r.IntN(s.seen); i < s.n {
		s.kept[i] = tr
	}
}

// forEach runs fn(0..n-1) on par goroutines and joins the errors.
func forEach(n, par int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	next := atomic.Int64{}
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				errs[i] = fn(i)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

type uploaded struct {
	shards                   int
	shardBytes, summaryBytes int64
	summaryTime              time.Duration
}

// uploadCluster ships every node's shards with the uploader, eight nodes
// at a time.
func uploadCluster(ctx context.Context, c *objstore.Client, prefix, dir string, nodes int) (uploaded, error) {
	var mu sync.Mutex
	var up uploaded
	err := forEach(nodes, 8, func(i int) error {
		u, err := bucket.NewUploader(bucket.UploaderOptions{Client: c, Prefix: prefix, DataDir: dir, Node: spangen.NodeName(i),
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		if err := u.Sync(ctx); err != nil {
			return err
		}
		st := u.Stats()
		mu.Lock()
		defer mu.Unlock()
		up.shards += int(st.Shards)
		up.shardBytes += int64(st.Bytes) - int64(st.SummaryBytes)
		up.summaryBytes += int64(st.SummaryBytes)
		up.summaryTime += st.SummaryTime
		return nil
	})
	return up, err
}

type refreshTimes struct {
	first, unchanged time.Duration
	gets, firstBytes int64
}

// manifestRefresh times the first read of every node manifest, then a
// refresh when none changed (median of five).
func manifestRefresh(ctx context.Context, c *objstore.Client, prefix, dir string) (refreshTimes, error) {
	m, err := bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: prefix, Dir: filepath.Join(dir, "refresh"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return refreshTimes{}, err
	}
	var rt refreshTimes
	t0 := time.Now()
	if _, err := m.Stats(ctx); err != nil {
		return rt, err
	}
	rt.first = time.Since(t0)
	gets := m.Downloaded().Manifests
	rt.firstBytes = m.Downloaded().ManifestBytes
	var d []time.Duration
	for range 5 {
		t0 := time.Now()
		if _, err := m.Stats(ctx); err != nil {
			return rt, err
		}
		d = append(d, time.Since(t0))
	}
	rt.unchanged = percentile(d, 0.5)
	rt.gets = (m.Downloaded().Manifests - gets) / 5
	return rt, nil
}

// fullWindow answers seeds as the reader before summaries did — every
// shard of the window downloaded first — and checks the answers are the
// same spans and parents.
func fullWindow(ctx context.Context, c *objstore.Client, prefix, dir string, seeds []spangen.Trace, from, to time.Time) error {
	var lat []time.Duration
	var bytes int64
	for i, tr := range seeds {
		m, err := bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: prefix, Dir: filepath.Join(dir, fmt.Sprintf("full-%d", i)),
			CacheBytes: 64 << 30, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		m.Stats(ctx)
		r, err := store.OpenReader(m.Dir())
		if err != nil {
			return err
		}
		id := trace.DerivedID(tr.Spans[0].SpanID)
		t0 := time.Now()
		release, err := m.Prepare(ctx, from.UnixNano(), to.UnixNano())
		r.Refresh()
		want, aerr := trace.Assemble(ctx, r, trace.Config{}, id, 0, 0)
		lat = append(lat, time.Since(t0))
		bytes = m.Downloaded().ShardBytes
		if err = errors.Join(err, aerr); err != nil {
			return err
		}
		sm, _ := bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: prefix, Dir: filepath.Join(dir, fmt.Sprintf("sel-%d", i)), Logger: slog.New(slog.DiscardHandler)})
		sr, _ := store.OpenReader(sm.Dir())
		q := sm.NewQuery(sr, from.UnixNano(), to.UnixNano())
		got, err := trace.Assemble(ctx, q, trace.Config{}, id, 0, 0)
		if err != nil {
			return err
		}
		if !sameSpans(got, want) {
			return fmt.Errorf("trace %s: the summaries' reader found %d spans, the reader of the whole window %d", id, len(got.Spans), len(want.Spans))
		}
		q.Release()
		sr.Close()
		release()
		r.Close()
		os.RemoveAll(m.Dir())
		os.RemoveAll(sm.Dir())
	}
	fmt.Printf("bucket_trace_cold_full_p50: %s  (before summaries: the whole window's shards downloaded first, %.0f MB, %d traces; the same spans and parents as with summaries)\n",
		ms(percentile(lat, 0.5)), float64(bytes)/1e6, len(lat))
	return nil
}

// sameSpans: the same spans with the same parents.
func sameSpans(a, b *trace.Trace) bool {
	if len(a.Spans) != len(b.Spans) {
		return false
	}
	for i := range a.Spans {
		pa, pb := uint64(0), uint64(0)
		if a.Parents[i] >= 0 {
			pa = a.Spans[a.Parents[i]].SpanID
		}
		if b.Parents[i] >= 0 {
			pb = b.Spans[b.Parents[i]].SpanID
		}
		if a.Spans[i].SpanID != b.Spans[i].SpanID || pa != pb {
			return false
		}
	}
	return true
}
