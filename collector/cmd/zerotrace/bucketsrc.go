package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// bucketFlags let trace and search read an object store instead of
// directories (credentials by the AWS conventions).
type bucketFlags struct {
	url, endpoint, region string
	pathStyle             bool
}

func (b *bucketFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.url, "object-store", "", "read the shards from s3://bucket[/prefix] instead of directories")
	fs.StringVar(&b.endpoint, "object-store-endpoint", "", "S3 endpoint URL (default: AWS S3 of the region)")
	fs.StringVar(&b.region, "object-store-region", "", "S3 region (default us-east-1)")
	fs.BoolVar(&b.pathStyle, "object-store-path-style", false, "path-style bucket addressing")
}

// source is what trace and search read: a store, or a bucket query.
type source interface {
	trace.Source
	Search(ctx context.Context, q store.SearchQuery) ([]span.Span, error)
}

// openStore opens the directories, or with --object-store a query of the
// bucket through a temporary cache that downloads only the shards the
// command's lookups and searches may need (fromNs, toNs: the range a trace
// id is looked for in). finish closes everything and returns what could not
// be read.
func openStore(dirs dirsFlag, b bucketFlags, fromNs, toNs int64) (src source, finish func() error, err error) {
	if b.url == "" {
		r, err := openDirs(dataDirs(dirs))
		if err != nil {
			return nil, nil, err
		}
		return r, func() error { r.Close(); return nil }, nil
	}
	name, prefix, err := objstore.ParseURL(b.url)
	if err != nil {
		return nil, nil, err
	}
	creds, err := objstore.LoadCredentials(os.Getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("object store %s: %w", b.url, err)
	}
	c, err := objstore.New(objstore.Config{Bucket: name, Endpoint: b.endpoint, Region: b.region, PathStyle: b.pathStyle, Credentials: creds})
	if err != nil {
		return nil, nil, fmt.Errorf("object store %s: %w", b.url, err)
	}
	tmp, err := os.MkdirTemp("", "zerotrace-cache-")
	if err != nil {
		return nil, nil, err
	}
	m, err := bucket.OpenMirror(bucket.MirrorOptions{Client: c, Prefix: prefix, Dir: tmp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	// The bucket is listed first: one that cannot be read is an error
	// naming it, never an empty answer.
	if _, err := m.Stats(context.Background()); err != nil {
		os.RemoveAll(tmp)
		return nil, nil, bucketError(b, err)
	}
	r, err := store.OpenReader(m.Dir())
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	q := m.NewQuery(r, fromNs, toNs)
	return q, func() error {
		err := q.Err()
		q.Release()
		r.Close()
		os.RemoveAll(tmp)
		return err
	}, nil
}

// bucketError says what a failed listing of the bucket means and what to
// check.
func bucketError(b bucketFlags, err error) error {
	hint := "check --object-store, --object-store-endpoint and --object-store-path-style"
	if objstore.IsAuth(err) {
		hint = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the shared credentials file)"
	}
	if p := objstore.Problem(err); p != "" {
		return fmt.Errorf("object store %s: %s: %w; %s", b.url, p, err, hint)
	}
	return fmt.Errorf("object store %s: %w; %s", b.url, err, hint)
}

func warnf(cmd string, warn error) {
	if warn != nil {
		fmt.Fprintf(os.Stderr, "%s: warning: %v\n", cmd, warn)
	}
}
