//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/zerotrace/zerotrace/internal/seaweedfs"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/store"
)

func init() {
	register(command{name: "bench bucket", summary: "object store: write → queryable through the bucket, cold and warm trace queries (SeaweedFS on loopback, or --object-store)", run: runBenchBucket})
}

func runBenchBucket(args []string) int {
	fs := flag.NewFlagSet("bench bucket", flag.ContinueOnError)
	var bf bucketFlags
	bf.register(fs)
	rounds := fs.Int("rounds", 10, "requests timed from write to queryable")
	var cb clusterBench
	fs.IntVar(&cb.nodes, "nodes", 20, "cluster nodes of the generated data set (the goals are for 200)")
	fs.IntVar(&cb.minutes, "minutes", 3, "minutes of the generated data set (the goals are for 30)")
	fs.Float64Var(&cb.rate, "spans-per-node-s", 50, "spans per node and second of the generated data set")
	fs.IntVar(&cb.queries, "queries", 20, "cold trace queries (each on an empty cache, then three warm)")
	fs.IntVar(&cb.searches, "searches", 5, "cold searches of one namespace")
	fs.IntVar(&cb.fullQueries, "full-queries", 3, "traces also read as before summaries (the whole window downloaded first), compared")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cb.nodes < 2 || cb.minutes < 2 || cb.rate <= 0 || cb.queries < 1 {
		fmt.Fprintln(os.Stderr, "bench bucket: want --nodes ≥ 2, --minutes ≥ 2, --spans-per-node-s > 0, --queries ≥ 1")
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
		// Room for the cluster: under 100 bytes per span of shards and summaries, twice.
		srv, err := seaweedfs.LaunchSized(bin, dir, int64(2*100*float64(cb.nodes*cb.minutes*60)*cb.rate))
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
	if err := benchBucket(bf, *rounds, cb); err != nil {
		fmt.Fprintln(os.Stderr, "bench bucket:", err)
		return 1
	}
	return 0
}

func benchBucket(bf bucketFlags, rounds int, cb clusterBench) error {
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
	}
	fmt.Printf("bucket_write_to_queryable_p50: %.2f s  (goal ≤ 10 s; %d requests, batch 1 s, seal 2 s, upload poll 1 s, listing every 2 s; max %.2f s)\n",
		percentile(queryable, 0.5).Seconds(), rounds, percentile(queryable, 1).Seconds())
	// Cold and warm queries at cluster scale: bench_bucket_cluster.go.
	return benchBucketCluster(c, creds, bf, prefix+"cluster/", cb)
}
