package pluginclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/internal/tmpfs"
)

// TestPluginBucketCacheOnFullDisk: the plugin binary in bucket mode with its
// download cache on a small tmpfs. With the disk below the free space the
// cache leaves (a quarter of this small filesystem), and then with not one
// byte free, a query is answered with its own error naming the full cache
// directory, never a crash; once space is freed the same query returns the
// whole trace, and what is cached keeps answering when the disk fills again.
func TestPluginBucketCacheOnFullDisk(t *testing.T) {
	cache := tmpfs.Mount(t, 16<<20) // root
	bin := pluginBinary(t)
	srv := seaweedtest.Start(t)
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	traces := uploadTraces(t, srv.Client(t, "zerotrace"), 6, start, 10)
	c := bucketPluginAt(t, bin, srv, seaweedtest.SecretKey, "zt-full", cache)
	if h, err := c.CheckHealth(ctx); err != nil || !strings.Contains(h.Message, "2 nodes") {
		t.Fatalf("health: %v %v", err, h)
	}

	ballast := filepath.Join(cache, "ballast")
	fill := func(free int64) { // leave free bytes
		t.Helper()
		if free == 0 {
			tmpfs.Fill(t, ballast, -1)
			return
		}
		tmpfs.Fill(t, ballast, tmpfs.Free(t, cache)-free)
	}
	from, to := start.Add(-time.Minute), time.Now()
	id := traces[2].Spans[0].SpanID
	for _, tc := range []struct {
		what string
		free int64
	}{
		{"below the free space the cache leaves", 2 << 20},
		{"not one byte free", 0},
	} {
		fill(tc.free)
		r, n := traceRows(t, c, id, from, to)
		if c.Exited() {
			t.Fatalf("%s: the plugin exited", tc.what)
		}
		// No shard of the trace could be had: the query's own error says why.
		if n != 0 || !strings.Contains(r.Error, "no room in the cache directory "+cache+"/ds-zt-full: ") {
			t.Fatalf("%s: %d rows, error %q, notices %q", tc.what, n, r.Error, notices(r))
		}
		t.Logf("%s: %s", tc.what, strings.SplitN(r.Error, "\n", 2)[0])
	}

	os.Remove(ballast)
	r, n := traceRows(t, c, id, from, to)
	if n != 38 || notices(r) != "" {
		t.Fatalf("space freed: %d rows, %q %s", n, r.Error, notices(r))
	}
	checkOwnSpans(t, r, traces[2])
	fill(0)
	r, n = traceRows(t, c, id, from, to)
	if n != 38 || c.Exited() {
		t.Fatalf("cached, on a full disk again: %d rows, %q %s", n, r.Error, notices(r))
	}
	if h, err := c.CheckHealth(ctx); err != nil || c.Exited() || !strings.Contains(h.Message, "the cache directory is short of space (0 MB free, 4 MB kept free)") {
		t.Fatalf("health on a full disk: %v %v", err, h)
	}
}
