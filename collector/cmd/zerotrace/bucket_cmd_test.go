//go:build linux

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// trace and search read a bucket through a query that downloads what they
// need, and print the same waterfall and rows as over the directories.
func TestTraceAndSearchOverBucket(t *testing.T) {
	dir, traces := fill(t)
	srv := seaweedtest.Start(t)
	c := srv.Client(t, "ztcli")
	for _, node := range []string{"node1", "node2"} {
		u, err := bucket.NewUploader(bucket.UploaderOptions{Client: c, Prefix: "p/", DataDir: dir, Node: node})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", seaweedtest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", seaweedtest.SecretKey)
	s3 := []string{"--object-store", "s3://ztcli/p", "--object-store-endpoint", srv.Endpoint, "--object-store-path-style"}
	id := span.FormatSpanID(traces[1].Spans[5].SpanID)
	_, want := capture(t, "trace", id, "--data-dir", dir)
	code, got := capture(t, append([]string{"trace", id, "--expect-spans", "38", "--expect-roots", "1"}, s3...)...)
	if code != 0 || got != want {
		t.Fatalf("trace over the bucket: exit %d\n%s\nover the directories:\n%s", code, got, want)
	}
	_, want = capture(t, "search", "--data-dir", dir, "--namespace", "bookinfo", "--since", "2h")
	code, got = capture(t, append([]string{"search", "--namespace", "bookinfo", "--since", "2h"}, s3...)...)
	if code != 0 || got != want || strings.Count(got, "\n") < 3 {
		t.Fatalf("search over the bucket: exit %d\n%s\nover the directories:\n%s", code, got, want)
	}
}
