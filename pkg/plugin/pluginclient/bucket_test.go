//go:build linux

package pluginclient

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// bucketPlugin starts the plugin configured with the bucket only.
func bucketPlugin(t *testing.T, bin string, srv *seaweedtest.Server, secret string) *Client {
	t.Helper()
	return bucketPluginAt(t, bin, srv, secret, "zt-bucket", t.TempDir())
}

// bucketPluginAt starts the plugin as data source uid with its cache in
// cacheDir.
func bucketPluginAt(t *testing.T, bin string, srv *seaweedtest.Server, secret, uid, cacheDir string) *Client {
	t.Helper()
	c, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: uid, Name: "Zerotrace",
		JSONData: map[string]any{"storage": "bucket", "bucketEndpoint": srv.Endpoint, "bucketName": "zerotrace",
			"bucketPrefix": "cluster-a", "bucketPathStyle": true, "bucketAccessKeyId": seaweedtest.AccessKey,
			"cacheDir": cacheDir, "cacheSizeMB": 256},
		SecureJSONData: map[string]string{"bucketSecretAccessKey": secret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// uploadTraces writes n generated traces into shards of five traces, as
// node1 and node2 would, and uploads them under cluster-a/: the plugin sees
// the bucket only.
func uploadTraces(t *testing.T, client *objstore.Client, seed uint64, start time.Time, n int) []spangen.Trace {
	t.Helper()
	dir := t.TempDir()
	traces := spangen.New(spangen.Config{Seed: seed, Start: start, Interval: 50 * time.Millisecond}).Next(n)
	for i := 0; i < len(traces); i += 5 { // several shards per node
		storetest.WriteTraces(t, dir, "", traces[i:min(i+5, len(traces))])
	}
	for _, name := range []string{"node1", "node2"} {
		u, err := bucket.NewUploader(bucket.UploaderOptions{Client: client, Prefix: "cluster-a/", DataDir: dir, Node: name})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return traces
}

func notices(r *Response) string {
	var s []string
	for _, f := range r.Frames {
		if f.Meta != nil {
			for _, n := range f.Meta.Notices {
				s = append(s, n.Text)
			}
		}
	}
	return strings.Join(s, "; ")
}

func traceRows(t *testing.T, c *Client, id uint64, from, to time.Time) (*Response, int) {
	t.Helper()
	r, err := c.Query(context.Background(), map[string]any{"queryType": "trace", "spanId": strconv.FormatUint(id, 10)}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != "" || len(r.Frames) == 0 {
		return r, 0
	}
	return r, r.Frames[0].Rows()
}

// TestPluginBinaryOverBucket: shards uploaded by two nodes' uploaders are
// queried by the plugin binary configured with the bucket alone; a damaged
// object is a notice naming it, wrong credentials and a stopped server are
// clear health errors, and what is cached keeps answering.
func TestPluginBinaryOverBucket(t *testing.T) {
	bin := pluginBinary(t)
	srv := seaweedtest.Start(t)
	client := srv.Client(t, "zerotrace")
	ctx := context.Background()

	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	traces := uploadTraces(t, client, 4, start, 20)

	c := bucketPlugin(t, bin, srv, seaweedtest.SecretKey)
	h, err := c.CheckHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != pluginv2.CheckHealthResponse_OK || !strings.Contains(h.Message, "2 nodes") || !strings.Contains(h.Message, "760 spans") {
		t.Fatalf("CheckHealth: %v %q", h.Status, h.Message)
	}
	t.Logf("health: %s", h.Message)

	from, to := start.Add(-time.Minute), time.Now()
	t1 := time.Now()
	r, n := traceRows(t, c, traces[0].Spans[0].SpanID, from, to)
	cold := time.Since(t1)
	if n != 38 {
		t.Fatalf("cold trace: %d rows, %q %s", n, r.Error, notices(r))
	}
	var warm []time.Duration
	for _, tr := range traces {
		t1 := time.Now()
		r, n := traceRows(t, c, tr.Spans[0].SpanID, from, to)
		warm = append(warm, time.Since(t1))
		if n != 38 {
			t.Fatalf("trace %d: %d rows, %q %s", tr.Index, n, r.Error, notices(r))
		}
		checkOwnSpans(t, r, tr)
	}
	sort.Slice(warm, func(i, j int) bool { return warm[i] < warm[j] })
	t.Logf("trace query through the bucket: cold %v, warm median %v (goals 2 s, 50 ms)", cold.Round(time.Millisecond), warm[len(warm)/2].Round(time.Microsecond))
	r, err = c.Query(ctx, map[string]any{"queryType": "search", "tableType": "spans", "namespace": "bookinfo", "service": "ratings", "limit": 10}, from, to)
	if err != nil || r.Error != "" || r.Frames[0].Rows() != 10 || notices(r) != "" {
		t.Fatalf("search: %v %q %s", err, r.Error, notices(r))
	}

	// A damaged object: a fresh plugin (empty cache) names it and serves the rest.
	var man *bucket.Manifest
	b, err := client.GetBytes(ctx, bucket.ManifestKey("cluster-a/", "node1"), bucket.MaxManifestBytes)
	if err == nil {
		man, err = bucket.ParseManifest(b)
	}
	if err != nil {
		t.Fatal(err)
	}
	sh := man.Shards[0]
	var f bucket.File
	for _, x := range sh.Files {
		if strings.HasSuffix(x.Name, ".sst") {
			f = x
		}
	}
	key := bucket.ShardPrefix("cluster-a/", "node1", sh.Name) + f.Name
	ob, _ := client.GetBytes(ctx, key, 1<<30)
	ob[len(ob)-10] ^= 0x55
	if err := client.PutBytes(ctx, key, ob); err != nil {
		t.Fatal(err)
	}
	c2 := bucketPlugin(t, bin, srv, seaweedtest.SecretKey)
	r, err = c2.Query(ctx, map[string]any{"queryType": "search", "tableType": "spans", "namespace": "bookinfo", "limit": 1000}, from, to)
	if err != nil || r.Error != "" || !strings.Contains(notices(r), key) || !strings.Contains(notices(r), "damaged") {
		t.Fatalf("damaged object: %v %q notices %q", err, r.Error, notices(r))
	}
	// Served: exactly the spans in namespace bookinfo (the query's) of
	// every other shard. The damaged shard
	// holds node1's spans of one group of five traces (one WriteTraces
	// call), the same group whatever else happened.
	got := searchedSpans(t, r.Frames[0])
	group := -1
	for g := 0; g < len(traces); g += 5 {
		damaged := map[uint64]bool{}
		for _, s := range spansOn(traces[g:g+5], "node1") {
			damaged[s.SpanID] = true
		}
		var want []string
		for _, s := range spansOn(traces, "") {
			if !damaged[s.SpanID] && s.Namespace == "bookinfo" {
				want = append(want, spanKey(s.Node, time.Unix(0, s.StartNs)))
			}
		}
		slices.Sort(want)
		if slices.Equal(got, want) {
			group = g
		}
	}
	if group < 0 {
		t.Fatalf("damaged object: %d rows served, want the bookinfo spans of every shard but the damaged one", len(got))
	}
	t.Logf("damaged object: %d rows served, every bookinfo span but node1's of traces %d–%d", len(got), group, group+4)
	t.Logf("damaged object notice: %s", notices(r))

	// Wrong credentials: a health error that says so.
	c3 := bucketPlugin(t, bin, srv, "wrong-secret")
	h, err = c3.CheckHealth(ctx)
	if err != nil || h.Status != pluginv2.CheckHealthResponse_ERROR || !strings.Contains(h.Message, "refused the credentials") ||
		strings.Contains(h.Message, "wrong-secret") {
		t.Fatalf("wrong credentials: %v %v %q", err, h.GetStatus(), h.GetMessage())
	}
	t.Logf("wrong credentials: %s", h.Message)

	// The server stopped: health says the bucket is unreachable; cached
	// traces still answer, with a notice.
	srv.Stop()
	h, _ = c.CheckHealth(ctx)
	if h.Status != pluginv2.CheckHealthResponse_ERROR || !strings.Contains(h.Message, "the object store is unreachable") {
		t.Fatalf("stopped server: %v %q", h.Status, h.Message)
	}
	time.Sleep(2100 * time.Millisecond) // past the listing interval
	r, n = traceRows(t, c, traces[3].Spans[0].SpanID, from, to)
	if n != 38 || !strings.Contains(notices(r), "listing the bucket") {
		t.Fatalf("stopped server, cached trace: %d rows, %q", n, notices(r))
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	h, _ = c.CheckHealth(ctx)
	if h.Status != pluginv2.CheckHealthResponse_OK {
		t.Fatalf("after restart: %v %q", h.Status, h.Message)
	}
}

// searchedSpans lists a search frame's rows as "<node> <start>", sorted.
func searchedSpans(t *testing.T, f *data.Frame) []string {
	t.Helper()
	node, _ := f.FieldByName("node")
	start, _ := f.FieldByName("startTime")
	if node == nil || start == nil {
		t.Fatalf("search frame without node or startTime")
	}
	out := make([]string, f.Rows())
	for i := range out {
		out[i] = spanKey(node.At(i).(string), start.At(i).(time.Time))
	}
	slices.Sort(out)
	return out
}

func spanKey(node string, start time.Time) string {
	return node + " " + start.UTC().Format(time.RFC3339Nano)
}
