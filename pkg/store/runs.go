package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// How a shard's index records are built (ADR 0004): each batch's records
// are sorted when the batch is encoded, small enough to stay in the CPU's
// caches, and kept as one sorted segment per run; sealing merges the
// segments into blocks as it goes (mergeRuns), without a sorted copy of
// the whole run. A merge's sources are segments alike (their runs are
// sorted), so a merged shard's index is written the same way.

// indexer builds index records. It keeps what serves batch after batch:
// the last strings it hashed and the sort's memory. Not safe for
// concurrent use.
type indexer struct {
	hashes  [4]strHash // namespace, service, endpoint, workload
	node    strHash    // the node's name, its process keys' hash (nodeHash)
	scratch [3][]byte  // the batch's records while they are added
	sort    recordSorter
}

// strHash remembers the hash of the string last hashed: the spans of a
// batch repeat their namespace, service and endpoint, and those of one
// connection share the very strings (compared without reading them); a
// collector's spans are all of its node.
type strHash struct {
	s  string
	h  uint64
	ok bool
}

func (c *strHash) hash(s string) uint64 { return c.of(s, hashString) }

// of returns f(s), kept from the last call when s is the same string.
func (c *strHash) of(s string, f func(string) uint64) uint64 {
	if !c.ok || s != c.s {
		c.s, c.h, c.ok = s, f(s), true
	}
	return c.h
}

// nodeHash is the node name's part of its process keys (span.NodeHash):
// it was hashed byte by byte for every span.
func nodeHash(node string) uint64 { return uint64(span.NodeHash(node)) }

// appendRecords adds the index records of span s at r to recs (in runs
// order). The key records are s.IndexKeys' keys in their order, each with
// keyValue's value, written from the span's fields without the slice of
// keys (TestAppendRecordsAsIndexKeys).
func (x *indexer) appendRecords(recs *[3][]byte, s *span.Span, r ref) {
	if s.ReqTCPSeq != 0 {
		putKeyRec(&recs[0], span.KeyReqTCPSeq, uint64(s.ReqTCPSeq), r)
	}
	if s.RespTCPSeq != 0 {
		putKeyRec(&recs[0], span.KeyRespTCPSeq, uint64(s.RespTCPSeq), r)
	}
	if s.SyscallTraceIDReq != 0 {
		putKeyRec(&recs[0], span.KeySyscallTraceID, s.SyscallTraceIDReq, r)
	}
	if s.SyscallTraceIDResp != 0 && s.SyscallTraceIDResp != s.SyscallTraceIDReq {
		putKeyRec(&recs[0], span.KeySyscallTraceID, s.SyscallTraceIDResp, r)
	}
	if s.XRequestIDReq != "" {
		putKeyRec(&recs[0], span.KeyXRequestID, hashString(s.XRequestIDReq), r)
	}
	if s.XRequestIDResp != "" && s.XRequestIDResp != s.XRequestIDReq {
		putKeyRec(&recs[0], span.KeyXRequestID, hashString(s.XRequestIDResp), r)
	}
	if !s.TraceID.IsZero() {
		putKeyRec(&recs[0], span.KeyTraceID, traceIDValue(&s.TraceID), r)
	}
	if s.AppSpanID != 0 {
		putKeyRec(&recs[0], span.KeyAppSpanID, s.AppSpanID, r)
	}
	if s.ParentSpanID != 0 && s.ParentSpanID != s.AppSpanID {
		putKeyRec(&recs[0], span.KeyAppSpanID, s.ParentSpanID, r)
	}
	if s.SignalSource == span.SourceEBPF && s.PID != 0 {
		putKeyRec(&recs[0], span.KeyProcess, span.ProcessValue(uint32(x.node.of(s.Node, nodeHash)), s.PID, s.TapSide == span.TapServerProcess), r)
	}
	be := binary.BigEndian
	b := grow(&recs[1], spanIDRecLen)
	be.PutUint64(b, s.SpanID)
	putRef(b[8:], r)
	sf := searchFields{service: x.hashes[1].hash(s.Service), endpoint: x.hashes[2].hash(s.Endpoint), protocol: s.L7Protocol,
		status: s.ResponseStatus, tap: s.TapSide, duration: int64(s.Duration())}
	if s.Workload != "" {
		sf.workload = x.hashes[3].hash(s.Workload)
	}
	b = grow(&recs[2], searchRecLen)
	be.PutUint64(b, x.hashes[0].hash(s.Namespace))
	putRef(b[8:], r)
	sf.put(b[8+refLen : 8+refLen])
}

// putKeyRec adds one key record: kind, value, then r.
func putKeyRec(rec *[]byte, kind span.KeyKind, v uint64, r ref) {
	b := grow(rec, keyRecLen)
	b[0] = byte(kind)
	binary.BigEndian.PutUint64(b[1:], v)
	putRef(b[9:], r)
}

// grow extends *b by n bytes and returns them.
func grow(b *[]byte, n int) []byte {
	l := len(*b)
	*b = slices.Grow(*b, n)[:l+n]
	return (*b)[l:]
}

// batchRecords returns the records of spans, rows of batch, as one sorted
// segment per run, each in a slice of its own size, sorted into it.
//
// The spans' records are made in order of start time (and row), so the
// records of each run are already in order of the bytes after their
// leading value (start, batch, row): a stable sort of the leading 8 bytes
// (9 for a key record: kind and value) orders them entirely, without
// passes over the start times' bytes and without comparing ties.
func (x *indexer) batchRecords(spans []span.Span, batch uint32) [3][]byte {
	for i := range x.scratch {
		x.scratch[i] = x.scratch[i][:0]
	}
	for _, i := range x.sort.byStart(spans) {
		x.appendRecords(&x.scratch, &spans[i], ref{spans[i].StartNs, batch, i})
	}
	var out [3][]byte
	for i, run := range runs {
		out[i] = make([]byte, len(x.scratch[i]))
		x.sort.sortInto(out[i], x.scratch[i], recLen(run), leadOf(run))
	}
	return out
}

// leadOf is how many leading bytes of a run's record hold its value: the
// key kind and value, the span id, the namespace hash. The start time
// follows.
func leadOf(run byte) int {
	if run == runKey {
		return 9
	}
	return 8
}

// recordSorter sorts fixed-width records; its memory serves sort after
// sort.
type recordSorter struct {
	idx, tmp []sortKey
	out      []byte
	order    []uint32        // byStart's result
	perm     []uint32        // sortInto's first pass (a lead of 16)
	count    [12][256]uint32 // radix's counts, one array per byte position
}

// sortKey is what the radix sort moves: a record's first 12 bytes (a, and
// b's high half) and the record's rank (b's low half), 16 bytes (issue 29,
// twelfth round: the key was 24 bytes, two integers of 8 bytes and an
// index, padded; the sort's moves are of keys). The rank in the key's last
// bytes makes keys of equal bytes compare in input order.
type sortKey struct {
	a, b uint64
}

// rank is the key's place in the sort's input.
func (k sortKey) rank() uint32 { return uint32(k.b) }

// sortRecords sorts fixed-width records (at least 16 bytes) in place.
func sortRecords(recs []byte, w int) {
	var s recordSorter
	s.sort(recs, w)
}

// sort sorts fixed-width records (at least 16 bytes) in place.
func (s *recordSorter) sort(recs []byte, w int) {
	if len(recs)/w < 2 {
		return
	}
	out := slices.Grow(s.out[:0], len(recs))[:len(recs)]
	s.out = out
	s.sortInto(out, recs, w, 16)
	copy(recs, out)
}

// sortInto writes fixed-width records (at least 16 bytes) of recs, sorted
// in byte order, into dst (as long as recs). It sorts their first lead
// bytes (8 to 12, or 16) with a stable radix sort (msd), which skips the
// bytes every record shares (the high bytes of start times within a shard,
// the kind byte). With lead 16 it sorts bytes 12 to 16 first, then the
// first 12 (stably: the first sort's order stays among their ties), then
// compares the rest of the records whose first 16 bytes tie, which is
// rare: every run leads with a value and a start time. With a shorter lead
// the records must already be in order of their bytes after lead (among
// those whose leading bytes tie): the stable sort keeps that order.
func (s *recordSorter) sortInto(dst, recs []byte, w, lead int) {
	n := len(recs) / w
	if n < 2 {
		copy(dst, recs)
		return
	}
	idx, tmp := slices.Grow(s.idx[:0], n)[:n], slices.Grow(s.tmp[:0], n)[:n]
	s.idx, s.tmp = idx, tmp
	be := binary.BigEndian
	var perm []uint32 // the record at each rank; nil: the rank is the record
	if lead > 12 {
		for i := range idx {
			idx[i] = sortKey{uint64(be.Uint32(recs[i*w+12:])) << 32, uint64(i)}
		}
		s.msd(idx, tmp, 4)
		perm = slices.Grow(s.perm[:0], n)[:n]
		s.perm = perm
		for k := range idx {
			perm[k] = idx[k].rank()
		}
	}
	rec := func(k sortKey) int {
		if perm != nil {
			return int(perm[k.rank()])
		}
		return int(k.rank())
	}
	head := min(lead, 12)
	mask := ^uint64(0) << (8 * (16 - head)) // of the second integer: at most its high half
	for k := range idx {
		i := k
		if perm != nil {
			i = int(perm[k])
		}
		r := recs[i*w:]
		idx[k] = sortKey{be.Uint64(r), be.Uint64(r[8:])&mask | uint64(k)}
	}
	s.msd(idx, tmp, head)
	if lead == 16 {
		first16 := func(k sortKey) []byte { return recs[rec(k)*w : rec(k)*w+16] }
		for lo := 0; lo < n; {
			hi := lo + 1
			for hi < n && idx[hi].a == idx[lo].a && idx[hi].b>>32 == idx[lo].b>>32 && bytes.Equal(first16(idx[hi]), first16(idx[lo])) {
				hi++
			}
			if hi-lo > 1 {
				rest := func(k sortKey) []byte { return recs[rec(k)*w+16 : (rec(k)+1)*w] }
				slices.SortStableFunc(idx[lo:hi], func(x, y sortKey) int { return bytes.Compare(rest(x), rest(y)) })
			}
			lo = hi
		}
	}
	for k, p := range idx {
		i := rec(p)
		copy(dst[k*w:(k+1)*w], recs[i*w:])
	}
}

// byStart returns the indices of spans in order of their start time as
// the records store it (an unsigned integer), ties in index order. The
// slice is the sorter's until its next call.
func (s *recordSorter) byStart(spans []span.Span) []uint32 {
	n := len(spans)
	idx, tmp := slices.Grow(s.idx[:0], n)[:n], slices.Grow(s.tmp[:0], n)[:n]
	s.idx, s.tmp = idx, tmp
	for i := range spans {
		idx[i] = sortKey{uint64(spans[i].StartNs), uint64(i)}
	}
	s.msd(idx, tmp, 8)
	s.order = slices.Grow(s.order[:0], n)[:n]
	for k := range idx {
		s.order[k] = idx[k].rank()
	}
	return s.order
}

// insertionMax: a bucket of at most this many keys is sorted by insertion.
const insertionMax = 32

// msd sorts keys by their first nbytes bytes (at most 12: a's bytes from
// the most significant, then b's high half), stably (ranks in b's low
// half, in input order), with tmp (as long) as scratch.
//
// Most significant byte first: one pass finds the first byte where the
// keys differ, one counts it, one moves the keys into their buckets, and
// each bucket is sorted the same way on the bytes after; a bucket of a
// few keys is sorted by insertion. A batch's key records, whose values are
// hashes and sequence numbers, so take two moving passes (the kind, the
// value's first byte) where a least-significant-first sort took nine, one
// per byte that differs; records sharing a value (a connection's socket, a
// process, the namespace) take one reading pass and no move (issue 29,
// eleventh round).
//
// A bucket's keys share the byte it was made on and those before, so the
// byte a bucket is sorted on is always further than its parent's, and
// s.count[d] serves each depth.
func (s *recordSorter) msd(keys, tmp []sortKey, nbytes int) {
	n := len(keys)
	if n <= insertionMax {
		insertionSort(keys)
		return
	}
	// The first byte where keys differ: bytes they all share (the kind and
	// high bytes of a run's values, a value many records share) take no
	// pass of their own.
	var d int
	var da, db uint64
	a0, b0 := keys[0].a, keys[0].b
	for k := range keys {
		da |= keys[k].a ^ a0
		db |= keys[k].b ^ b0
	}
	switch {
	case da != 0:
		d = bits.LeadingZeros64(da) / 8
	case db != 0:
		d = 8 + bits.LeadingZeros64(db)/8
	default:
		return // all equal
	}
	if d >= nbytes {
		return
	}
	c := &s.count[d]
	*c = [256]uint32{}
	for k := range keys {
		c[keys[k].digit(d)]++
	}
	var sum uint32
	for v := range c {
		c[v], sum = sum, sum+c[v]
	}
	for k := range keys {
		v := keys[k].digit(d)
		tmp[c[v]] = keys[k]
		c[v]++
	}
	copy(keys, tmp[:n])
	// c[v] is now the end of bucket v; deeper levels use their own counts.
	lo := uint32(0)
	for v := range c {
		if hi := c[v]; hi-lo > 1 {
			s.msd(keys[lo:hi], tmp[lo:hi], nbytes)
		}
		lo = c[v]
	}
}

// digit is byte d of k's (a, b), from a's most significant.
func (k *sortKey) digit(d int) byte {
	if d < 8 {
		return byte(k.a >> (56 - 8*d))
	}
	return byte(k.b >> (120 - 8*d))
}

// insertionSort sorts a few keys by (a, b): by their bytes, then rank.
func insertionSort(keys []sortKey) {
	for i := 1; i < len(keys); i++ {
		k := keys[i]
		j := i
		for ; j > 0 && (k.a < keys[j-1].a || k.a == keys[j-1].a && k.b < keys[j-1].b); j-- {
			keys[j] = keys[j-1]
		}
		keys[j] = k
	}
}

// segment is one sorted run of records to merge: in memory (a head's
// batch, a layout-1 source's records), or the encoded blocks of a merge's
// source, decoded one block at a time as the merge reaches them, into
// memory reused block after block (ADR 0004, eighth round). A merge so
// holds its sources' blocks as stored (~36 bytes per span) and one decoded
// block per source, where it held every record decoded (~280 bytes per
// span: 128 MB for a window of 456,000 Bookinfo spans).
type segment struct {
	recs []byte       // the records not yet merged: all of them, or the rest of the current block
	src  *blockSource // nil: recs is the whole segment
}

// blockSource is a merge source's run as stored: its encoded blocks, in
// order, and how its records' batch numbers move into the merged shard.
type blockSource struct {
	run     byte
	blocks  [][]byte // encoded blocks (parseBlock's input)
	next    int      // the block to decode next
	off     uint32   // added to each record's batch number
	batches int64    // the source's batches: a record pointing at or past them is an error
	col     []byte   // decoding memory, reused
	recs    []byte
}

// decode decodes block i into dst (grown as needed) with its records'
// batch numbers moved.
func (s *blockSource) decode(i int, dst []byte) ([]byte, error) {
	recs, col, err := parseBlockInto(s.run, s.blocks[i], s.col, dst)
	s.col = col
	if err != nil {
		return nil, fmt.Errorf("index block %q %d: %w", s.run, i, err)
	}
	w, bo := recLen(s.run), batchOffset(s.run)
	for off := bo; off < len(recs); off += w {
		n := binary.BigEndian.Uint32(recs[off:])
		if int64(n) >= s.batches {
			return nil, fmt.Errorf("%w: record of batch %d in a shard of %d batches", errBlock, n, s.batches)
		}
		binary.BigEndian.PutUint32(recs[off:], s.off+n)
	}
	return recs, nil
}

// more decodes the next block into the source's memory (the block before
// is overwritten); nil at the end.
func (s *blockSource) more() ([]byte, error) {
	if s.next >= len(s.blocks) {
		return nil, nil
	}
	recs, err := s.decode(s.next, s.recs)
	if err != nil {
		return nil, err
	}
	s.next++
	s.recs = recs
	return recs, nil
}

// all returns every record of the segment in new memory (from its first
// block, whatever was merged of it).
func (g *segment) all() ([]byte, error) {
	if g.src == nil {
		return g.recs, nil
	}
	var out []byte
	for i := range g.src.blocks {
		recs, err := g.src.decode(i, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// memSegments are segments of records in memory.
func memSegments(segs [][]byte) []segment {
	out := make([]segment, len(segs))
	for i, s := range segs {
		out[i].recs = s
	}
	return out
}

// mergeRuns merges sorted segments of w-byte records in memory
// (mergeSegments).
func mergeRuns(segs [][]byte, w, cut int, buf []byte, emit func(blk []byte)) ([]byte, bool) {
	buf, ok, _ := mergeSegments(memSegments(segs), w, cut, buf, emit) // in memory: nothing to decode, no error
	return buf, ok
}

// mergeSegments merges sorted segments of w-byte records into one sorted
// run and calls emit with it block by block: cut records at a time, the
// last block shorter. A block passed to emit may be reused once emit
// returns, and emit must not change it; buf is memory for them (returned, grown, for the next call).
// Merging costs n·log(segments) comparisons where sorting the whole run
// cost n·log(n), in memory the caches hold. It reports false, having
// emitted part of the run, when a segment turns out not to be sorted: the
// caller then sorts the records instead; an error is a source's block
// that does not decode.
func mergeSegments(segs []segment, w, cut int, buf []byte, emit func(blk []byte)) ([]byte, bool, error) {
	type cursor struct {
		a, b    uint64 // the leading 16 bytes of the record at at
		at, end int
		seg     int
	}
	h := make([]cursor, 0, len(segs))
	for i := range segs {
		g := &segs[i]
		if g.src != nil {
			g.src.next = 0 // from its first block, whatever an earlier call merged
			recs, err := g.src.more()
			if err != nil {
				return buf, false, err
			}
			g.recs = recs
		}
		if s := g.recs; len(s) >= w {
			h = append(h, cursor{binary.BigEndian.Uint64(s), binary.BigEndian.Uint64(s[8:]), 0, len(s) - len(s)%w, i})
		}
	}
	less := func(x, y *cursor) bool {
		if x.a != y.a {
			return x.a < y.a
		}
		if x.b != y.b {
			return x.b < y.b
		}
		if c := bytes.Compare(segs[x.seg].recs[x.at+16:x.at+w], segs[y.seg].recs[y.at+16:y.at+w]); c != 0 {
			return c < 0
		}
		return x.seg < y.seg // stable: the earlier segment first
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(&h[r], &h[l]) {
				m = r
			}
			if !less(&h[m], &h[i]) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	blk := slices.Grow(buf[:0], cut*w)
	// The last record taken, for the order check: the end of blk, whose
	// memory holds it until the next record is appended (emit does not
	// change a block); a source's block memory is reused.
	var lastA, lastB uint64
	var last []byte
	for len(h) > 0 {
		c := &h[0]
		rec := segs[c.seg].recs[c.at : c.at+w]
		if last != nil && (c.a < lastA || c.a == lastA && (c.b < lastB || c.b == lastB && bytes.Compare(rec[16:], last[16:]) < 0)) {
			return blk, false, nil
		}
		lastA, lastB = c.a, c.b
		blk = append(blk, rec...)
		last = blk[len(blk)-w:]
		if len(blk) == cut*w {
			emit(blk)
			blk = blk[:0]
		}
		c.at += w
		if c.at >= c.end {
			var recs []byte
			if g := &segs[c.seg]; g.src != nil {
				var err error
				if recs, err = g.src.more(); err != nil {
					return blk, false, err
				}
				g.recs = recs
			}
			if len(recs) < w { // the segment is merged
				h[0] = h[len(h)-1]
				h = h[:len(h)-1]
				if len(h) > 0 {
					down(0)
				}
				continue
			}
			c.at, c.end = 0, len(recs)-len(recs)%w
		}
		s := segs[c.seg].recs[c.at:]
		c.a, c.b = binary.BigEndian.Uint64(s), binary.BigEndian.Uint64(s[8:])
		down(0)
	}
	if len(blk) > 0 {
		emit(blk)
	}
	return blk, true, nil
}
