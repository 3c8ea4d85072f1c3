package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestTranspose: transpose puts every byte where its definition says
// (dst[c*rows+r] = src[r*cols+c]) for shapes with and without a remainder
// of eight rows, and undoes itself with rows and cols swapped.
func TestTranspose(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, shape := range [][2]int{{1, 1}, {7, 3}, {8, 25}, {9, 24}, {25, 256}, {256, 25}, {1024, 59}, {13, 1}} {
		rows, cols := shape[0], shape[1]
		src := make([]byte, rows*cols)
		for i := range src {
			src[i] = byte(rnd.Uint32())
		}
		dst := make([]byte, len(src))
		transpose(dst, src, rows, cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				if dst[c*rows+r] != src[r*cols+c] {
					t.Fatalf("%d×%d: byte (%d, %d) is %#x, want %#x", rows, cols, r, c, dst[c*rows+r], src[r*cols+c])
				}
			}
		}
		back := make([]byte, len(src))
		transpose(back, dst, cols, rows)
		if !bytes.Equal(back, src) {
			t.Fatalf("%d×%d: transposing back differs", rows, cols)
		}
	}
}

// BenchmarkTranspose turns the records of a key block (256 × 25 bytes) and
// of a search block (1,024 × 59) into columns and back, as block encoding
// and parsing do.
func BenchmarkTranspose(b *testing.B) {
	for _, sh := range [][2]int{{256, keyRecLen}, {keyRecLen, 256}, {1024, searchRecLen}, {searchRecLen, 1024}} {
		src := make([]byte, sh[0]*sh[1])
		for i := range src {
			src[i] = byte(i * 7)
		}
		dst := make([]byte, len(src))
		b.Run(fmt.Sprintf("%dx%d", sh[0], sh[1]), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for i := 0; i < b.N; i++ {
				transpose(dst, src, sh[0], sh[1])
			}
		})
	}
}

// BenchmarkPrepareBatch encodes one batch of 4,096 Bookinfo spans as a head
// shard's writer does before committing it (Arrow columns, the IPC stream,
// index records, values and meta): no Badger, no disk.
func BenchmarkPrepareBatch(b *testing.B) {
	spans := bookinfo(b, 108)[:4096]
	w := &shardWriter{meta: shardMeta{Layout: layoutBlocks}, seen: map[valueEntry]bool{}, seenWorkload: map[[2]string]bool{}, head: true}
	enc := newBatchEncoder()
	b.ReportAllocs()
	c0 := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := w.prepare(spans, enc); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSpan(b, c0, b.N*len(spans))
}

// BenchmarkBatchRecords makes and sorts the index records of one batch of
// 4,096 Bookinfo spans (indexer.batchRecords, part of BenchmarkPrepareBatch).
func BenchmarkBatchRecords(b *testing.B) {
	spans := bookinfo(b, 108)[:4096]
	var x indexer
	b.ReportAllocs()
	c0 := processCPU()
	for i := 0; i < b.N; i++ {
		x.batchRecords(spans, 1)
	}
	reportPerSpan(b, c0, b.N*len(spans))
}

// BenchmarkHeadIndex encodes the index of a head shard holding 2 s of
// 30,000 spans/s (15 batches of 4,096), as its seal does.
func BenchmarkHeadIndex(b *testing.B) {
	spans := bookinfo(b, 1620)[:15*4096]
	var x indexer
	var batches [][3][]byte
	for j := 0; j < len(spans); j += 4096 {
		batches = append(batches, x.batchRecords(spans[j:j+4096], uint32(j/4096)))
	}
	b.ReportAllocs()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		w := &shardWriter{meta: shardMeta{Layout: layoutBlocks, Batches: 15}, head: true}
		for _, recs := range batches {
			w.addSegments(recs)
		}
		b.StartTimer()
		c0 := processCPU()
		if sw, err := w.encodeIndex(); sw == nil || err != nil {
			b.Fatal("no index", err)
		}
		cpu += processCPU() - c0
		b.StopTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(spans)), "cpu-ns/span")
}

// BenchmarkWriterIngest writes Bookinfo spans through a Writer on disk as
// a collector at 30,000 spans/s does: batches of 4,096 spans, a seal every
// 15 batches (2 s); no merge.
func BenchmarkWriterIngest(b *testing.B) {
	spans := bookinfo(b, 1620)[:15*4096]
	var clock time.Time
	w, err := OpenWriter(WriterOptions{Dir: b.TempDir(), Node: "node-a", NoBackground: true, Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	c0 := processCPU()
	for i := 0; i < b.N; i++ {
		for j := 0; j < len(spans); j += 4096 {
			clock = time.Unix(0, spans[j].StartNs)
			if err := w.Write(spans[j : j+4096]...); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Seal(); err != nil {
			b.Fatal(err)
		}
	}
	reportPerSpan(b, c0, b.N*len(spans))
}

// reportPerSpan reports wall and CPU time per span since the CPU time c0.
func reportPerSpan(b *testing.B, c0 time.Duration, spans int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	b.ReportMetric(float64((processCPU()-c0).Nanoseconds())/float64(spans), "cpu-ns/span")
}
