package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/zerotrace/zerotrace/internal/spangen"
)

// windowRecords are the sorted index records of a merged shard of
// Bookinfo traffic at the bench's rate (a request every 5 ms): batches of
// 4,096 rows, per run.
func windowRecords(t testing.TB, requests int) (recs [3][]byte, spans int) {
	g := spangen.New(spangen.Config{Seed: 1, Start: t0, Interval: 5 * time.Millisecond})
	var x indexer
	for _, tr := range g.Next(requests) {
		for _, s := range tr.Spans {
			x.appendRecords(&recs, &s, ref{s.StartNs, uint32(spans / 4096), uint32(spans % 4096)})
			spans++
		}
	}
	for i, run := range runs {
		sortRecords(recs[i], recLen(run))
	}
	return recs, spans
}

// encodeRun cuts a sorted run into blocks as the writer does and returns
// the bytes they take with the block version set.
func encodeRun(t testing.TB, version byte, run byte, recs []byte) (size int) {
	defer func(v byte) { blockVersion = v }(blockVersion)
	blockVersion = version
	enc, _ := blockCodec()
	w, cut := recLen(run), cutOf(run)
	var col []byte
	for off := 0; off < len(recs); off += cut * w {
		in := recs[off:min(len(recs), off+cut*w)]
		blk := encodeBlockWith(enc, run, in, &col)
		got, err := parseBlock(run, blk)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("version %d block of run %q does not read back: %v", version, run, err)
		}
		size += len(blk)
	}
	return size
}

// TestBlockV2Smaller: version-2 blocks of real shard records read back to
// the records and take fewer bytes than version 1 in every run (the
// figures are ADR 0004's fourth round).
func TestBlockV2Smaller(t *testing.T) {
	recs, spans := windowRecords(t, 3000)
	var v1, v2 int
	for i, run := range runs {
		a, b := encodeRun(t, blockV1, run, recs[i]), encodeRun(t, blockV2, run, recs[i])
		t.Logf("run %q: version 1 %.2f bytes/span, version 2 %.2f", run, float64(a)/float64(spans), float64(b)/float64(spans))
		if b > a {
			t.Errorf("run %q: version 2 blocks take %d bytes, version 1 %d", run, b, a)
		}
		v1, v2 = v1+a, v2+b
	}
	t.Logf("%d spans: version 1 %.2f bytes/span, version 2 %.2f", spans, float64(v1)/float64(spans), float64(v2)/float64(spans))
	if v2 >= v1 {
		t.Errorf("version 2 blocks take %d bytes, version 1 %d: want fewer", v2, v1)
	}
}

// TestBlockV1StillRead: the version-1 blocks committed in
// FuzzIndexBlock's seed corpus (written from a real shard's records by
// the code before version 2) still read, to the records a version-2
// block of the same records reads to.
func TestBlockV1StillRead(t *testing.T) {
	for _, run := range runs {
		b := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzIndexBlock", "seed-block-"+string(run)))
		if b[0] != blockV1 {
			t.Fatalf("seed block of run %q is version %d, want the committed version 1", run, b[0])
		}
		recs, err := parseBlock(run, b)
		if err != nil {
			t.Fatalf("version 1 block of run %q: %v", run, err)
		}
		if len(recs) < 10*recLen(run) {
			t.Fatalf("version 1 block of run %q holds %d records", run, len(recs)/recLen(run))
		}
		v2 := encodeBlock(run, recs)
		if v2[0] != blockV2 {
			t.Fatalf("the writer encodes version %d, want 2", v2[0])
		}
		again, err := parseBlock(run, v2)
		if err != nil || !bytes.Equal(again, recs) {
			t.Errorf("run %q: version 2 of a version 1 block's records reads back differently: %v", run, err)
		}
	}
}

// TestBlockChecksumOptional: blocks are written without a zstd content
// checksum (ADR 0004, seventh round) by both encoders, and read back to
// their records; a block written with one (the committed seeds, written
// by the code before) reads as before, and its checksum is still checked:
// a byte of its frame changed is refused.
func TestBlockChecksumOptional(t *testing.T) {
	frame := func(b []byte) zstd.Header {
		var h zstd.Header
		if err := h.Decode(b[blockHeader:]); err != nil {
			t.Fatal(err)
		}
		return h
	}
	blockCodec()
	for _, run := range runs {
		old := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzIndexBlock", "seed-v2-block-"+string(run)))
		if !frame(old).HasCheckSum {
			t.Fatalf("committed seed-v2-block-%c has no checksum: not a block of the former writer", run)
		}
		recs, err := parseBlock(run, old)
		if err != nil {
			t.Fatalf("run %q, block with a checksum: %v", run, err)
		}
		for name, blk := range map[string][]byte{
			"merged": encodeBlock(run, recs),
			"head":   encodeBlockWith(headBlockEnc, run, recs, new([]byte)),
		} {
			if frame(blk).HasCheckSum {
				t.Errorf("run %q, %s encoder: the frame has a checksum", run, name)
			}
			if got, err := parseBlock(run, blk); err != nil || !bytes.Equal(got, recs) {
				t.Errorf("run %q, %s encoder: read back %d records (%v), want the %d written", run, name, len(got)/recLen(run), err, len(recs)/recLen(run))
			}
		}
		// The last 4 bytes of a checksummed frame are its checksum.
		bad := bytes.Clone(old)
		bad[len(bad)-2] ^= 0x40
		if _, err := parseBlock(run, bad); err == nil {
			t.Errorf("run %q: a block whose checksum does not match was read", run)
		}
	}
}

// readSeed reads a committed `go test fuzz v1` file of one []byte.
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a fuzz seed of one []byte", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestBlockV2Bytes: what a version-2 block of the key run holds before
// zstd, annotated: the first record as it is, the next with its start,
// batch and row as zigzag differences from the first (kind and value as
// they are: neighbours' values are unrelated).
func TestBlockV2Bytes(t *testing.T) {
	blk := encodeBlock(runKey, twoKeyRecords)
	if hdr := unhex(`02 4b 00000002`); !bytes.Equal(blk[:blockHeader], hdr) {
		t.Fatalf("header %x, want %x", blk[:blockHeader], hdr)
	}
	_, dec := blockCodec()
	col, err := dec.DecodeAll(blk[blockHeader:], make([]byte, 0, 2*keyRecLen))
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]byte, len(col))
	transpose(rows, col, keyRecLen, 2)
	want := unhex(`01 00000000 0001e240 18987f06 6d1c0000 00000007 0000002a` + // req_tcp_seq 123456, start, batch 7 row 42
		`07 12345678 80000001 00000000 00000002 0000000d 0000004d`) // process; start +1 (zigzag 2), batch −7 (13), row −39 (77)
	if !bytes.Equal(rows, want) {
		t.Fatalf("records before zstd\n%x, want\n%x", rows, want)
	}
	recs, err := parseBlock(runKey, blk)
	if err != nil || !bytes.Equal(recs, twoKeyRecords) {
		t.Fatalf("parseBlock: %v %x", err, recs)
	}
}

// BenchmarkEncodeWindowBlocks encodes the blocks of a Bookinfo window's
// records (3,000 requests) as a merge does, in either block version.
func BenchmarkEncodeWindowBlocks(b *testing.B) {
	recs, spans := windowRecords(b, 3000)
	enc, _ := blockCodec()
	for _, v := range []byte{blockV1, blockV2} {
		b.Run("v"+strconv.Itoa(int(v)), func(b *testing.B) {
			defer func(p byte) { blockVersion = p }(blockVersion)
			blockVersion = v
			var col []byte
			var size int
			c0 := processCPU()
			for b.Loop() {
				size = 0
				for i, run := range runs {
					w, cut := recLen(run), cutOf(run)
					for off := 0; off < len(recs[i]); off += cut * w {
						size += len(encodeBlockWith(enc, run, recs[i][off:min(len(recs[i]), off+cut*w)], &col))
					}
				}
			}
			reportPerSpan(b, c0, b.N*spans)
			b.ReportMetric(float64(size)/float64(spans), "bytes/span")
		})
	}
}
