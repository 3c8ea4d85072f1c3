package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// withLayout makes the writers of one test write layout l with blocks of
// cut records (0: the default of each run).
func withLayout(t *testing.T, l, cut int) {
	t.Helper()
	pl, pc := writeLayout, blockCut
	writeLayout, blockCut = l, cut
	t.Cleanup(func() { writeLayout, blockCut = pl, pc })
}

// layoutSpans are Bookinfo traces with eBPF process keys, x-request-ids,
// app span ids and a span with every field.
func layoutSpans(t testing.TB) []span.Span {
	spans := bookinfo(t, 12)
	full := fullSpan(0)
	full.StartNs = spans[len(spans)-1].StartNs + 1000
	ebpf := fullSpan(1)
	ebpf.SignalSource, ebpf.TapSide, ebpf.StartNs = span.SourceEBPF, span.TapServerProcess, full.StartNs+1000
	return append(spans, full, ebpf)
}

// TestLayoutsAnswerAlike writes the same spans as layout 1 (one Badger entry
// per index key, as shards of older collectors hold), as layout 2 (record
// blocks; also cut every 3 records, so that every scan crosses block
// boundaries), and as a mix of both merged by copying into one window
// shard; every lookup, span-id get and search must give what the spans
// themselves say.
func TestLayoutsAnswerAlike(t *testing.T) {
	spans := layoutSpans(t)
	for _, tc := range []struct {
		name  string
		merge bool
		parts [][3]int // layout, block cut and block version (0: the writer's) of each sealed part
	}{
		{"layout1", false, [][3]int{{layoutEntries, 0}, {layoutEntries, 0}}},
		{"layout2", false, [][3]int{{layoutBlocks, 0}, {layoutBlocks, 0}}},
		{"layout2-small-blocks", false, [][3]int{{layoutBlocks, 3}, {layoutBlocks, 3}, {layoutBlocks, 3}}},
		// Blocks of version 1 (collectors before version 2) beside version 2.
		{"layout2-block-versions", false, [][3]int{{layoutBlocks, 3, blockV1}, {layoutBlocks, 0, blockV1}, {layoutBlocks, 3}}},
		{"merged-from-both", true, [][3]int{{layoutEntries, 0}, {layoutBlocks, 5}, {layoutEntries, 0}}},
		{"merged-from-block-versions", true, [][3]int{{layoutBlocks, 5, blockV1}, {layoutBlocks, 5}, {layoutBlocks, 0, blockV1}}},
		// Merged while new heads are still written as layout 1: the merge
		// writes layout 2 all the same.
		{"merged-from-layout1", true, [][3]int{{layoutEntries, 0}, {layoutEntries, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			now := t0.Add(10 * time.Minute)
			w := openTestWriter(t, dir, func(o *WriterOptions) {
				o.BatchRows = 40
				o.Now = func() time.Time { return now }
			})
			per := len(spans)/len(tc.parts) + 1
			for i, p := range tc.parts {
				withLayout(t, p[0], p[1])
				blockVersion = blockV2
				if p[2] != 0 {
					blockVersion = byte(p[2])
				}
				t.Cleanup(func() { blockVersion = blockV2 })
				if err := w.Write(spans[i*per : min(len(spans), (i+1)*per)]...); err != nil {
					t.Fatal(err)
				}
				if err := w.Seal(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name != "merged-from-layout1" {
				withLayout(t, layoutBlocks, 7)
			}
			blockVersion = blockV2
			if tc.merge {
				if err := w.Maintain(); err != nil {
					t.Fatal(err)
				}
				m := w.Manifest()
				if len(m.Shards) != 1 || !m.Shards[0].Merged || len(m.Shards[0].Sources) != len(tc.parts) {
					t.Fatalf("want one merged shard of %d sources, manifest %+v", len(tc.parts), m.Shards)
				}
				sh, err := (&opener{}).open(filepath.Join(dir, "node-a", m.Shards[0].Name), m.Shards[0])
				if err != nil {
					t.Fatal(err)
				}
				if sh.meta.Layout != layoutBlocks || !sh.meta.Indexed {
					t.Fatalf("merged shard meta %+v, want layout 2 with its index", sh.meta)
				}
				sh.close()
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			checkAnswers(t, dir, spans)
		})
	}
}

func idsOfSpans(s []span.Span) []uint64 {
	out := make([]uint64, len(s))
	for i := range s {
		out[i] = s[i].SpanID
	}
	return out
}

func sortedIDs(s []span.Span) []uint64 {
	ids := idsOfSpans(s)
	slices.Sort(ids)
	return ids
}

func checkAnswers(t *testing.T, dir string, spans []span.Span) {
	t.Helper()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	from, to := t0.Add(-time.Minute).UnixNano(), t0.Add(time.Hour).UnixNano()
	kinds := map[span.KeyKind]int{}
	keysOf := func(s *span.Span) []span.Key { return s.IndexKeys(nil) }
	for i := range spans {
		for _, k := range keysOf(&spans[i]) {
			for _, win := range [][2]int64{{from, to}, {spans[i].StartNs, spans[i].StartNs}, {spans[i].StartNs + 1, to}} {
				var want []span.Span
				for j := range spans {
					if spans[j].StartNs >= win[0] && spans[j].StartNs <= win[1] && slices.Contains(keysOf(&spans[j]), k) {
						want = append(want, spans[j])
					}
				}
				got, err := r.Lookup(ctx, win[0], win[1], []span.Key{k})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(sortedIDs(got), sortedIDs(want)) {
					t.Fatalf("lookup %v %+v in [%d, %d]: got %v, want %v", k.Kind, k, win[0], win[1], sortedIDs(got), sortedIDs(want))
				}
			}
			kinds[k.Kind]++
		}
	}
	for k := span.KeyReqTCPSeq; k <= span.KeyProcess; k++ {
		if kinds[k] == 0 {
			t.Errorf("no lookup exercised key kind %v", k)
		}
	}
	got, err := r.Get(ctx, 0, 0, append(idsOfSpans(spans), 1<<62))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sortedIDs(got), sortedIDs(spans)) {
		t.Fatalf("get: %d spans, want %d", len(got), len(spans))
	}
	// Search: newest first, by namespace or all.
	for _, ns := range []string{"bookinfo", ""} {
		var want []span.Span
		for _, s := range spans {
			if ns == "" || s.Namespace == ns {
				want = append(want, s)
			}
		}
		sort.SliceStable(want, func(i, j int) bool {
			if want[i].StartNs != want[j].StartNs {
				return want[i].StartNs > want[j].StartNs
			}
			return want[i].SpanID > want[j].SpanID
		})
		got, err := r.Search(ctx, SearchQuery{Namespace: ns, Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(idsOfSpans(got), idsOfSpans(want)) {
			t.Fatalf("search %q: got %d spans %v, want %d", ns, len(got), idsOfSpans(got)[:min(5, len(got))], len(want))
		}
		got, err = r.Search(ctx, SearchQuery{Namespace: ns, Limit: 7})
		if err != nil || len(got) != 7 {
			t.Fatalf("search %q limit 7: %d spans, %v", ns, len(got), err)
		}
		for i := range got {
			if got[i].StartNs != want[i].StartNs {
				t.Fatalf("search %q limit 7: span %d starts at %d, want %d", ns, i, got[i].StartNs, want[i].StartNs)
			}
		}
	}
}

// TestUnknownLayoutRefused: a shard whose meta names a layout this reader
// does not know is refused with an error saying so; the other shards answer.
func TestUnknownLayoutRefused(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans := layoutSpans(t)
	withLayout(t, layoutBlocks+1, 0)
	w.Write(spans[:10]...)
	w.Seal()
	withLayout(t, layoutBlocks, 0)
	w.Write(spans[10:]...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, _ := OpenReader(dir)
	defer r.Close()
	got, err := r.Get(context.Background(), 0, 0, idsOfSpans(spans))
	var se *ShardError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "shard index layout 3 is unknown to this reader (it reads layouts 1 and 2)") {
		t.Fatalf("error %v, want a ShardError naming layout 3", err)
	}
	if len(got) != len(spans)-10 {
		t.Fatalf("the other shard gave %d spans, want %d", len(got), len(spans)-10)
	}
}

// TestLayout2WritesFewEntries: a layout 2 shard holds, besides batches,
// values and meta, only its blocks and directories — a handful of Badger
// entries for thousands of index records.
func TestLayout2WritesFewEntries(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans := bookinfo(t, 200) // 7600 spans, 2 batches
	if err := w.Write(spans...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	e := w.Manifest().Shards[0]
	sh, err := (&opener{}).open(dir+"/node-a/"+e.Name, e)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.close()
	count := map[byte]int{}
	var meta shardMeta
	sh.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			count[it.Item().Key()[0]]++
			if it.Item().Key()[0] == pMeta {
				it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &meta) })
			}
		}
		return nil
	})
	var keys int
	for i := range spans {
		keys += len(spans[i].IndexKeys(nil))
	}
	ceil := func(n, d int) int { return (n + d - 1) / d }
	wantBlocks := ceil(keys, cutOf(runKey)) + ceil(len(spans), cutOf(runSpanID)) + ceil(len(spans), cutOf(runSearch))
	if count[pKey]+count[pSpanID]+count[pSearch] != 0 || count[pBlock] != wantBlocks || count[pDir] != 3 || count[pBatch] != 2 {
		t.Fatalf("entries by type %v, want %d blocks for %d keys and %d spans, 3 directories, 2 batches, no per-span entries",
			count, wantBlocks, keys, len(spans))
	}
	if meta.Layout != layoutBlocks || !meta.Indexed {
		t.Fatalf("meta %+v, want layout 2 indexed", meta)
	}
}

// twoKeyRecords are two records of the key run, sorted.
var twoKeyRecords = unhex(`01 00000000 0001e240 18987f06 6d1c0000 00000007 0000002a` + // req_tcp_seq 123456, start, batch 7 row 42
	`07 12345678 80000001 18987f06 6d1c0001 00000000 00000003`) // process (node hash, server bit, pid 1), batch 0 row 3

// Annotated bytes of index blocks and directories, and each checked field
// broken.
func TestIndexBlockBytes(t *testing.T) {
	good := encodeBlock(runKey, twoKeyRecords)
	if hdr := unhex(`02 4b 00000002`); !bytes.Equal(good[:blockHeader], hdr) { // version 2, run 'K', 2 records
		t.Fatalf("block header %x, want %x", good[:blockHeader], hdr)
	}
	recs, err := parseBlock(runKey, good)
	if err != nil || !bytes.Equal(recs, twoKeyRecords) {
		t.Fatalf("parseBlock: %v %x", err, recs)
	}
	dir := unhex(`01 4b 00000002 0000000000000e00` + // version 1, run 'K', 2 blocks, 3584 records
		`01 0000000000000001 0000000000000000 00000000 00000000` + // first record of block 0
		`05 0000000000000001 0000000000000000 00000000 00000000`) // of block 1
	d, err := parseDir(runKey, dir)
	if err != nil || d.blocks() != 2 || d.records != 3584 || d.firstOf(1)[0] != 5 || !bytes.Equal(encodeDir(runKey, 3584, d.first), dir) {
		t.Fatalf("parseDir: %v %+v", err, d)
	}
	unsorted := append(append([]byte(nil), twoKeyRecords[keyRecLen:]...), twoKeyRecords[:keyRecLen]...)
	withHeader := func(h string, rest []byte) []byte { return append(unhex(h), rest...) }
	frame := good[blockHeader:]
	bigFrame := encodeBlock(runKey, bytes.Repeat(twoKeyRecords, 8))[blockHeader:] // 16 records, declares 400 bytes
	for name, c := range map[string]struct {
		run byte
		b   []byte
	}{
		"empty":                {runKey, nil},
		"short header":         {runKey, good[:5]},
		"version 3":            {runKey, withHeader(`03 4b 00000002`, frame)},
		"version 0":            {runKey, withHeader(`00 4b 00000002`, frame)},
		"run of another block": {runSpanID, good},
		"unknown run":          {'Z', good},
		"zero records":         {runKey, withHeader(`02 4b 00000000`, frame)},
		"beyond 2048 records":  {runKey, withHeader(`02 4b 00000801`, frame)},
		"count above frame":    {runKey, withHeader(`02 4b 00000003`, frame)},
		"count below frame":    {runKey, withHeader(`02 4b 00000001`, frame)},
		"frame size differs":   {runKey, withHeader(`02 4b 00000002`, bigFrame)},
		"truncated frame":      {runKey, good[:len(good)-3]},
		"not zstd":             {runKey, withHeader(`02 4b 00000002`, []byte("not a zstd frame at all"))},
		"unsorted records":     {runKey, encodeBlock(runKey, unsorted)},
		// Frames too small to declare their size, holding more than one
		// record: the decoder's output may reach decodeSlack bytes past
		// the records, never into a block.
		"frame a byte over":          {runKey, withHeader(`02 4b 00000001`, sizelessFrame(t, keyRecLen+1))},
		"frame the slack over":       {runKey, withHeader(`02 4b 00000001`, sizelessFrame(t, keyRecLen+decodeSlack))},
		"frame past the slack":       {runKey, withHeader(`02 4b 00000001`, sizelessFrame(t, keyRecLen+decodeSlack+1))},
		"frame short of the records": {runKey, withHeader(`02 4b 00000002`, sizelessFrame(t, 2*keyRecLen-1))},
	} {
		if _, err := parseBlock(c.run, c.b); !errors.Is(err, errBlock) {
			t.Errorf("block %s: error %v, want errBlock", name, err)
		}
	}
	for name, c := range map[string]struct {
		run byte
		b   []byte
	}{
		"short":            {runKey, dir[:13]},
		"version 2":        {runKey, append([]byte{2}, dir[1:]...)},
		"other run":        {runSearch, dir},
		"one byte extra":   {runKey, append(append([]byte(nil), dir...), 0)},
		"one byte less":    {runKey, dir[:len(dir)-1]},
		"too many blocks":  {runKey, withHeader(`01 4b 00100001 0000000000000e00`, nil)},
		"fewer records":    {runKey, withHeader(`01 4b 00000002 0000000000000001`, dir[dirHeader:])},
		"too many records": {runKey, withHeader(`01 4b 00000002 0000000000001001`, dir[dirHeader:])},
		"unsorted blocks":  {runKey, encodeDir(runKey, 2, unsorted)},
	} {
		if _, err := parseDir(c.run, c.b); !errors.Is(err, errBlock) {
			t.Errorf("directory %s: error %v, want errBlock", name, err)
		}
	}
}

// sizelessFrame is a zstd frame of n bytes that declares no content size.
func sizelessFrame(t *testing.T, n int) []byte {
	enc, _ := blockCodec()
	b := enc.EncodeAll(bytes.Repeat([]byte{7}, n), nil)
	var h zstd.Header
	if err := h.Decode(b); err != nil || h.HasFCS {
		t.Fatalf("frame of %d bytes: %v, declares its size: %v", n, err, h.HasFCS)
	}
	return b
}

func FuzzIndexBlock(f *testing.F) {
	f.Add(encodeBlock(runKey, twoKeyRecords))
	f.Add(encodeBlock(runKey, bytes.Repeat(twoKeyRecords[:keyRecLen], 300)))
	f.Add(encodeBlock(runSpanID, make([]byte, spanIDRecLen*3)))
	f.Add(encodeBlock(runSearch, make([]byte, searchRecLen)))
	f.Add(encodeDir(runKey, 3, twoKeyRecords))
	// Memory a merge reuses (parseBlockInto), left dirty by a block before.
	col, dst := bytes.Repeat([]byte{0xaa}, 4096), bytes.Repeat([]byte{0x55}, 4096)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, run := range runs {
			recs, err := parseBlock(run, b)
			reused, c, rerr := parseBlockInto(run, b, col, dst)
			if (err == nil) != (rerr == nil) || !bytes.Equal(reused, recs) {
				t.Fatalf("run %q: decoding into reused memory differs (%v, %v)", run, err, rerr)
			}
			if rerr == nil {
				col, dst = c, reused
			}
			if err == nil {
				again, err := parseBlock(run, encodeBlock(run, recs))
				if err != nil || !bytes.Equal(again, recs) {
					t.Fatalf("block of run %q does not round-trip: %v", run, err)
				}
			}
			if d, err := parseDir(run, b); err == nil && !bytes.Equal(encodeDir(run, d.records, d.first), b) {
				t.Fatalf("directory of run %q does not round-trip", run)
			}
		}
	})
}

// BenchmarkParseBlock decodes a full block of the key run (2048 records).
func BenchmarkParseBlock(b *testing.B) {
	var recs []byte
	for _, s := range bookinfo(b, 60) {
		recs = append(recs, corrKey(nil, span.KeyReqTCPSeq, uint64(s.ReqTCPSeq), ref{s.StartNs, 1, 2})[1:]...)
	}
	recs = recs[:blockRecords*keyRecLen]
	sortRecords(recs, keyRecLen)
	blk := encodeBlock(runKey, recs)
	b.SetBytes(int64(len(recs)))
	for b.Loop() {
		if _, err := parseBlock(runKey, blk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blk))/blockRecords, "stored-bytes/record")
}

// TestDamagedIndexNamedOthersAnswer: index blocks and directories written
// wrong into a sealed shard (its checksums re-stamped, as if the collector
// had written them) fail that shard's part of a lookup with an error naming
// it; the other shard answers.
func TestDamagedIndexNamedOthersAnswer(t *testing.T) {
	good := twoKeyRecords[:keyRecLen]
	for name, c := range map[string]struct{ key, val []byte }{
		"block truncated":        {blockKey(runKey, 0), encodeBlock(runKey, good)[:8]},
		"block of the wrong run": {blockKey(runKey, 0), encodeBlock(runSpanID, make([]byte, spanIDRecLen))},
		"directory miscounts":    {dirKey(runKey), encodeDir(runKey, 1<<40, good)},
		"directory cut":          {dirKey(runKey), encodeDir(runKey, 1, good)[:dirHeader+3]},
		"record points away":     {blockKey(runKey, 0), nil}, // below
	} {
		t.Run(name, func(t *testing.T) {
			dir, spans, m := twoSealedShards(t)
			var first []byte
			if c.val == nil {
				// The shard's first key record, moved to batch 7 of a shard
				// of one batch: a well-formed block pointing away.
				first = firstKeyRecord(t, filepath.Join(dir, "node-a", m.Shards[0].Name))
				copy(first[17:], unhex(`00000007`))
				c.val = encodeBlock(runKey, first)
			}
			bad := damageShard(t, dir, m, c.key, c.val)
			if name != "record points away" {
				if err := othersAnswer(t, dir, bad, spans); !errors.Is(err, errBlock) {
					t.Fatalf("want a malformed index block, got %v", err)
				} else {
					t.Logf("error: %v", err)
				}
				return
			}
			if span.KeyKind(first[0]) != span.KeyReqTCPSeq {
				t.Fatalf("first key record %x is not a tcp seq", first)
			}
			r, _ := OpenReader(dir)
			defer r.Close()
			_, err := r.Lookup(context.Background(), 0, 1<<62, []span.Key{{Kind: span.KeyReqTCPSeq, U: binary.BigEndian.Uint64(first[1:])}})
			var se *ShardError
			if !errors.As(err, &se) || se.Shard != bad || !strings.Contains(err.Error(), "batch 7") {
				t.Fatalf("want a ShardError naming %s and batch 7, got %v", bad, err)
			}
			t.Logf("error: %v", err)
		})
	}
}

// damageShard sets key to val in the first shard of m and re-stamps its
// checksums, as if the collector had written it so; it returns the shard.
func damageShard(t *testing.T, dir string, m *Manifest, key, val []byte) string {
	t.Helper()
	bad := filepath.Join(dir, "node-a", m.Shards[0].Name)
	db, err := badger.Open(badgerOptions(bad, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key, val) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if m.Shards[0].Files, err = sumShard(bad); err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(filepath.Join(dir, "node-a"), m); err != nil {
		t.Fatal(err)
	}
	return bad
}

// firstKeyRecord reads the first record of a shard's key run.
func firstKeyRecord(t *testing.T, dir string) []byte {
	t.Helper()
	db, err := badger.Open(badgerOptions(dir, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rec []byte
	err = db.View(func(txn *badger.Txn) error {
		recs, err := readBlock(txn, runKey, 0)
		rec = append([]byte(nil), recs[:keyRecLen]...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestMergeRuns: merging sorted segments gives, block by block, what
// sorting gives; a segment that is not sorted is reported (the writer then
// sorts).
func TestMergeRuns(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	const w = keyRecLen
	for _, segs := range []int{0, 1, 2, 3, 30} {
		for _, cut := range []int{1, 7, 256} {
			var all [][]byte
			var recs []byte
			for s := 0; s < segs; s++ {
				seg := make([]byte, w*rnd.IntN(200))
				for i := range seg {
					seg[i] = byte(rnd.IntN(3)) // many ties
				}
				sortRecords(seg, w)
				all = append(all, seg)
				recs = append(recs, seg...)
			}
			want := append([]byte(nil), recs...)
			sortRecords(want, w)
			var got []byte
			var sizes []int
			_, ok := mergeRuns(all, w, cut, nil, func(blk []byte) {
				got = append(got, blk...)
				sizes = append(sizes, len(blk)/w)
			})
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("%d segments, blocks of %d: merged differs from sorted (ok %v)", segs, cut, ok)
			}
			for i, n := range sizes {
				if n != cut && (i != len(sizes)-1 || n > cut || n == 0) {
					t.Fatalf("%d segments, blocks of %d: block %d of %d holds %d records", segs, cut, i, len(sizes), n)
				}
			}
		}
	}
	unsorted := append(bytes.Repeat([]byte{1}, w), make([]byte, w)...)
	for _, segs := range [][][]byte{{unsorted}, {make([]byte, w), unsorted}} {
		if _, ok := mergeRuns(segs, w, 256, nil, func([]byte) {}); ok {
			t.Fatal("an unsorted segment was merged")
		}
	}
}

// TestSortRecords: the radix sort orders records as comparing their bytes
// does, with ties in the leading 16 bytes, bytes every record shares and
// every width of the three runs.
func TestSortRecords(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, run := range runs {
		w := recLen(run)
		for _, n := range []int{0, 1, 2, 3, 100, 5000} {
			recs := make([]byte, n*w)
			for i := range recs {
				switch j := i % w; {
				case j == 0 || j == 9: // shared bytes
					recs[i] = 7
				case j < 16:
					recs[i] = byte(rnd.IntN(4)) // ties in the leading 16 bytes
				default:
					recs[i] = byte(rnd.IntN(256))
				}
			}
			want := make([][]byte, n)
			for i := range want {
				want[i] = recs[i*w : (i+1)*w : (i+1)*w]
			}
			want = slices.Clone(want)
			for i := range want {
				want[i] = slices.Clone(want[i])
			}
			slices.SortFunc(want, bytes.Compare)
			sortRecords(recs, w)
			if !bytes.Equal(recs, bytes.Join(want, nil)) {
				t.Fatalf("run %q, %d records: not in byte order", run, n)
			}
		}
	}
}

// BenchmarkSortRecords sorts the key records of 15,200 Bookinfo spans, a
// head shard's worth (2 s at 200 requests/s).
func BenchmarkSortRecords(b *testing.B) {
	spans := bookinfo(b, 400)
	var recs [3][]byte
	var x indexer
	for i := range spans {
		x.appendRecords(&recs, &spans[i], ref{spans[i].StartNs, uint32(i / 4096), uint32(i % 4096)})
	}
	work := make([]byte, len(recs[0]))
	b.SetBytes(int64(len(work)))
	for i := 0; i < b.N; i++ {
		copy(work, recs[0])
		sortRecords(work, keyRecLen)
	}
}

// TestHashStringIsFNV1a: index values of strings stay FNV-1a 64, as
// hash/fnv computes it, so shards written before and after read alike.
func TestHashStringIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "bookinfo", "reviews-v2", "GET /reviews/{id}", "\xff\x00é"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got := hashString(s); got != h.Sum64() {
			t.Errorf("hashString(%q) = %x, FNV-1a 64 %x", s, got, h.Sum64())
		}
	}
}

// TestMergeRecordsGrowLinearly: copying many sources into a merge holds
// their index blocks as stored, each in exactly as much memory (a bug once
// doubled the record slice for every source: 2^sources), not decoded.
func TestMergeRecordsGrowLinearly(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans := bookinfo(t, 24)
	for i := 0; i < len(spans); i += 38 {
		w.Write(spans[i : i+38]...)
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	m := w.Manifest()
	mw, err := openShardWriter(filepath.Join(t.TempDir(), "merged"), "node-a", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mw.abort()
	var o opener
	for _, e := range m.Shards {
		sh, err := o.open(filepath.Join(dir, "node-a", e.Name), e)
		if err != nil {
			t.Fatal(err)
		}
		err = mw.copyShard(sh)
		sh.close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, run := range runs {
		var l, c int
		for _, seg := range mw.segs[i] {
			if seg.src == nil {
				t.Fatalf("run %q: a layout-2 source's records are held decoded", run)
			}
			for _, b := range seg.src.blocks {
				l, c = l+len(b), c+cap(b)
			}
		}
		if l == 0 || c != l {
			t.Errorf("run %q: %d bytes of blocks in slices of %d after %d sources", run, l, c, len(m.Shards))
		}
	}
	w.Close()
}
