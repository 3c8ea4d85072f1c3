package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

var plainUID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

// openMirror builds the bucket client and the data source's own cache
// directory under CacheDir (one per data source, emptied at start).
func openMirror(b BucketSettings, uid string) (*bucket.Mirror, error) {
	cfg, err := b.objstoreConfig()
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", b.URL(), err)
	}
	c, err := objstore.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", b.URL(), err)
	}
	sub := "ds-" + uid
	if !plainUID.MatchString(uid) {
		h := sha256.Sum256([]byte(uid))
		sub = "ds-" + hex.EncodeToString(h[:8])
	}
	return bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: b.Prefix, Dir: filepath.Join(b.CacheDir, sub),
		CacheBytes: b.CacheSizeMB << 20, Logger: slog.Default()})
}

// source is what a query reads: the store, or in bucket mode a
// bucket.Query that downloads only the shards its lookups and searches
// may need (docs/adr/0005-shard-summaries.md).
type source interface {
	trace.Source
	Search(ctx context.Context, q store.SearchQuery) ([]span.Span, error)
}

// source returns the reader of one query and done, which ends it and
// returns what it could not read; from and to (0: none) bound the lookups
// that have no bounds of their own (a trace's seed).
func (d *Datasource) source(from, to int64) (src source, done func() error) {
	if d.settings.Storage != StorageBucket {
		return d.reader, func() error { return nil }
	}
	if d.setupErr != nil {
		return d.reader, func() error { return d.setupErr }
	}
	q := d.mirror.NewQuery(d.reader, from, to)
	return q, func() error {
		err := q.Err()
		q.Release()
		return err
	}
}

// prepare makes the shards of [from, to] local in bucket mode; release
// unpins them. The error lists what could not be fetched.
func (d *Datasource) prepare(ctx context.Context, from, to int64) (release func(), err error) {
	if d.settings.Storage != StorageBucket {
		return func() {}, nil
	}
	if d.setupErr != nil {
		return func() {}, d.setupErr
	}
	release, err = d.mirror.Prepare(ctx, from, to)
	d.reader.Refresh()
	return release, err
}

// bucketHealth: the bucket's reachability, its nodes, shards and the age
// of the newest span.
func (d *Datasource) bucketHealth(ctx context.Context) *backend.CheckHealthResult {
	b := d.settings.BucketSettings
	if d.setupErr != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: d.setupErr.Error()}
	}
	st, err := d.mirror.Stats(ctx)
	if err != nil {
		what := objstore.Problem(err)
		switch {
		case objstore.IsAuth(err):
			what += " (access key and secret key)"
		case what == "":
			what = "cannot list the bucket"
		}
		return &backend.CheckHealthResult{Status: backend.HealthStatusError,
			Message: fmt.Sprintf("bucket %s: %s: %v", b.URL(), what, err)}
	}
	if st.Nodes == 0 {
		msg := fmt.Sprintf("bucket %s reachable, but no node has uploaded shards yet: run `zerotrace collect --object-store s3://%s/%s` on each node", b.URL(), b.Bucket, b.Prefix)
		if len(st.NodeErrors) > 0 {
			return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg + "; " + errors.Join(st.NodeErrors...).Error()}
		}
		return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg}
	}
	age := time.Since(time.Unix(0, st.NewestNs)).Round(time.Second)
	msg := fmt.Sprintf("bucket %s: %d nodes, %d shards, %d spans; newest span %s ago; cache %d shards, %d MB",
		b.URL(), st.Nodes, st.Shards, st.Spans, age, st.CachedShards, st.CachedBytes>>20)
	if st.CacheFree >= 0 && st.CacheFree < st.CacheMinFree {
		msg += fmt.Sprintf("; the cache directory is short of space (%d MB free, %d MB kept free): shards not cached yet cannot be read", st.CacheFree>>20, st.CacheMinFree>>20)
	}
	status := backend.HealthStatusOk
	if len(st.NodeErrors) > 0 {
		msg += "; unreadable: " + errors.Join(st.NodeErrors...).Error()
		status = backend.HealthStatusError
	}
	details, _ := json.Marshal(map[string]any{"nodes": st.Nodes, "shards": st.Shards, "spans": st.Spans,
		"bytes": st.Bytes, "newestSpanAgeSeconds": age.Seconds(), "cachedShards": st.CachedShards, "cachedBytes": st.CachedBytes,
		"downloaded": st.Downloaded})
	return &backend.CheckHealthResult{Status: status, Message: msg, JSONDetails: details}
}
