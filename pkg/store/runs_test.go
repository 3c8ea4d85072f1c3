package store

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

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

// TestBatchRecordsReuseReleased: once a sealed head's segments are
// released, the next batches' records take their memory instead of
// allocating (a head holds ~200 bytes of records per span: 128 MB were
// allocated and collected in 8 s of nginx + wrk).
func TestBatchRecordsReuseReleased(t *testing.T) {
	spans := bookinfo(t, 120)[:4096]
	var x indexer
	segs := [3][][]byte{}
	for b := range 4 { // a head of four batches, sealed
		for i, r := range x.batchRecords(spans, uint32(b)) {
			segs[i] = append(segs[i], r)
		}
	}
	x.release(&segs)
	head := [3][][]byte{make([][]byte, 1), make([][]byte, 1), make([][]byte, 1)}
	allocs := testing.AllocsPerRun(4, func() { // a batch of a head, the head sealed
		for i, r := range x.batchRecords(spans, 0) {
			head[i][0] = r
		}
		x.release(&head)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch with released segments to take", allocs)
	}
	var held int
	for i := range x.arena {
		held += x.arena[i].bytes
	}
	if held == 0 || held > 3*arenaMaxBytes {
		t.Fatalf("the arenas hold %d bytes", held)
	}
}

// TestRecArenaBounded: an arena keeps at most arenaMaxBytes of released
// memory and hands out only slices that fit.
func TestRecArenaBounded(t *testing.T) {
	var a recArena
	for range 100 {
		a.put(make([]byte, 0, 1<<20))
	}
	if a.bytes > arenaMaxBytes || len(a.free) != arenaMaxBytes>>20 {
		t.Fatalf("kept %d bytes in %d slices", a.bytes, len(a.free))
	}
	if b := a.take(2 << 20); cap(b) < 2<<20 || len(b) != 2<<20 {
		t.Fatalf("took %d bytes of %d", len(b), cap(b))
	}
	if b := a.take(1000); len(b) != 1000 || cap(b) != 1<<20 || a.bytes != arenaMaxBytes-1<<20 {
		t.Fatalf("took %d bytes of %d; %d left", len(b), cap(b), a.bytes)
	}
}
