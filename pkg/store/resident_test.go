package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// openShards lists the shards a reader has open, by name.
func openShards(r *Reader) map[string]bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]bool{}
	for _, ns := range r.nodes {
		for name, sh := range ns.open {
			out[name] = sh.dirs[runIndex(runKey)] != nil
		}
	}
	return out
}

// threeRequestShards writes three Bookinfo requests into a shard each,
// the first moved ago1 and the second ago2 earlier.
func threeRequestShards(t *testing.T, ago1, ago2 time.Duration) (string, []span.Span, *Manifest) {
	t.Helper()
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans := bookinfo(t, 3)
	for i := range spans[:76] {
		ago := int64(ago2)
		if i < 38 {
			ago = int64(ago1)
		}
		spans[i].StartNs -= ago
		spans[i].EndNs -= ago
	}
	for _, part := range [][]span.Span{spans[:38], spans[38:76], spans[76:]} {
		if err := w.Write(part...); err != nil {
			t.Fatal(err)
		}
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := readManifest(filepath.Join(dir, "node-a"))
	if err != nil || len(m.Shards) != 3 {
		t.Fatalf("want 3 shards: %v %+v", err, m)
	}
	return dir, spans, m
}

// TestResidentShards: a reader with Resident opens the shards of the last
// Resident of span time, with their directories read, before any query,
// and leaves older ones to the first query that needs them; the answers
// are those of a reader without it.
func TestResidentShards(t *testing.T) {
	// The first request half an hour earlier.
	dir, spans, m := threeRequestShards(t, 30*time.Minute, 0)
	r, err := OpenReaderWith(ReaderOptions{Resident: 5 * time.Minute, BlockCacheBytes: 1 << 20}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := r.Warm(context.Background()); n != 2 { // the loop may have opened them already
		t.Fatalf("%d shards resident, want 2", n)
	}
	got := openShards(r)
	if len(got) != 2 || !got[m.Shards[1].Name] || !got[m.Shards[2].Name] {
		t.Fatalf("open shards (name → directory read) %v, want the two recent ones, directories read", got)
	}
	found, err := lookupAll(r, spans)
	if err != nil || len(found) != len(spans) {
		t.Fatalf("lookup found %d of %d spans: %v", len(found), len(spans), err)
	}
	if got := openShards(r); len(got) != 3 {
		t.Fatalf("the query did not open the old shard: %v", got)
	}
	r.Close()
	select {
	case <-r.stop:
	default:
		t.Fatal("Close left the resident loop running")
	}
}

// TestResidentDamagedShard: a resident shard that fails its checksums is
// refused by the warm-up without taking the reader down, and queries
// answer from the other shard with the damaged one's ShardError.
func TestResidentDamagedShard(t *testing.T) {
	dir, spans, m := twoSealedShards(t)
	bad := damageShard(t, dir, m, batchKey(0), []byte("not a batch"))
	// Break the file behind the recorded checksums too: verification
	// refuses the shard before Badger sees it.
	m.Shards[0].Files[0].Size++
	if err := writeManifest(filepath.Join(dir, "node-a"), m); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReaderWith(ReaderOptions{Resident: time.Hour}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Warm(context.Background())
	if got := openShards(r); len(got) != 1 {
		t.Fatalf("open shards %v, want only the undamaged one", got)
	}
	found, err := lookupAll(r, spans)
	var se *ShardError
	if !errors.As(err, &se) || se.Shard != bad {
		t.Fatalf("want the damaged shard's error, got %v", err)
	}
	if len(found) != len(spans)-38 {
		t.Fatalf("found %d spans, want the %d of the other shard", len(found), len(spans)-38)
	}
}

// TestGetOpensOnlyShardsHoldingTheID: each shard's manifest entry records
// the ranges of its span ids, per id prefix (a collector's), merges join
// them, and Get by id opens only the shards whose ranges hold the id.
func TestGetOpensOnlyShardsHoldingTheID(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans := bookinfo(t, 3) // two nodes: two id prefixes
	for _, part := range [][]span.Span{spans[:38], spans[38:76], spans[76:]} {
		w.Write(part...)
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	m := w.Manifest()
	for _, e := range m.Shards {
		if len(e.SpanIDs) != 2 {
			t.Fatalf("shard %s: span id ranges %v, want one per node", e.Name, e.SpanIDs)
		}
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	got, err := r.Get(ctx, 0, 0, []uint64{spans[40].SpanID})
	if err != nil || len(got) != 1 || got[0].SpanID != spans[40].SpanID {
		t.Fatalf("Get found %v: %v", got, err)
	}
	if open := openShards(r); len(open) != 1 || !hasKey(open, m.Shards[1].Name) {
		t.Fatalf("Get opened %v, want only %s", open, m.Shards[1].Name)
	}
	if got, err := r.Get(ctx, 0, 0, []uint64{1}); err != nil || len(got) != 0 || len(openShards(r)) != 1 {
		t.Fatalf("Get of an id no shard holds: %v %v, opened %v", got, err, openShards(r))
	}

	// The merge's ranges join its sources'; every span is found by id.
	w.opt.Now = func() time.Time { return t0.Add(time.Hour) }
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m = w.Manifest()
	if len(m.Shards) != 1 || !m.Shards[0].Merged || len(m.Shards[0].SpanIDs) != 2 {
		t.Fatalf("want one merged shard with two id ranges: %+v", m.Shards)
	}
	var ids []uint64
	for _, s := range spans {
		ids = append(ids, s.SpanID)
		if !m.Shards[0].mayHoldID(s.SpanID) {
			t.Fatalf("merged ranges %v miss span id %d", m.Shards[0].SpanIDs, s.SpanID)
		}
	}
	r2, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if got, err := r2.Get(ctx, 0, 0, ids); err != nil || len(got) != len(spans) {
		t.Fatalf("Get found %d of %d spans: %v", len(got), len(spans), err)
	}
}

func TestAddID(t *testing.T) {
	var rs []IDRange
	rs = addID(rs, IDRange{1<<48 | 5, 1<<48 | 5})
	rs = addID(rs, IDRange{1<<48 | 2, 1<<48 | 9})
	rs = addID(rs, IDRange{2<<48 | 7, 2<<48 | 7})
	if !slices.Equal(rs, []IDRange{{1<<48 | 2, 1<<48 | 9}, {2<<48 | 7, 2<<48 | 7}}) {
		t.Fatalf("ranges %v", rs)
	}
	for p := uint64(3); p < 2+maxIDRanges; p++ { // the 17th prefix
		rs = addID(rs, IDRange{p << 48, p << 48})
	}
	if !slices.Equal(rs, []IDRange{{1<<48 | 2, (1 + maxIDRanges) << 48}}) {
		t.Fatalf("beyond %d prefixes, want one joined range: %v", maxIDRanges, rs)
	}
	m, err := ParseManifest([]byte(`{"version":1,"shards":[{"name":"h-1","span_ids":["0001000000000002-0011000000000000"]}]}`))
	if err != nil || !slices.Equal(m.Shards[0].SpanIDs, rs) {
		t.Fatalf("parsed %v, want %v: %v", m, rs, err)
	}
	if b, _ := json.Marshal(m.Shards[0].SpanIDs); string(b) != `["0001000000000002-0011000000000000"]` {
		t.Fatalf("encoded as %s", b)
	}
	e := ShardEntry{SpanIDs: rs}
	if !e.mayHoldID(5<<48|77) || e.mayHoldID(1) || !(&ShardEntry{}).mayHoldID(1) {
		t.Fatal("mayHoldID")
	}
	for name, js := range map[string]string{
		"inverted":  `{"version":1,"shards":[{"name":"h-1","span_ids":["0000000000000005-0000000000000004"]}]}`,
		"too many":  `{"version":1,"shards":[{"name":"h-1","span_ids":[` + strings.Repeat(`"0000000000000001-0000000000000002",`, maxIDRanges) + `"0000000000000001-0000000000000002"]}]}`,
		"numbers":   `{"version":1,"shards":[{"name":"h-1","span_ids":[[1,2]]}]}`,
		"short":     `{"version":1,"shards":[{"name":"h-1","span_ids":["1-2"]}]}`,
		"not hex":   `{"version":1,"shards":[{"name":"h-1","span_ids":["000000000000000g-0000000000000002"]}]}`,
		"signed":    `{"version":1,"shards":[{"name":"h-1","span_ids":["+000000000000001-0000000000000002"]}]}`,
		"separator": `{"version":1,"shards":[{"name":"h-1","span_ids":["0000000000000001+0000000000000002"]}]}`,
	} {
		if _, err := ParseManifest([]byte(js)); err == nil {
			t.Errorf("%s: manifest accepted", name)
		}
	}
}

func hasKey[V any](m map[string]V, k string) bool { _, ok := m[k]; return ok }

// TestVerifyAhead: with Resident, the shards older than the resident ones
// are verified against their checksums in the background without being
// opened, newest first and within VerifyAheadBytes; a damaged one is
// refused then, as a query would refuse it, and the others answer.
func TestVerifyAhead(t *testing.T) {
	// Two requests 40 and 30 minutes earlier.
	dir, spans, m := threeRequestShards(t, 40*time.Minute, 30*time.Minute)
	node := filepath.Join(dir, "node-a")
	size := func(e ShardEntry) (n int64) {
		for _, f := range e.Files {
			n += f.Size
		}
		return n
	}
	// verified says which shards the reader knows to match their checksums.
	verified := func(r *Reader) []bool {
		var out []bool
		for _, e := range m.Shards {
			out = append(out, r.opener.known(filepath.Join(node, e.Name), e.Files))
		}
		return out
	}
	for _, c := range []struct {
		budget int64
		want   []bool // shards oldest first
	}{
		{0, []bool{true, true, true}}, // the default, 1 GiB
		{-1, []bool{false, false, true}},
		{size(m.Shards[1]), []bool{false, true, true}}, // the newer of the two old ones
	} {
		r, err := OpenReaderWith(ReaderOptions{Resident: 5 * time.Minute, VerifyAheadBytes: c.budget}, dir)
		if err != nil {
			t.Fatal(err)
		}
		if n := r.Warm(context.Background()); n != 1 {
			t.Fatalf("budget %d: %d shards resident, want 1", c.budget, n)
		}
		if got := openShards(r); len(got) != 1 || !hasKey(got, m.Shards[2].Name) {
			t.Fatalf("budget %d: open shards %v, want only the recent one", c.budget, got)
		}
		if got := verified(r); !slices.Equal(got, c.want) {
			t.Fatalf("budget %d: verified %v, want %v", c.budget, got, c.want)
		}
		found, err := lookupAll(r, spans)
		if err != nil || len(found) != len(spans) {
			t.Fatalf("budget %d: lookup found %d of %d spans: %v", c.budget, len(found), len(spans), err)
		}
		r.Close()
	}

	// A damaged old shard: refused by the verification ahead, before any
	// query; the others answer, with its error.
	m.Shards[0].Files[0].Size++
	if err := writeManifest(node, m); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReaderWith(ReaderOptions{Resident: 5 * time.Minute}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Warm(context.Background())
	r.mu.RLock()
	failed := r.nodes[node].failed[m.Shards[0].Name]
	r.mu.RUnlock()
	var ve *verifyError
	if !errors.As(failed, &ve) {
		t.Fatalf("the damaged old shard is not refused by its checksums: %v", failed)
	}
	if got := verified(r); !slices.Equal(got, []bool{false, true, true}) {
		t.Fatalf("verified %v, want the two undamaged shards", got)
	}
	found, err := lookupAll(r, spans)
	var se *ShardError
	if !errors.As(err, &se) || se.Shard != filepath.Join(node, m.Shards[0].Name) || len(found) != len(spans)-38 {
		t.Fatalf("found %d spans (want %d) with error %v, want the damaged shard's", len(found), len(spans)-38, err)
	}
}
