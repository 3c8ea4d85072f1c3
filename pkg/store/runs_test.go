package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// blockSourceOf encodes sorted key records as a merged shard's blocks of cut
// records, as a merge finds a source's run.
func blockSourceOf(recs []byte, cut int, off uint32, batches int64) *blockSource {
	const w = keyRecLen
	b := &blockSource{run: runKey, off: off, batches: batches}
	for i := 0; i < len(recs); i += cut * w {
		b.blocks = append(b.blocks, encodeBlock(runKey, recs[i:min(len(recs), i+cut*w)]))
	}
	return b
}

// TestMergeBlockSources: a merge's sources given as encoded blocks, decoded
// one at a time into reused memory, merge into exactly the records sorted
// (the sources' records written down here, batch numbers moved by each
// source's offset), whatever the blocks' sizes and the merged blocks'
// cut, with ties inside and across sources; mixed with sources in memory;
// and merged twice alike (a seal that waited for room encodes its index
// again). A source whose blocks are sorted one by one but not across a
// boundary is reported unsorted and all its records are still found; a
// block that does not decode and a record pointing past its source's
// batches are errors.
func TestMergeBlockSources(t *testing.T) {
	const w = keyRecLen
	bo := batchOffset(runKey)
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, nsrc := range []int{1, 2, 5, 30} {
		for _, blockCut := range []int{1, 7, 256} {
			for _, cut := range []int{1, 5, 256} {
				var segs []segment
				var want []byte
				var off uint32
				for s := 0; s < nsrc; s++ {
					batches := int64(1 + rnd.IntN(4))
					n := rnd.IntN(300)
					recs := make([]byte, n*w)
					for i := range recs {
						recs[i] = byte(rnd.IntN(3)) // many ties
					}
					for i := 0; i < n; i++ {
						binary.BigEndian.PutUint32(recs[i*w+bo:], uint32(rnd.Int64N(batches)))
					}
					sortRecords(recs, w)
					moved := bytes.Clone(recs)
					for i := 0; i < n; i++ {
						p := moved[i*w+bo:]
						binary.BigEndian.PutUint32(p, binary.BigEndian.Uint32(p)+off)
					}
					want = append(want, moved...)
					if s%3 == 2 { // a layout-1 source: its records in memory, already moved
						segs = append(segs, segment{recs: moved})
					} else if n > 0 {
						segs = append(segs, segment{src: blockSourceOf(recs, blockCut, off, batches)})
					}
					off += uint32(batches)
				}
				sortRecords(want, w)
				for round := 0; round < 2; round++ {
					var got []byte
					var sizes []int
					_, ok, err := mergeSegments(segs, w, cut, nil, func(blk []byte) {
						got = append(got, blk...)
						sizes = append(sizes, len(blk)/w)
					})
					if err != nil || !ok || !bytes.Equal(got, want) {
						t.Fatalf("%d sources, blocks of %d, cut %d, round %d: merged %d records differ from the %d sorted (ok %v, err %v)",
							nsrc, blockCut, cut, round, len(got)/w, len(want)/w, ok, err)
					}
					for i, n := range sizes {
						if n != cut && (i != len(sizes)-1 || n > cut || n == 0) {
							t.Fatalf("%d sources, blocks of %d, cut %d: block %d of %d holds %d records", nsrc, blockCut, cut, i, len(sizes), n)
						}
					}
				}
			}
		}
	}

	// Sorted within each block, not across them: unsorted, every record kept.
	hi, lo := bytes.Repeat([]byte{0}, w), bytes.Repeat([]byte{0}, w)
	hi[0] = 2
	lo[0] = 1
	src := &blockSource{run: runKey, blocks: [][]byte{encodeBlock(runKey, hi), encodeBlock(runKey, lo)}, batches: 1}
	other := blockSourceOf(append(bytes.Clone(lo), hi...), 1, 0, 1)
	segs := []segment{{src: other}, {src: src}}
	if _, ok, err := mergeSegments(segs, w, 256, nil, func([]byte) {}); ok || err != nil {
		t.Fatalf("a source unsorted across its blocks was merged (ok %v, err %v)", ok, err)
	}
	all, err := segs[1].all()
	if err != nil || !bytes.Equal(all, append(bytes.Clone(hi), lo...)) {
		t.Fatalf("the unsorted source's records: %x, %v", all, err)
	}

	// A block cut short, a record of a batch the source does not have.
	good := encodeBlock(runKey, lo)
	for _, c := range []struct {
		name    string
		src     *blockSource
		message string
	}{
		{"truncated block", &blockSource{run: runKey, blocks: [][]byte{good, good[:len(good)-2]}, batches: 1}, "index block 'K' 1"},
		{"batch past the source's", &blockSource{run: runKey, blocks: [][]byte{encodeBlock(runKey, lo)}, batches: 0}, "record of batch 0 in a shard of 0 batches"},
	} {
		_, _, err := mergeSegments([]segment{{src: other}, {src: c.src}}, w, 256, nil, func([]byte) {})
		if !errors.Is(err, errBlock) || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: err %v, want errBlock saying %q", c.name, err, c.message)
		}
	}
}

// TestBatchRecordsSorted: each run's segment of a batch holds exactly the
// records of its spans, in the order comparing their bytes gives, for
// spans out of start order with equal start times, equal key values
// across spans and kinds, negative start times (the records store them
// unsigned) and a row order that ties break on.
func TestBatchRecordsSorted(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	base := bookinfo(t, 60)
	for _, n := range []int{0, 1, 2, 3, 100, len(base)} {
		spans := slices.Clone(base[:n])
		rnd.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
		for i := range spans {
			s := &spans[i]
			switch rnd.IntN(6) {
			case 0: // the start of another span
				s.StartNs = spans[rnd.IntN(len(spans))].StartNs
			case 1:
				s.StartNs = -s.StartNs
			case 2: // values shared with other spans and kinds
				s.ReqTCPSeq, s.RespTCPSeq, s.SyscallTraceIDReq = 7, 7, 7
			case 3:
				s.SpanID = spans[0].SpanID
			}
			if rnd.IntN(4) == 0 {
				s.StartNs = spans[0].StartNs // many ties
			}
		}
		var x indexer
		got := x.batchRecords(spans, 3)
		for i, run := range runs {
			w := recLen(run)
			var recs [3][]byte
			for row := range spans {
				x.appendRecords(&recs, &spans[row], ref{spans[row].StartNs, 3, uint32(row)})
			}
			var want [][]byte
			for off := 0; off < len(recs[i]); off += w {
				want = append(want, recs[i][off:off+w])
			}
			slices.SortStableFunc(want, bytes.Compare)
			if !bytes.Equal(got[i], bytes.Join(want, nil)) {
				t.Fatalf("%d spans, run %q: the segment is not its records in byte order", n, run)
			}
		}
	}
}

// TestBatchValuesEachOnce: a batch lists each (namespace, service,
// endpoint, protocol) value of its spans once, in order of first
// appearance, and its meta counts every span, whether a span's value
// equals the span's before it (the same strings or equal copies), comes
// back after others, or was listed by an earlier batch.
func TestBatchValuesEachOnce(t *testing.T) {
	mk := func(ns, svc, ep string) span.Span {
		return span.Span{Namespace: ns, Service: svc, Endpoint: ep, L7Protocol: span.L7HTTP1, StartNs: 1}
	}
	copyOf := func(s string) string { return string([]byte(s)) }
	a, b, c := mk("ns", "a", "/x"), mk("ns", "b", "/x"), mk("ns", "a", "/y")
	a2 := mk(copyOf("ns"), copyOf("a"), copyOf("/x"))
	grpc := a
	grpc.L7Protocol = span.L7GRPC
	w := &shardWriter{meta: shardMeta{Layout: layoutBlocks}, seen: map[valueEntry]bool{}, seenWorkload: map[[2]string]bool{}, head: true}
	enc := newBatchEncoder()
	ve := func(s span.Span) valueEntry { return valueEntry{s.Namespace, s.Service, s.Endpoint, s.L7Protocol} }
	for _, tc := range []struct {
		spans []span.Span
		want  []valueEntry
	}{
		{[]span.Span{a, a, a2, b, b, a, c, grpc, grpc, a}, []valueEntry{ve(a), ve(b), ve(c), ve(grpc)}},
		{[]span.Span{c}, []valueEntry{ve(c)}}, // w.seen is only the committed batches'
		{[]span.Span{b, a, b, a}, []valueEntry{ve(b), ve(a)}},
		{[]span.Span{{StartNs: 1}, {StartNs: 2}}, []valueEntry{{}}}, // no value at all is one too
	} {
		sws, err := w.prepare(tc.spans, enc)
		if err != nil || len(sws) != 1 {
			t.Fatalf("prepare: %d writes, %v", len(sws), err)
		}
		if !slices.Equal(sws[0].vals, tc.want) || sws[0].meta.Spans != int64(len(tc.spans)) {
			t.Fatalf("values %v, %d spans in the meta; want %v, %d", sws[0].vals, sws[0].meta.Spans, tc.want, len(tc.spans))
		}
	}
}

// TestRadixStable: the records' radix sort orders keys by their 12 bytes
// (a, b's high half) as a stable comparison sort does (ties in input
// order), for keys that differ only in a's low or high bytes or only in
// b's, share long prefixes (one value many records hold), tie by the
// thousand, fill buckets just over and under what is sorted by insertion,
// or are all equal; on 12 bytes and fewer (the bytes after zero, as
// sortInto masks them).
func TestRadixStable(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	gens := map[string]func(i int) (uint64, uint32){
		"random":        func(int) (uint64, uint32) { return rnd.Uint64(), rnd.Uint32() },
		"few values":    func(int) (uint64, uint32) { return uint64(rnd.IntN(5)) << 40, uint32(rnd.IntN(3)) },
		"only b":        func(int) (uint64, uint32) { return 7, rnd.Uint32() },
		"only a's high": func(int) (uint64, uint32) { return uint64(rnd.IntN(256)) << 56, 0 },
		"only a's low":  func(int) (uint64, uint32) { return 0xabcd<<48 | uint64(rnd.IntN(256)), 0 },
		"b's low byte":  func(int) (uint64, uint32) { return 1, uint32(rnd.IntN(64)) },
		"b's high byte": func(int) (uint64, uint32) { return 1, uint32(rnd.IntN(256)) << 24 },
		"all equal":     func(int) (uint64, uint32) { return 3, 4 },
		"descending":    func(i int) (uint64, uint32) { return uint64(1e6 - i), 0 },
		"buckets of 33": func(i int) (uint64, uint32) { return uint64(i%3) << 32, uint32(i % 11) },
		"kind and hash": func(int) (uint64, uint32) {
			return uint64(rnd.IntN(6))<<56 | rnd.Uint64()>>8, rnd.Uint32() & (0xff << 24)
		},
	}
	for name, gen := range gens {
		for _, nbytes := range []int{12, 9, 8, 4} {
			for _, n := range []int{0, 1, 2, insertionMax, insertionMax + 1, 99, 5000} {
				mask := [2]uint64{^uint64(0), 0}
				if nbytes < 8 {
					mask = [2]uint64{^uint64(0) << (8 * (8 - nbytes)), 0}
				} else {
					mask[1] = ^uint64(0) << (8 * (16 - nbytes))
				}
				keys := make([]sortKey, n)
				for i := range keys {
					a, b := gen(i)
					keys[i] = sortKey{a & mask[0], uint64(b)<<32&mask[1] | uint64(i)}
				}
				want := slices.Clone(keys)
				slices.SortStableFunc(want, func(x, y sortKey) int {
					if c := cmp.Compare(x.a, y.a); c != 0 {
						return c
					}
					return cmp.Compare(x.b>>32, y.b>>32)
				})
				var s recordSorter
				s.msd(keys, make([]sortKey, n), nbytes)
				if !slices.Equal(keys, want) {
					t.Fatalf("%s, %d keys on %d bytes: not the stable order", name, n, nbytes)
				}
			}
		}
	}
}
