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
