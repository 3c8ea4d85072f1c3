//go:build linux

package bucket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/inflight"
	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// node is one node's writer and uploader over a shared clock.
type node struct {
	w *store.Writer
	u *Uploader
}

func openNode(t *testing.T, c *objstore.Client, dir, name string, now *time.Time) *node {
	t.Helper()
	u, err := NewUploader(UploaderOptions{Client: c, Prefix: "zt/", DataDir: dir, Node: name, Grace: time.Minute,
		Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: name, NoBackground: true, Window: time.Minute,
		Now: func() time.Time { return *now }, Keep: func(s string) bool { return !u.Uploaded(s) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &node{w, u}
}

// write stores traces, one sealed shard per call and node.
func write(t *testing.T, nodes map[string]*node, traces []spangen.Trace) {
	t.Helper()
	for _, tr := range traces {
		for _, s := range tr.Spans {
			nodes[s.Node].w.Write(s)
		}
	}
	for _, n := range nodes {
		if err := n.w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
}

func syncAll(t *testing.T, nodes map[string]*node) {
	t.Helper()
	for name, n := range nodes {
		if err := n.u.Sync(context.Background()); err != nil {
			t.Fatalf("sync %s: %v", name, err)
		}
	}
}

func fileSum(t *testing.T, path string) (int64, string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return int64(len(b)), hex.EncodeToString(s[:])
}

// checkBucket: the bucket manifest lists the local manifest's shards
// (exactly, or at least), each file with the local file's size and sum.
func checkBucket(t *testing.T, c *objstore.Client, dir, name string, exact bool) *Manifest {
	t.Helper()
	m := readManifest(t, c, name)
	lb, _ := os.ReadFile(filepath.Join(dir, name, store.ManifestName))
	lm, _ := store.ParseManifest(lb)
	var want, got []string
	local := map[string]bool{}
	for _, s := range lm.Shards {
		want = append(want, s.Name)
		local[s.Name] = true
	}
	for _, s := range m.Shards {
		if !exact && !local[s.Name] {
			continue
		}
		got = append(got, s.Name)
		for _, f := range s.Files {
			size, sum := fileSum(t, filepath.Join(dir, name, s.Name, f.Name))
			if size != f.Size || sum != f.SHA256 {
				t.Fatalf("%s/%s: manifest %d %s, local %d %s", s.Name, f.Name, f.Size, f.SHA256, size, sum)
			}
			ob, err := c.GetBytes(context.Background(), ShardPrefix("zt/", name, s.Name)+f.Name, 1<<30)
			if err != nil || int64(len(ob)) != size {
				t.Fatalf("object of %s/%s: %v", s.Name, f.Name, err)
			}
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, ",") != strings.Join(got, ",") {
		t.Fatalf("node %s: bucket lists %v, local %v", name, got, want)
	}
	return m
}

// traceSpans reads every span of each trace through a reader over dir.
func checkTraces(t *testing.T, r *store.Reader, traces []spangen.Trace) {
	t.Helper()
	r.Refresh()
	for _, tr := range traces {
		var ids []uint64
		for _, s := range tr.Spans {
			ids = append(ids, s.SpanID)
		}
		got, err := r.Get(context.Background(), 0, 0, ids)
		if err != nil || len(got) != len(ids) {
			t.Fatalf("trace %d: %d of %d spans, %v", tr.Index, len(got), len(ids), err)
		}
	}
}

func TestUploadAndMirror(t *testing.T) {
	srv := seaweedtest.Start(t)
	c := srv.Client(t, "traces")
	ctx := context.Background()
	dir := t.TempDir()
	now := t0.Add(5 * time.Minute)
	nodes := map[string]*node{}
	for _, n := range []string{"node1", "node2"} {
		nodes[n] = openNode(t, c, dir, n, &now)
	}
	gen := spangen.New(spangen.Config{Seed: 3, Start: t0, Interval: 100 * time.Millisecond})
	var traces []spangen.Trace
	for i := 0; i < 3; i++ { // three small shards per node, one window
		tr := gen.Next(5)
		traces = append(traces, tr...)
		write(t, nodes, tr)
	}
	syncAll(t, nodes)
	for name := range nodes {
		if m := checkBucket(t, c, dir, name, true); len(m.Shards) != 3 {
			t.Fatalf("%s: %d shards in the bucket", name, len(m.Shards))
		}
		if st := nodes[name].u.Stats(); st.Shards != 3 || st.Bytes == 0 || st.Pending != 0 || !st.Connected {
			t.Fatalf("%s stats %+v", name, st)
		}
	}

	// The mirror serves every trace from the bucket alone.
	mdir := filepath.Join(t.TempDir(), "cache")
	m, err := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: mdir})
	if err != nil {
		t.Fatal(err)
	}
	release, err := m.Prepare(ctx, t0.UnixNano(), now.UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenReader(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkTraces(t, r, traces)
	release()
	st, err := m.Stats(ctx)
	if err != nil || st.Nodes != 2 || st.Shards != 6 || st.Spans != int64(len(traces)*38) || st.CachedShards != 6 {
		t.Fatalf("mirror stats %+v %v", st, err)
	}

	// A cache bound smaller than one query's shards: they stay while the
	// query runs (pinned), then go, least recently used first.
	small, _ := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "small"), CacheBytes: 1})
	rs, _ := store.OpenReader(small.Dir())
	defer rs.Close()
	relS, err := small.Prepare(ctx, t0.UnixNano(), now.UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	checkTraces(t, rs, traces)
	relS()
	if st, _ := small.Stats(ctx); st.CachedShards != 0 || st.CachedBytes != 0 {
		t.Fatalf("after release over the bound: %d shards, %d bytes cached", st.CachedShards, st.CachedBytes)
	}
	// The files go after the manifest no longer lists them (100 ms later,
	// on a goroutine of their own, which a loaded machine runs late).
	for _, node := range []string{"node1", "node2"} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			ents, _ := os.ReadDir(filepath.Join(small.Dir(), node))
			if len(ents) == 1 && ents[0].Name() == store.ManifestName {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: evicted shards left on disk 10 s after the release: %v", node, ents)
			}
		}
	}

	// Concurrent queries of a new mirror share each shard's download, and
	// each is served every span of the window. They start together and must
	// have been preparing at once (8 of 8 measured, 4 runs; before the
	// listing was shared, 2–3: the first query listed the bucket while the
	// others found no manifest and prepared nothing). One after the other,
	// they would find the shards cached and download 6 as well. A loaded
	// machine can run them almost one at a time, which shows nothing: then
	// another batch goes to another new mirror (at most overlapRounds,
	// docs/testing.md rule 4), each batch checked, one of them at the floor.
	var ids []uint64
	for _, tr := range traces {
		for _, s := range tr.Spans {
			ids = append(ids, s.SpanID)
		}
	}
	best := 0
	for round := 1; round <= overlapRounds && best < minMirrorOverlap; round++ {
		n := concurrentQueries(t, ctx, c, filepath.Join(t.TempDir(), fmt.Sprintf("shared%d", round)), t0, now, ids)
		t.Logf("batch %d: at most %d of 8 queries preparing at once", round, n)
		best = max(best, n)
	}
	if best < minMirrorOverlap {
		t.Errorf("8 concurrent queries: at most %d preparing at once in %d batches, want ≥ %d", best, overlapRounds, minMirrorOverlap)
	}

	// A damaged node manifest: named in the error and the stats, the other
	// nodes served.
	badKey := ManifestKey("zt/", "node3")
	if err := c.PutBytes(ctx, badKey, []byte(`{"version":1,"node":"node3","shards":[{"name":"../../etc","files":[]}]}`)); err != nil {
		t.Fatal(err)
	}
	m5, _ := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "c5")})
	rel5, err := m5.Prepare(ctx, t0.UnixNano(), now.UnixNano())
	var oe *ObjectError
	if !errors.As(err, &oe) || oe.Key != badKey || !strings.Contains(err.Error(), "bad bucket manifest") {
		t.Fatalf("damaged node manifest: %v", err)
	}
	r5, _ := store.OpenReader(m5.Dir())
	checkTraces(t, r5, traces)
	r5.Close()
	rel5()
	if st, _ := m5.Stats(ctx); st.Nodes != 2 || len(st.NodeErrors) != 1 {
		t.Fatalf("stats with a damaged node manifest: %+v", st)
	}
	if err := c.Delete(ctx, badKey); err != nil {
		t.Fatal(err)
	}

	// A window before the data downloads nothing.
	m2, _ := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "c2")})
	rel2, err := m2.Prepare(ctx, t0.Add(-time.Hour).UnixNano(), t0.Add(-time.Minute).UnixNano())
	if st, _ := m2.Stats(ctx); err != nil || st.CachedShards != 0 {
		t.Fatalf("out-of-window prepare cached %d shards: %v", st.CachedShards, err)
	}
	rel2()

	// Merge: the merged shard replaces its sources in the bucket; their
	// objects stay for the grace period, then go.
	now = t0.Add(10 * time.Minute)
	for _, n := range nodes {
		if err := n.w.Maintain(); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, nodes)
	bm := checkBucket(t, c, dir, "node1", true)
	if len(bm.Shards) != 1 || !bm.Shards[0].Merged || len(bm.Deleting) != 3 {
		t.Fatalf("after merge: %d shards, %d deleting", len(bm.Shards), len(bm.Deleting))
	}
	src := ShardPrefix("zt/", "node1", bm.Deleting[0].Name) + bm.Deleting[0].Files[0]
	if _, err := c.Head(ctx, src); err != nil {
		t.Fatalf("source object gone before its grace: %v", err)
	}
	srcSummary := ShardPrefix("zt/", "node1", bm.Deleting[0].Name) + SummaryName
	if !slices.Contains(bm.Deleting[0].Files, SummaryName) || bm.Shards[0].Summary == nil {
		t.Fatalf("merge: the source's summary is not deleted with it, or the merged shard has none: %+v", bm)
	}
	release, err = m.Prepare(ctx, t0.UnixNano(), now.UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	checkTraces(t, r, traces) // now from the merged shards, no duplicates
	release()
	now = now.Add(2 * time.Minute)
	syncAll(t, nodes)
	for _, key := range []string{src, srcSummary} {
		if _, err := c.Head(ctx, key); !objstore.IsNotFound(err) {
			t.Fatalf("source object %s after its grace: %v", key, err)
		}
	}
	if bm = checkBucket(t, c, dir, "node1", true); len(bm.Deleting) != 0 {
		t.Fatalf("deleting list not emptied: %+v", bm.Deleting)
	}

	// A damaged object and a missing one: notices naming them, the other
	// node's traces served.
	n1 := bm.Shards[0]
	var big File
	for _, f := range n1.Files {
		if f.Size > big.Size {
			big = f
		}
	}
	damaged := ShardPrefix("zt/", "node1", n1.Name) + big.Name
	ob, _ := c.GetBytes(ctx, damaged, 1<<30)
	ob[len(ob)/2] ^= 0xff
	if err := c.PutBytes(ctx, damaged, ob); err != nil {
		t.Fatal(err)
	}
	m3, _ := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "c3")})
	rel3, err := m3.Prepare(ctx, t0.UnixNano(), now.UnixNano())
	if !errors.As(err, &oe) || oe.Key != damaged || !errors.Is(err, errDamaged) {
		t.Fatalf("damaged object: %v", err)
	}
	t.Logf("damaged: %v", err)
	r3, _ := store.OpenReader(m3.Dir())
	defer r3.Close()
	node2Spans := 0
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if s.Node == "node2" {
				got, err := r3.Get(ctx, 0, 0, []uint64{s.SpanID})
				if err != nil || len(got) != 1 {
					t.Fatalf("node2 span %d: %v", s.SpanID, err)
				}
				node2Spans++
			}
		}
	}
	rel3()
	if err := c.Delete(ctx, damaged); err != nil {
		t.Fatal(err)
	}
	m4, _ := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "c4")})
	rel4, err := m4.Prepare(ctx, t0.UnixNano(), now.UnixNano())
	if !errors.As(err, &oe) || oe.Key != damaged || !strings.Contains(err.Error(), "missing from the bucket") {
		t.Fatalf("missing object: %v", err)
	}
	rel4()
	t.Logf("missing: %v; node2 spans served: %d", err, node2Spans)
}

// TestUploaderCatchesUp: the bucket down while shards are sealed; local age
// retention keeps what is not uploaded; once the bucket is back everything
// is uploaded. Objects of an interrupted upload are cleaned up.
func TestUploaderCatchesUp(t *testing.T) {
	srv := seaweedtest.Start(t)
	c := srv.Client(t, "traces")
	ctx := context.Background()
	dir := t.TempDir()
	now := t0.Add(5 * time.Minute)

	// Objects of a shard whose upload a crash interrupted (no manifest entry).
	orphan := ShardPrefix("zt/", "node1", "h-00000000000000000001") + "000001.sst"
	if err := c.PutBytes(ctx, orphan, []byte("partial")); err != nil {
		t.Fatal(err)
	}
	n := openNode(t, c, dir, "node1", &now)
	gen := spangen.New(spangen.Config{Seed: 5, Start: t0, Interval: 100 * time.Millisecond})
	var traces []spangen.Trace
	tr := gen.Next(3)
	traces = append(traces, tr...)
	write(t, map[string]*node{"node1": n}, onlyNode(tr, "node1"))
	if err := n.u.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, orphan); !objstore.IsNotFound(err) {
		t.Fatalf("orphan object of an interrupted upload: %v", err)
	}

	srv.Stop()
	for i := 0; i < 3; i++ {
		tr := gen.Next(3)
		traces = append(traces, tr...)
		write(t, map[string]*node{"node1": n}, onlyNode(tr, "node1"))
		if err := n.u.Sync(ctx); err == nil {
			t.Fatal("sync with the bucket down succeeded")
		}
	}
	if st := n.u.Stats(); st.Pending != 3 {
		t.Fatalf("pending %d, want 3", st.Pending)
	}
	// Age retention (1 min, all spans older) keeps the three not uploaded.
	n.w.Close()
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: "node1", NoBackground: true, Window: time.Hour,
		RetentionAge: time.Minute, Now: func() time.Time { return now }, Keep: func(s string) bool { return !n.u.Uploaded(s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := len(w.Manifest().Shards); got != 3 {
		t.Fatalf("retention left %d shards, want the 3 not uploaded", got)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		err := n.u.Sync(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket back for a minute, still failing: %v", err)
		}
	}
	checkBucket(t, c, dir, "node1", false)
	m, _ := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "c")})
	rel, err := m.Prepare(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	r, _ := store.OpenReader(m.Dir())
	defer r.Close()
	checkTraces(t, r, onlyNode(traces, "node1"))

	// Wrong credentials: a sentence naming the cause, never the secret.
	cfg := srv.Config("traces")
	cfg.Credentials.SecretAccessKey = "not-the-secret"
	bad, _ := objstore.New(cfg)
	u, _ := NewUploader(UploaderOptions{Client: bad, DataDir: dir, Node: "node1"})
	err = u.Sync(ctx)
	if !objstore.IsAuth(err) || !strings.Contains(describe(err), "refused the credentials") || strings.Contains(describe(err), "not-the-secret") {
		t.Fatalf("wrong credentials: %v", err)
	}
}

func onlyNode(traces []spangen.Trace, name string) []spangen.Trace {
	var out []spangen.Trace
	for _, tr := range traces {
		c := tr
		c.Spans = nil
		for _, s := range tr.Spans {
			if s.Node == name {
				c.Spans = append(c.Spans, s)
			}
		}
		out = append(out, c)
	}
	return out
}

// overlapRounds bounds the batches of concurrent queries sent until one
// overlaps to minMirrorOverlap (docs/testing.md rule 4).
const overlapRounds, minMirrorOverlap = 3, 6

// concurrentQueries starts 8 queries of a new mirror in dir together, each
// preparing [t0, now] and reading the spans ids; each must be served every
// one of them, and the mirror must have downloaded and cached the 6 shards
// once. It returns how many were preparing at once at most.
func concurrentQueries(t *testing.T, ctx context.Context, c *objstore.Client, dir string, t0, now time.Time, ids []uint64) int {
	t.Helper()
	shared, err := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	prepared := make([]span.Span, 8)
	served := make([]int, len(prepared))
	for i := range prepared {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			prepared[i].StartNs = time.Now().UnixNano()
			rel, err := shared.Prepare(ctx, t0.UnixNano(), now.UnixNano())
			prepared[i].EndNs = time.Now().UnixNano()
			if err != nil {
				t.Error(err)
				return
			}
			defer rel()
			r, err := store.OpenReader(shared.Dir())
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			got, err := r.Get(ctx, 0, 0, ids)
			if err != nil {
				t.Error(err)
			}
			served[i] = len(got)
		}()
	}
	close(start)
	wg.Wait()
	for i, n := range served {
		if n != len(ids) {
			t.Errorf("concurrent query %d: served %d of the window's %d spans", i, n, len(ids))
		}
	}
	if st, _ := shared.Stats(ctx); st.Downloads != 6 || st.CachedShards != 6 {
		t.Fatalf("8 concurrent queries: %d downloads, %d cached, want 6 each", st.Downloads, st.CachedShards)
	}
	return inflight.Max(prepared)
}
