//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zerotrace/zerotrace/internal/seaweedfs"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

func init() {
	register(command{name: "bench bucket", summary: "object store: write → queryable through the bucket, cold and warm trace queries (SeaweedFS on loopback, or --object-store)", run: runBenchBucket})
}

func runBenchBucket(args []string) int {
	fs := flag.NewFlagSet("bench bucket", flag.ContinueOnError)
	var bf bucketFlags
	bf.register(fs)
	rounds := fs.Int("rounds", 10, "requests timed from write to queryable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if bf.url == "" {
		// Our own S3 server: SeaweedFS built by .ci/seaweedfs, on loopback.
		bin, err := seaweedfs.Binary()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench bucket:", err, "(or give --object-store s3://bucket/prefix --object-store-endpoint URL)")
			return 1
		}
		dir, err := os.MkdirTemp("", "zt-bench-s3-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench bucket:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := seaweedfs.Launch(bin, dir)
		if srv != nil {
			defer srv.Stop()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench bucket:", err)
			return 1
		}
		fmt.Printf("bench bucket: SeaweedFS S3 at %s\n", srv.Endpoint)
		bf = bucketFlags{url: "s3://bench/zt", endpoint: srv.Endpoint, pathStyle: true}
		os.Setenv("AWS_ACCESS_KEY_ID", seaweedfs.AccessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.SecretKey)
	}
	if err := benchBucket(bf, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench bucket:", err)
		return 1
	}
	return 0
}

func benchBucket(bf bucketFlags, rounds int) error {
	name, prefix, err := objstore.ParseURL(bf.url)
	if err != nil {
		return err
	}
	prefix += fmt.Sprintf("bench-%d/", time.Now().UnixNano())
	creds, err := objstore.LoadCredentials(os.Getenv)
	if err != nil {
		return err
	}
	c, err := objstore.New(objstore.Config{Bucket: name, Endpoint: bf.endpoint, Region: bf.region, PathStyle: bf.pathStyle, Credentials: creds})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.CreateBucket(ctx); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "zt-bench-bucket-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	quiet := slog.New(slog.DiscardHandler)
	data := filepath.Join(tmp, "data")
	ws := map[string]*store.Writer{}
	defer func() {
		for _, w := range ws {
			w.Close()
		}
	}()
	for _, node := range []string{"node1", "node2"} {
		u, err := bucket.NewUploader(bucket.UploaderOptions{Client: c, Prefix: prefix, DataDir: data, Node: node, Logger: quiet})
		if err != nil {
			return err
		}
		w, err := store.OpenWriter(store.WriterOptions{Dir: data, Node: node, Logger: quiet})
		if err != nil {
			return err
		}
		ws[node] = w
		go u.Run(ctx)
	}
	open := func(dir string) (*bucket.Mirror, *store.Reader, error) {
		m, err := bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: prefix, Dir: filepath.Join(tmp, dir), Logger: quiet})
		if err != nil {
			return nil, nil, err
		}
		r, err := store.OpenReader(m.Dir())
		return m, r, err
	}
	m, r, err := open("cache")
	if err != nil {
		return err
	}
	defer r.Close()
	gen := spangen.New(spangen.Config{Seed: 1, Start: time.Now()})
	var queryable []time.Duration
	var seeds []string
	for i := 0; i < rounds; i++ {
		tr := gen.Next(1)[0]
		// Re-time the request to now: it is "answered" as it is written.
		shift := time.Now().UnixNano() - tr.Spans[0].StartNs
		var ids []uint64
		for _, s := range tr.Spans {
			s.StartNs += shift
			s.EndNs += shift
			ws[s.Node].Write(s)
			ids = append(ids, s.SpanID)
		}
		t0 := time.Now()
		for {
			release, _ := m.Prepare(ctx, t0.Add(-time.Minute).UnixNano(), 0)
			r.Refresh()
			got, _ := r.Get(ctx, 0, 0, ids)
			release()
			if len(got) == len(ids) {
				break
			}
			if time.Since(t0) > time.Minute {
				return fmt.Errorf("request %d not queryable through the bucket after a minute (%d of %d spans)", i, len(got), len(ids))
			}
			time.Sleep(100 * time.Millisecond)
		}
		queryable = append(queryable, time.Since(t0))
		seeds = append(seeds, strconv.FormatUint(ids[0], 10))
	}
	fmt.Printf("bucket_write_to_queryable_p50: %.2f s  (goal ≤ 10 s; %d requests, batch 1 s, seal 2 s, upload poll 1 s, listing every 2 s; max %.2f s)\n",
		percentile(queryable, 0.5).Seconds(), rounds, percentile(queryable, 1).Seconds())
	cold, warm, err := bucketTraceQueries(ctx, open, m, r, seeds)
	if err != nil {
		return err
	}
	st, _ := m.Stats(ctx)
	fmt.Printf("bucket_trace_cold_p50: %s  (goal ≤ 2 s; empty cache: list, download and verify %d shards, assemble 38 spans)\n", ms(percentile(cold, 0.5)), st.Shards)
	fmt.Printf("bucket_trace_warm_p50: %s  (goal ≤ 50 ms; cached shards)\n", ms(percentile(warm, 0.5)))
	return nil
}

// bucketTraceQueries assembles each seed's trace through a new mirror with
// an empty cache (cold) and five times through the warm mirror m.
func bucketTraceQueries(ctx context.Context, open func(dir string) (*bucket.Mirror, *store.Reader, error), m *bucket.Mirror, r *store.Reader, seeds []string) (cold, warm []time.Duration, err error) {
	from := time.Now().Add(-time.Hour).UnixNano()
	for i, id := range seeds {
		cm, cr, err := open(fmt.Sprintf("cold-%d", i))
		if err != nil {
			return nil, nil, err
		}
		t0 := time.Now()
		release, perr := cm.Prepare(ctx, from, 0)
		cr.Refresh()
		t, err := trace.Assemble(ctx, cr, trace.Config{}, id, 0, 0)
		cold = append(cold, time.Since(t0))
		release()
		cr.Close()
		if err = errors.Join(err, perr); err != nil || len(t.Spans) != 38 {
			return nil, nil, fmt.Errorf("cold trace %s: %v", id, err)
		}
		for j := 0; j < 5; j++ {
			t0 := time.Now()
			release, _ := m.Prepare(ctx, from, 0)
			r.Refresh()
			t, err := trace.Assemble(ctx, r, trace.Config{}, id, 0, 0)
			warm = append(warm, time.Since(t0))
			release()
			if err != nil || len(t.Spans) != 38 {
				return nil, nil, fmt.Errorf("warm trace %s: %v", id, err)
			}
		}
	}
	return cold, warm, nil
}
