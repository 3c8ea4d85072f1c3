package pluginclient

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
	"github.com/zerotrace/zerotrace/pkg/seaweedfs"
	"github.com/zerotrace/zerotrace/pkg/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// TestPluginBucketCacheOnFullDisk: the plugin binary in bucket mode with its
// download cache on a small tmpfs. With the disk below the free space the
// cache leaves (a quarter of this small filesystem), and then with not one
// byte free, a query is answered with its own error naming the full cache
// directory, never a crash; once space is freed the same query returns the
// whole trace, and what is cached keeps answering when the disk fills again.
func TestPluginBucketCacheOnFullDisk(t *testing.T) {
	testenv.RequireRoot(t) // tmpfs
	bin := pluginBinary(t)
	srv := seaweedfs.Start(t)
	client := srv.Client(t, "zerotrace")
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	traces := spangen.New(spangen.Config{Seed: 6, Start: start, Interval: 50 * time.Millisecond}).Next(10)
	for i := 0; i < len(traces); i += 5 {
		storetest.WriteTraces(t, dir, "", traces[i:i+5])
	}
	for _, name := range []string{"node1", "node2"} {
		u, err := bucket.NewUploader(bucket.UploaderOptions{Client: client, Prefix: "cluster-a/", DataDir: dir, Node: name})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	cache := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", cache).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", cache).Run() })
	c, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt-full", Name: "Zerotrace",
		JSONData: map[string]any{"storage": "bucket", "bucketEndpoint": srv.Endpoint, "bucketName": "zerotrace",
			"bucketPrefix": "cluster-a", "bucketPathStyle": true, "bucketAccessKeyId": seaweedfs.AccessKey,
			"cacheDir": cache, "cacheSizeMB": 256},
		SecureJSONData: map[string]string{"bucketSecretAccessKey": seaweedfs.SecretKey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if h, err := c.CheckHealth(ctx); err != nil || !strings.Contains(h.Message, "2 nodes") {
		t.Fatalf("health: %v %v", err, h)
	}

	fs, _, err := store.StatFS(cache)
	if err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(cache, "ballast")
	fill := func(free int64) {
		t.Helper()
		fs, _, _ := store.StatFS(cache)
		f, err := os.OpenFile(ballast, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 64<<10)
		for n := fs.Avail - free; n > 0; n -= int64(len(buf)) {
			if _, err := f.Write(buf[:min(int64(len(buf)), n)]); err != nil {
				if store.IsNoSpace(err) {
					return
				}
				t.Fatal(err)
			}
		}
	}
	from, to := start.Add(-time.Minute), time.Now()
	id := traces[2].Spans[0].SpanID
	for _, tc := range []struct {
		what string
		free int64
	}{
		{"below the free space the cache leaves", fs.Size / 8},
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
