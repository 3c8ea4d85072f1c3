//go:build linux

package bucket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"

	"github.com/zerotrace/zerotrace/internal/seaweedfs"
	"github.com/zerotrace/zerotrace/internal/seaweedfs/seaweedtest"
	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// queryServer is one SeaweedFS the query tests share, each in a bucket of
// its own: a start and a stop of the server less per run.
var queryServer struct {
	once sync.Once
	dir  string
	srv  *seaweedfs.Server
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if queryServer.srv != nil {
		queryServer.srv.Stop()
	}
	if queryServer.dir != "" {
		os.RemoveAll(queryServer.dir)
	}
	os.Exit(code)
}

// sharedClient returns a client of a new bucket on the shared server.
func sharedClient(t *testing.T, bucket string) *objstore.Client {
	t.Helper()
	bin, err := seaweedfs.Binary()
	if err != nil {
		testenv.Skip(t, "%v", err)
	}
	queryServer.once.Do(func() {
		if queryServer.dir, queryServer.err = os.MkdirTemp("", "zt-bucket-query-"); queryServer.err == nil {
			queryServer.srv, queryServer.err = seaweedfs.Launch(bin, queryServer.dir)
		}
	})
	if queryServer.err != nil {
		t.Fatal(queryServer.err)
	}
	return (&seaweedtest.Server{Server: queryServer.srv}).Client(t, bucket)
}

// clusterBucket writes minutes of a generated cluster (one sealed shard
// per node and minute) and uploads it: the traces and the nodes.
func clusterBucket(t *testing.T, c *objstore.Client, nodes, minutes int) ([]spangen.Trace, map[string]*node) {
	t.Helper()
	dir := t.TempDir()
	now := t0
	ns := map[string]*node{}
	for i := range nodes {
		ns[spangen.NodeName(i)] = openNode(t, c, dir, spangen.NodeName(i), &now)
	}
	gen := spangen.NewCluster(spangen.ClusterConfig{Nodes: nodes, Seed: 5, Start: t0, Interval: 250 * time.Millisecond})
	var all []spangen.Trace
	for m := 1; m <= minutes; m++ {
		now = t0.Add(time.Duration(m) * time.Minute)
		trs := gen.Until(now)
		all = append(all, trs...)
		write(t, ns, trs)
	}
	syncAll(t, ns)
	return all, ns
}

// fullReader is a reader over every shard of the bucket (the mirror
// downloads everything first): the reference the selective reader is
// held to.
func fullReader(t *testing.T, c *objstore.Client) *store.Reader {
	t.Helper()
	m, err := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "full")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prepare(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenReader(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// coldQuery opens an empty mirror and a query over it.
func coldQuery(t *testing.T, c *objstore.Client) (*Mirror, *Query) {
	t.Helper()
	m, err := OpenMirror(MirrorOptions{Client: c, Prefix: "zt/", Dir: filepath.Join(t.TempDir(), "cold")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenReader(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	q := m.NewQuery(r, 0, 0)
	t.Cleanup(func() { q.Release(); r.Close() })
	return m, q
}

var settled = trace.Config{Now: func() time.Time { return t0.Add(time.Hour) }}

// sameTrace: two assemblies of one id give the same spans and parents.
func sameTrace(t *testing.T, what string, got, want *trace.Trace) {
	t.Helper()
	if len(got.Spans) != len(want.Spans) {
		t.Fatalf("%s: %d spans, the full reader %d", what, len(got.Spans), len(want.Spans))
	}
	for i := range got.Spans {
		g, w := got.Spans[i].SpanID, want.Spans[i].SpanID
		gp, wp := uint64(0), uint64(0)
		if got.Parents[i] >= 0 {
			gp = got.Spans[got.Parents[i]].SpanID
		}
		if want.Parents[i] >= 0 {
			wp = want.Spans[want.Parents[i]].SpanID
		}
		if g != w || gp != wp {
			t.Fatalf("%s: span %d is %x under %x, the full reader's %x under %x", what, i, g, gp, w, wp)
		}
	}
}

func spanIDs(spans []span.Span) []uint64 {
	var out []uint64
	for _, s := range spans {
		out = append(out, s.SpanID)
	}
	return out
}

// TestQuerySelective: a cold query through the summaries answers exactly
// what a reader of every shard answers — traces (seed by span id, rounds
// by keys, containment by process), searches by namespace, service and
// none — and downloads only some shards.
func TestQuerySelective(t *testing.T) {
	c := sharedClient(t, "selective")
	ctx := context.Background()
	const nodes, minutes = 8, 3
	traces, _ := clusterBucket(t, c, nodes, minutes)
	full := fullReader(t, c)
	total := nodes * minutes

	// Seeds spread over the window, some near a minute's boundary.
	var picks []spangen.Trace
	for i := 0; i < len(traces); i += len(traces) / 9 {
		picks = append(picks, traces[i])
	}
	for _, tr := range traces {
		if off := time.Duration(tr.Spans[0].StartNs-t0.UnixNano()) % time.Minute; off > time.Minute-30*time.Millisecond {
			picks = append(picks, tr)
			break
		}
	}
	for _, tr := range picks {
		id := trace.DerivedID(tr.Spans[0].SpanID)
		want, err := trace.Assemble(ctx, full, settled, id, 0, 0)
		if err != nil || len(want.Spans) != 38 {
			t.Fatalf("full reader, trace %d: %v", tr.Index, err)
		}
		m, q := coldQuery(t, c)
		got, err := trace.Assemble(ctx, q, settled, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameTrace(t, fmt.Sprintf("trace %d", tr.Index), got, want)
		d := m.Downloaded()
		t.Logf("trace %d: %d of %d shards, %d summaries (%d KB), %d KB of shards", tr.Index, d.Shards, total, d.Summaries, d.SummaryBytes>>10, d.ShardBytes>>10)
		if d.Shards > total/2 || d.Shards < 2 {
			t.Fatalf("trace %d: %d of %d shards downloaded", tr.Index, d.Shards, total)
		}
		if err := q.Err(); err != nil {
			t.Fatalf("notices: %v", err)
		}
	}

	// Searches: the newest matches of a namespace, a service, everything;
	// examining two shards at a time too (the stop rule is what makes the
	// answer exact then).
	defer func(s int) { SearchStep = s }(SearchStep)
	for _, step := range []int{64, 2} {
		SearchStep = step
		searches(t, c, full, step, minutes)
	}
}

func searches(t *testing.T, c *objstore.Client, full *store.Reader, step, minutes int) {
	ctx := context.Background()
	for _, sq := range []store.SearchQuery{
		{Namespace: "bookinfo-003", Limit: 20},
		{Namespace: "bookinfo-005", Service: "ratings", Limit: 7},
		{Namespace: "bookinfo-001", FromNs: t0.Add(time.Minute).UnixNano(), ToNs: t0.Add(90 * time.Second).UnixNano(), Limit: 30},
		{Limit: 50},
		{Namespace: "no-such-namespace", Limit: 5},
	} {
		want, err := full.Search(ctx, sq)
		if err != nil {
			t.Fatal(err)
		}
		m, q := coldQuery(t, c)
		got, err := q.Search(ctx, sq)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(spanIDs(got), spanIDs(want)) || (sq.Namespace != "no-such-namespace" && len(want) == 0) {
			t.Fatalf("step %d, search %+v: %d spans, the full reader %d", step, sq, len(got), len(want))
		}
		d := m.Downloaded()
		t.Logf("step %d, search %q %q: %d spans from %d shards, %d summaries", step, sq.Namespace, sq.Service, len(got), d.Shards, d.Summaries)
		if sq.Namespace != "" && d.Shards > 2*minutes {
			t.Fatalf("search of one namespace downloaded %d shards", d.Shards)
		}
	}
}

// TestQuerySummaryFaults: a damaged, missing or unparsable summary, and
// shards uploaded before summaries (no summary, no span-id ranges): the
// shard is downloaded as before — with a notice naming the summary for the
// first three, silently for the last — and the answers stay exact.
func TestQuerySummaryFaults(t *testing.T) {
	c := sharedClient(t, "faults")
	ctx := context.Background()
	traces, _ := clusterBucket(t, c, 4, 2)
	full := fullReader(t, c)
	tr := traces[len(traces)/3]
	id := trace.DerivedID(tr.Spans[0].SpanID)
	want, err := trace.Assemble(ctx, full, settled, id, 0, 0)
	if err != nil || len(want.Spans) != 38 {
		t.Fatalf("full reader: %v", err)
	}
	// A shard of the trace on the node of its root's callee (the root's
	// own shard is found by span-id range, not by summary).
	var callee span.Span
	for _, s := range tr.Spans {
		if s.Node != tr.Spans[0].Node {
			callee = s
			break
		}
	}
	node := callee.Node
	man := readManifest(t, c, node)
	var sh Shard
	for _, s := range man.Shards {
		if s.MinNs <= callee.StartNs && callee.StartNs <= s.MaxNs {
			sh = s
		}
	}
	if sh.Summary == nil || len(sh.SpanIDs) == 0 {
		t.Fatalf("shard %s uploaded without a summary or span-id ranges: %+v", sh.Name, sh)
	}
	key := ShardPrefix("zt/", node, sh.Name) + sh.Summary.Name
	orig, err := c.GetBytes(ctx, key, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what, notice string) {
		t.Helper()
		m, q := coldQuery(t, c)
		got, err := trace.Assemble(ctx, q, settled, id, 0, 0)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		sameTrace(t, what, got, want)
		qerr := q.Err()
		switch {
		case notice == "" && qerr != nil:
			t.Fatalf("%s: notice %v", what, qerr)
		case notice != "" && (qerr == nil || !strings.Contains(qerr.Error(), key) || !strings.Contains(qerr.Error(), notice) ||
			!strings.Contains(qerr.Error(), "downloaded the shard instead")):
			t.Fatalf("%s: notice %v, want %q naming %s", what, qerr, notice, key)
		}
		t.Logf("%s: %d shards downloaded; %v", what, m.Downloaded().Shards, qerr)
	}
	check("intact", "")

	damaged := slices.Clone(orig)
	damaged[len(damaged)/2] ^= 0xff
	put(t, c, key, damaged)
	check("damaged summary", "damaged")

	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	check("missing summary", "missing from the bucket")

	// Bytes that match the manifest's sum but are no summary.
	junk := []byte("ZTSM\x01\x01 not a summary")
	put(t, c, key, junk)
	setSummary(t, c, node, sh.Name, func(s *Shard) { s.Summary.Size, s.Summary.SHA256 = int64(len(junk)), sha(junk) })
	check("unparsable summary", "bad shard summary")

	// A summary whose time range is not its shard's.
	other := readManifest(t, c, node).Shards
	var donor Shard
	for _, s := range other {
		if s.Name != sh.Name && s.Summary != nil {
			donor = s
		}
	}
	ob, err := c.GetBytes(ctx, ShardPrefix("zt/", node, donor.Name)+donor.Summary.Name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, key, ob)
	setSummary(t, c, node, sh.Name, func(s *Shard) { s.Summary.Size, s.Summary.SHA256 = int64(len(ob)), sha(ob) })
	check("another shard's summary", "disagrees with the manifest")

	// No summaries but span-id ranges: the seed's shard by its range, every
	// other shard of each round's window downloaded.
	for i := range 4 {
		setSummary(t, c, spangen.NodeName(i), "", func(s *Shard) { s.Summary = nil })
	}
	check("shards without summaries", "")
	// Every node's manifest as an uploader from before summaries wrote it.
	for i := range 4 {
		setSummary(t, c, spangen.NodeName(i), "", func(s *Shard) { s.SpanIDs = nil })
	}
	check("shards from before summaries", "")
}

func readManifest(t *testing.T, c *objstore.Client, node string) *Manifest {
	t.Helper()
	b, err := c.GetBytes(context.Background(), ManifestKey("zt/", node), MaxManifestBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// setSummary edits the bucket manifest's entry of shard (all shards for
// "").
func setSummary(t *testing.T, c *objstore.Client, node, shard string, edit func(*Shard)) {
	t.Helper()
	m := readManifest(t, c, node)
	for i := range m.Shards {
		if shard == "" || m.Shards[i].Name == shard {
			edit(&m.Shards[i])
		}
	}
	b, _ := json.Marshal(m)
	put(t, c, ManifestKey("zt/", node), b)
}

func put(t *testing.T, c *objstore.Client, key string, b []byte) {
	t.Helper()
	if err := c.PutBytes(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
