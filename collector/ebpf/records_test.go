//go:build linux

package ebpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// TestRecordsKeepOrder: records added to chunks and published come out of
// the worker's side whole and in order, chunk after chunk.
func TestRecordsKeepOrder(t *testing.T) {
	q := newRecords(1 << 20)
	var want [][]byte
	c := q.chunk()
	for i := 0; i < 1000; i++ {
		rec := bytes.Repeat([]byte{byte(i)}, i%300) // empty records too
		want = append(want, rec)
		c = add(c, rec)
		if i%97 == 96 {
			q.publish(c)
			c = q.chunk()
		}
	}
	q.publish(c)
	select {
	case <-q.wake:
	default:
		t.Fatal("publishing did not wake the worker")
	}
	handled(t, q, q.take(), want)
	if len(q.take()) != 0 || q.pending != 0 {
		t.Errorf("after done: %d bytes pending", q.pending)
	}
}

// handled walks taken chunks as the worker does, gives them back, and
// checks that their records are want, whole and in order.
func handled(t *testing.T, q *records, chunks [][]byte, want [][]byte) {
	t.Helper()
	var got [][]byte
	for _, ch := range chunks {
		each(ch, func(r []byte) { got = append(got, append([]byte(nil), r...)) })
	}
	q.done(chunks)
	if len(got) != len(want) {
		t.Fatalf("%d records out, %d in", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: %d bytes of %v, want %d of %v", i, len(got[i]), got[i][:min(len(got[i]), 1)], len(want[i]), want[i][:min(len(want[i]), 1)])
		}
	}
}

// TestRecordsBounded: beyond the limit the reader waits until the worker
// has handled what waits; a chunk larger than the limit still passes alone.
func TestRecordsBounded(t *testing.T) {
	q := newRecords(1000)
	q.publish(add(nil, make([]byte, 600)))
	published := make(chan struct{})
	go func() {
		q.publish(add(nil, make([]byte, 600))) // 1208 > 1000: waits
		close(published)
	}()
	select {
	case <-published:
		t.Fatal("a publish beyond the limit did not wait")
	case <-time.After(100 * time.Millisecond):
	}
	q.done(q.take())
	select {
	case <-published:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting publish was not released by done")
	}
	q.done(q.take())
	big := add(nil, make([]byte, 5000))
	q.publish(big) // nothing waits: passes though beyond the limit
	if ch := q.take(); len(ch) != 1 || len(ch[0]) != len(big) {
		t.Errorf("big chunk: %d chunks", len(ch))
	}
}

// BenchmarkRecords: the reader's copy and the worker's walk per record of
// a typical event size.
func BenchmarkRecords(b *testing.B) {
	q := newRecords(16 << 20)
	rec := make([]byte, 160)
	c := q.chunk()
	n := 0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c = add(c, rec)
		if len(c) >= chunkSize {
			q.publish(c)
			chunks := q.take()
			for _, ch := range chunks {
				each(ch, func(r []byte) { n += len(r) })
			}
			q.done(chunks)
			c = q.chunk()
		}
	}
	_ = fmt.Sprint(n)
}

// TestRecordsSmallChunksShareMemory: small chunks published while the
// worker takes none (a stuck worker, one chunk per poll) go into the newest
// waiting chunk, in order, instead of holding a chunk's memory each.
func TestRecordsSmallChunksShareMemory(t *testing.T) {
	q := newRecords(16 << 20)
	var want [][]byte
	for i := 0; i < 4000; i++ {
		rec := bytes.Repeat([]byte{byte(i)}, 100+i%50)
		want = append(want, rec)
		q.publish(add(q.chunk(), rec))
	}
	chunks := q.take()
	held := 0
	for _, c := range chunks {
		held += cap(c)
	}
	if max := (q.pending/chunkSize + 2) * (chunkSize + 4096); held > max {
		t.Errorf("%d records of %d bytes in %d chunks holding %d bytes, want at most %d", len(want), q.pending, len(chunks), held, max)
	}
	handled(t, q, chunks, want)
	if len(q.free) == 0 || len(q.free) > (16<<20)/chunkSize {
		t.Errorf("%d chunks kept for reuse, want 1..%d", len(q.free), (16<<20)/chunkSize)
	}
}

// TestEventRecordCut: a record of a size class longer than its event is cut
// to the header and the cap bytes it captured (the rest is an earlier lap's
// bytes); exact, short and inconsistent records are kept whole.
func TestEventRecordCut(t *testing.T) {
	event := func(capLen uint32, size int) []byte {
		b := bytes.Repeat([]byte{0xee}, size) // an earlier lap's bytes
		binary.LittleEndian.PutUint32(b[40:], capLen)
		return b
	}
	for _, tc := range []struct {
		name string
		rec  []byte
		want int
	}{
		{"class of 128 for 75 bytes", event(75, EventHeaderSize+128), EventHeaderSize + 75},
		{"class of 64 for no bytes", event(0, EventHeaderSize+64), EventHeaderSize},
		{"exact", event(1024, EventHeaderSize+1024), EventHeaderSize + 1024},
		{"header only", event(0, EventHeaderSize), EventHeaderSize},
		{"cap past the record", event(200, EventHeaderSize+128), EventHeaderSize + 128},
		{"shorter than a header", make([]byte, 20), 20},
	} {
		got := eventRecord(tc.rec)
		if len(got) != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.name, len(got), tc.want)
		}
		if !bytes.Equal(got, tc.rec[:len(got)]) {
			t.Errorf("%s: bytes changed", tc.name)
		}
	}
}
