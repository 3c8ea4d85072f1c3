package store

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

var t0 = spangen.FullStart

// fullSpan has every field set to a distinct non-zero value.
func fullSpan(i int) span.Span { return spangen.Full(i) }

func openTestWriter(t *testing.T, dir string, mod func(*WriterOptions)) *Writer {
	t.Helper()
	o := WriterOptions{Dir: dir, Node: "node-a", NoBackground: true, Window: time.Minute}
	if mod != nil {
		mod(&o)
	}
	w, err := OpenWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func bookinfo(t testing.TB, n int) []span.Span {
	t.Helper()
	g := spangen.New(spangen.Config{Seed: 7, Start: t0, Interval: 20 * time.Millisecond})
	var out []span.Span
	for _, tr := range g.Next(n) {
		out = append(out, tr.Spans...)
	}
	return out
}

// getByIDs opens a reader of dir and gets the spans of the ids of spans.
func getByIDs(t *testing.T, dir string, spans []span.Span) ([]span.Span, error) {
	t.Helper()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ids := make([]uint64, len(spans))
	for i := range spans {
		ids[i] = spans[i].SpanID
	}
	return r.Get(context.Background(), 0, 0, ids)
}

func TestRoundTripEveryField(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	want := []span.Span{fullSpan(0), fullSpan(1)}
	want[1].ClientIP = netip.MustParseAddr("10.1.2.3") // IPv4 next to IPv6 in one column
	want[1].TraceID = span.TraceID{}
	want = append(want, bookinfo(t, 3)...)
	if err := w.Write(want...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := getByIDs(t, dir, want)
	if err != nil {
		t.Fatal(err)
	}
	sortByID := func(s []span.Span) {
		sort.Slice(s, func(i, j int) bool { return s[i].SpanID < s[j].SpanID })
	}
	sortByID(got)
	sortByID(want)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("round trip changed spans (-want +got):\n%s", diff)
	}
}

func TestLookupByEachKey(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, func(o *WriterOptions) { o.BatchRows = 50 })
	spans := bookinfo(t, 20)
	full := fullSpan(0)
	full.StartNs = spans[len(spans)-1].StartNs + 1000
	spans = append(spans, full)
	if err := w.Write(spans...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, _ := OpenReader(dir)
	defer r.Close()
	from, to := t0.Add(-time.Minute).UnixNano(), t0.Add(time.Hour).UnixNano()
	kinds := map[span.KeyKind]int{}
	for _, s := range spans {
		for _, k := range s.Keys(nil) {
			// expected: every span carrying k
			var want []uint64
			for _, o := range spans {
				for _, ok := range o.Keys(nil) {
					if ok == k {
						want = append(want, o.SpanID)
						break
					}
				}
			}
			got, err := r.Lookup(context.Background(), from, to, []span.Key{k})
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []uint64
			for _, g := range got {
				gotIDs = append(gotIDs, g.SpanID)
			}
			sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
			sort.Slice(gotIDs, func(i, j int) bool { return gotIDs[i] < gotIDs[j] })
			if !cmp.Equal(want, gotIDs) {
				t.Fatalf("lookup %v %v: got %v, want %v", k.Kind, k, gotIDs, want)
			}
			kinds[k.Kind]++
		}
	}
	for _, k := range []span.KeyKind{span.KeyReqTCPSeq, span.KeyRespTCPSeq, span.KeySyscallTraceID, span.KeyXRequestID, span.KeyTraceID, span.KeyAppSpanID} {
		if kinds[k] == 0 {
			t.Errorf("no lookup exercised key kind %v", k)
		}
	}
	// The time window bounds the lookup.
	k := span.Key{Kind: span.KeyReqTCPSeq, U: uint64(full.ReqTCPSeq)}
	if got, _ := r.Lookup(context.Background(), full.StartNs+1, to, []span.Key{k}); len(got) != 0 {
		t.Errorf("lookup after the span's start found %d spans", len(got))
	}
	if got, _ := r.Lookup(context.Background(), full.StartNs, full.StartNs, []span.Key{k}); len(got) != 1 {
		t.Errorf("lookup at exactly the span's start found %d spans, want 1", len(got))
	}
}

func TestSearchFiltersAndOrder(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, func(o *WriterOptions) { o.BatchRows = 64 })
	g := spangen.New(spangen.Config{Seed: 3, Start: t0, Interval: 5 * time.Millisecond, ErrorRate: 0.3})
	var all []span.Span
	for _, tr := range g.Next(40) {
		all = append(all, tr.Spans...)
	}
	for i := range all { // span/2: a workload on reviews' spans
		if all[i].Service == "reviews" {
			all[i].Workload, all[i].WorkloadKind = "reviews-v1", "Deployment"
		}
	}
	other := fullSpan(1)
	other.Namespace, other.StartNs = "istio-system", t0.Add(time.Second).UnixNano()
	all = append(all, other)
	if err := w.Write(all...); err != nil {
		t.Fatal(err)
	}
	w.Seal() // two shards: the search spans them
	if err := w.Write(fullSpan(2)); err != nil {
		t.Fatal(err)
	}
	all = append(all, fullSpan(2))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, _ := OpenReader(filepath.Join(dir, "node-a")) // a node directory works too
	defer r.Close()
	ctx := context.Background()
	for _, q := range []SearchQuery{
		{Limit: 1000},
		{Namespace: "bookinfo", Limit: 1000},
		{Namespace: "istio-system"},
		{Service: "reviews", Limit: 1000},
		{Workload: "reviews-v1", Limit: 1000},
		{Namespace: "bookinfo", Status: "server_error", Limit: 1000},
		{Protocol: "http", TapSides: []span.TapSide{span.TapServerProcess}, Limit: 1000},
		{Endpoint: "GET /reviews/{id}", Limit: 1000},
		{MinDuration: 5 * time.Millisecond, Limit: 1000},
		{MaxDuration: 2 * time.Millisecond, Limit: 1000},
		{MinDuration: 2 * time.Millisecond, MaxDuration: 5 * time.Millisecond, Limit: 1000},
		{Namespace: "bookinfo", Limit: 7},
		{FromNs: t0.Add(50 * time.Millisecond).UnixNano(), ToNs: t0.Add(100 * time.Millisecond).UnixNano(), Limit: 1000},
	} {
		got, err := r.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var want []span.Span
		for _, s := range all {
			if (q.Namespace == "" || s.Namespace == q.Namespace) && (q.Service == "" || s.Service == q.Service) && (q.Workload == "" || s.Workload == q.Workload) &&
				(q.Endpoint == "" || s.Endpoint == q.Endpoint) && (q.Protocol == "" || s.L7Protocol.String() == q.Protocol) &&
				(q.Status == "" || s.ResponseStatus.String() == q.Status) && s.Duration() >= q.MinDuration &&
				(q.MaxDuration == 0 || s.Duration() <= q.MaxDuration) && (len(q.TapSides) == 0 || s.TapSide == q.TapSides[0]) &&
				(q.FromNs == 0 || s.StartNs >= q.FromNs) && (q.ToNs == 0 || s.StartNs <= q.ToNs) {
				want = append(want, s)
			}
		}
		sort.SliceStable(want, func(i, j int) bool {
			if want[i].StartNs != want[j].StartNs {
				return want[i].StartNs > want[j].StartNs
			}
			return want[i].SpanID > want[j].SpanID
		})
		if len(want) > q.Limit && q.Limit > 0 {
			want = want[:q.Limit]
		}
		if len(want) == 0 {
			t.Fatalf("query %+v matches nothing: a useless case", q)
		}
		ids := func(s []span.Span) []uint64 {
			var o []uint64
			for _, x := range s {
				o = append(o, x.SpanID)
			}
			return o
		}
		if !cmp.Equal(ids(want), ids(got)) {
			t.Errorf("search %+v:\n got %v\nwant %v", q, ids(got), ids(want))
		}
	}
	if _, err := r.Search(ctx, SearchQuery{Protocol: "smtp"}); err == nil {
		t.Error("unknown protocol accepted")
	}
	if wl, err := r.Values(ctx, ValuesQuery{Field: "workload", Namespace: "bookinfo"}); err != nil || !cmp.Equal(wl, []string{"reviews-v1"}) {
		t.Errorf("workloads: %v %v", wl, err)
	}
	if wl, err := r.Values(ctx, ValuesQuery{Field: "workload", Namespace: "istio-system"}); err != nil || len(wl) != 0 {
		t.Errorf("workloads of istio-system: %v %v", wl, err)
	}
	vals, err := r.Values(ctx, ValuesQuery{Field: "service", Namespace: "bookinfo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"details", "productpage", "ratings", "reviews"} {
		if !contains(vals, want) {
			t.Errorf("services of bookinfo %v lack %s", vals, want)
		}
	}
	ns, _ := r.Values(ctx, ValuesQuery{Field: "namespace"})
	if !cmp.Equal(ns, []string{"bookinfo", "istio-system"}) {
		t.Errorf("namespaces %v", ns)
	}
	protos, _ := r.Values(ctx, ValuesQuery{Field: "protocol"})
	if !cmp.Equal(protos, []string{"http"}) {
		t.Errorf("protocols %v", protos)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestMergeAndRetention(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(10 * time.Minute)
	w := openTestWriter(t, dir, func(o *WriterOptions) {
		o.Now = func() time.Time { return now }
		o.BatchRows = 100
	})
	spans := bookinfo(t, 60) // 60 traces over 1.2 s, all in one window
	for i := 0; i < len(spans); i += 500 {
		w.Write(spans[i:min(i+500, len(spans))]...)
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	before := w.Manifest()
	if len(before.Shards) < 3 {
		t.Fatalf("want several small shards, have %d", len(before.Shards))
	}
	r, _ := OpenReader(dir)
	defer r.Close()
	ctx := context.Background()
	k := spans[len(spans)-1].Keys(nil)[0]
	pre, err := r.Lookup(ctx, 0, now.UnixNano(), []span.Key{k}) // opens the small shards
	if err != nil || len(pre) == 0 {
		t.Fatalf("lookup before merge: %v %d", err, len(pre))
	}
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	after := w.Manifest()
	if len(after.Shards) != 1 || !after.Shards[0].Merged || after.Shards[0].Spans != int64(len(spans)) {
		t.Fatalf("after merge: %+v", after.Shards)
	}
	for _, s := range before.Shards {
		if _, err := os.Stat(filepath.Join(dir, "node-a", s.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("merged source %s still on disk", s.Name)
		}
	}
	time.Sleep(RefreshInterval + 50*time.Millisecond)
	post, err := r.Lookup(ctx, 0, now.UnixNano(), []span.Key{k})
	if err != nil || !cmp.Equal(ids(pre), ids(post)) {
		t.Fatalf("lookup after merge: %v %v vs %v", err, ids(post), ids(pre))
	}
	st, _ := r.Stats(ctx)
	if st.Spans != int64(len(spans)) || st.Shards != 1 {
		t.Errorf("stats after merge %+v", st)
	}
	// Neither side keeps the checksum stamps of the merged sources.
	for who, v := range map[string]*verifier{"writer": &w.opener.verifier, "reader": &r.opener.verifier} {
		for d := range v.seen {
			if filepath.Base(d) != after.Shards[0].Name {
				t.Errorf("%s still remembers %s", who, d)
			}
		}
	}
	w.Close()

	// Retention by age drops the whole shard.
	now = t0.Add(2 * time.Hour)
	w = openTestWriter(t, dir, func(o *WriterOptions) { o.Now = func() time.Time { return now }; o.RetentionAge = time.Hour })
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if n := len(w.Manifest().Shards); n != 0 {
		t.Errorf("retention by age kept %d shards", n)
	}
	w.Close()

	// Retention by disk budget drops the oldest shards first.
	w = openTestWriter(t, dir, func(o *WriterOptions) { o.Now = func() time.Time { return now } })
	for i := 0; i < 4; i++ {
		s := append([]span.Span(nil), spans[i*10:i*10+10]...)
		for j := range s { // one window each, so that Maintain does not merge them
			s[j].StartNs += int64(i) * int64(time.Minute)
			s[j].EndNs += int64(i) * int64(time.Minute)
		}
		w.Write(s...)
		w.Seal()
	}
	m := w.Manifest()
	w.Close()
	// The budget counts everything in the node directory: the two newest
	// shards and the manifest fit.
	fi, err := os.Stat(filepath.Join(dir, "node-a", ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	budget := m.Shards[2].Bytes + m.Shards[3].Bytes + diskUsage(fi)
	w = openTestWriter(t, dir, func(o *WriterOptions) { o.Now = func() time.Time { return now }; o.DiskBudget = budget })
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	got := w.Manifest().Shards
	if len(got) != 2 || got[0].Name != m.Shards[2].Name {
		t.Errorf("disk budget kept %+v, want the two newest of %+v", got, m.Shards)
	}
	w.Close()
}

func ids(s []span.Span) []uint64 {
	var o []uint64
	for _, x := range s {
		o = append(o, x.SpanID)
	}
	return o
}

// twoSealedShards writes four Bookinfo requests into two sealed shards of
// one batch each, the first request's 38 spans in the first.
func twoSealedShards(t *testing.T) (dir string, spans []span.Span, m *Manifest) {
	t.Helper()
	dir = t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans = bookinfo(t, 4)
	w.Write(spans[:38]...)
	w.Seal()
	w.Write(spans[38:]...)
	w.Close()
	m, _ = readManifest(filepath.Join(dir, "node-a"))
	if len(m.Shards) != 2 || m.Shards[0].Batches != 1 {
		t.Fatalf("want 2 shards, the first of one batch: %+v", m.Shards)
	}
	return dir, spans, m
}

func TestCorruptShardNamedOthersAnswer(t *testing.T) {
	dir, spans, m := twoSealedShards(t)
	bad := filepath.Join(dir, "node-a", m.Shards[0].Name)
	// Overwrite every table file with garbage.
	ents, _ := os.ReadDir(bad)
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".sst" || e.Name() == "MANIFEST" {
			os.WriteFile(filepath.Join(bad, e.Name()), []byte("this is not a badger table"), 0o644)
		}
	}
	othersAnswer(t, dir, bad, spans)
}

// othersAnswer looks up every key of spans in dir and checks that the shard
// bad is named in a ShardError while the other shard answers its spans, all
// but the first 38. It returns the error.
func othersAnswer(t *testing.T, dir, bad string, spans []span.Span) error {
	t.Helper()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := lookupAll(r, spans)
	var se *ShardError
	if !errors.As(err, &se) || se.Shard != bad {
		t.Fatalf("want a ShardError naming %s, got %v", bad, err)
	}
	if len(got) != len(spans)-38 {
		t.Fatalf("the healthy shard answered %d spans, want %d", len(got), len(spans)-38)
	}
	return err
}

// lookupAll looks up every correlation key of spans over the hour from
// before t0.
func lookupAll(r *Reader, spans []span.Span) ([]span.Span, error) {
	var keys []span.Key
	for _, s := range spans {
		keys = s.Keys(keys)
	}
	return r.Lookup(context.Background(), 0, t0.Add(time.Hour).UnixNano(), keys)
}
