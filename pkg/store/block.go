package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Layout 2 (ADR 0004): a shard's index is three sorted runs of fixed-width
// records, written once when the shard is sealed, cut into blocks of at
// most blockRecords records. A block is one Badger value; a run's
// directory (the first record of every block) is another. Records are the
// layout-1 index keys without their prefix byte (and, for the span-id and
// search runs, with their value appended), so both layouts sort alike.
const (
	runKey    = 'K' // kind(1) value(8) start(8) batch(4) row(4)
	runSpanID = 'I' // span_id(8) start(8) batch(4) row(4)
	runSearch = 'T' // nsHash(8) start(8) batch(4) row(4) searchVal2(35)

	pBlock = 'R' // R run(1) block(4) → block
	pDir   = 'D' // D run(1)          → directory
)

// Record widths per run.
const (
	keyRecLen    = keyLen - 1
	spanIDRecLen = spanIDLen - 1 + refLen
	searchRecLen = searchLen - 1 + searchVal2
)

// Shard layouts, recorded in the meta record (absent: 1).
const (
	layoutEntries = 1 // one Badger entry per index key per span (ADR 0001)
	layoutBlocks  = 2 // sorted record blocks written at seal (ADR 0004)
)

// blockRecords bounds the records of one block: a lookup decodes at most
// one block per key and boundary.
const blockRecords = 2048

// blockCut, when not 0, is where the writer cuts the blocks of every run;
// tests make it small to cross block boundaries.
var blockCut = 0

// cutOf is the number of records per block of run. Lookups by key and by
// span id decode one block per shard they touch, found or not, so their
// blocks are small (256 records, 6 KiB); search scans runs of newest
// entries, so its blocks are larger.
func cutOf(run byte) int {
	switch {
	case blockCut > 0:
		return blockCut
	case run == runSearch:
		return 1024
	}
	return 256
}

var errBlock = errors.New("malformed index block")

var runs = []byte{runKey, runSpanID, runSearch}

func recLen(run byte) int {
	switch run {
	case runKey:
		return keyRecLen
	case runSpanID:
		return spanIDRecLen
	case runSearch:
		return searchRecLen
	}
	return 0
}

func blockKey(run byte, n uint32) []byte {
	b := []byte{pBlock, run, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], n)
	return b
}

func dirKey(run byte) []byte { return []byte{pDir, run} }

// Block format: version(1) run(1) count(4) then a zstd frame of the
// records stored column by column (byte j of every record, then byte j+1):
// sorted records share their leading bytes, which compress to almost
// nothing. Version 2 stores some fields as differences first
// (blockdelta.go).
const blockHeader = 6

var (
	blockEncOnce sync.Once
	blockEnc     *zstd.Encoder // merged shards
	headBlockEnc *zstd.Encoder // head shards: read for a minute, then merged
	blockDec     *zstd.Decoder
)

// blockEncOptions are the block encoders' settings. Entropy coding of
// literals is off: on column-major sorted records it saved no byte and
// took 37% of the encoding time (measured on Bookinfo records). No content
// checksum: a block lives in a shard file whose SHA-256 a reader checks
// before parsing a byte (ADR 0002), a head's unsealed blocks in Badger's
// checksummed log; hashing each block's records when writing it and again
// when reading it was ~2% of ingest (ADR 0004, seventh round). A block
// written with a checksum (before) is read as before, its checksum checked.
func blockEncOptions(level zstd.EncoderLevel) []zstd.EOption {
	return []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true), zstd.WithNoEntropyCompression(true), zstd.WithEncoderCRC(false)}
}

// blockCodec returns the block encoders and the decoder. Head shards use
// zstd's fastest level, 1 byte per span larger and twice as fast.
func blockCodec() (*zstd.Encoder, *zstd.Decoder) {
	blockEncOnce.Do(func() {
		var err error
		blockEnc, err = zstd.NewWriter(nil, blockEncOptions(zstd.SpeedDefault)...)
		if err != nil {
			panic(err)
		}
		headBlockEnc, err = zstd.NewWriter(nil, blockEncOptions(zstd.SpeedFastest)...)
		if err != nil {
			panic(err)
		}
		blockDec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderMaxMemory(blockRecords*searchRecLen))
		if err != nil {
			panic(err)
		}
	})
	return blockEnc, blockDec
}

// encodeBlock encodes count sorted records of run as a merged shard does.
func encodeBlock(run byte, recs []byte) []byte {
	enc, _ := blockCodec()
	return encodeBlockWith(enc, run, recs, new([]byte))
}

// encodeBlockWith encodes count sorted records of run with enc; *col is
// memory for the records' columns (grown as needed, kept for the next
// block).
func encodeBlockWith(enc *zstd.Encoder, run byte, recs []byte, col *[]byte) []byte {
	w := recLen(run)
	n := len(recs) / w
	*col = slices.Grow((*col)[:0], 2*len(recs))[:2*len(recs)]
	rows, cols := (*col)[:len(recs)], (*col)[len(recs):]
	if blockVersion == blockV2 {
		deltaEncode(rows, recs, run, w)
		recs = rows
	}
	transpose(cols, recs, n, w)
	out := make([]byte, blockHeader, blockHeader+len(recs)/4)
	out[0] = blockVersion
	out[1] = run
	binary.BigEndian.PutUint32(out[2:], uint32(n))
	return enc.EncodeAll(cols, out)
}

// transpose writes the rows × cols byte matrix src, row-major, into dst
// column-major (dst[c*rows+r] = src[r*cols+c]); with rows and cols swapped
// it is its own inverse. Both slices hold rows·cols bytes.
func transpose(dst, src []byte, rows, cols int) {
	dst, src = dst[:rows*cols], src[:rows*cols]
	// Eight rows by eight columns at a time: eight 8-byte loads, the 8×8
	// byte matrix transposed in registers (swapBlocks), eight 8-byte
	// stores. Gathering a column's bytes one load each, eight rows at a
	// time, ran at 1.0–2.0 GB/s against 2.7–3.5 (BenchmarkTranspose; ADR
	// 0004, eighth round); the same rounds over an array in a loop were no
	// faster than that, hence the unrolled lines. The rows and columns left
	// over go byte by byte.
	r8, c8 := rows-rows%8, cols-cols%8
	le := binary.LittleEndian
	for c := 0; c < c8; c += 8 {
		for r := 0; r < r8; r += 8 {
			s := src[r*cols+c : r*cols+c+7*cols+8]
			x0, x1, x2, x3 := le.Uint64(s), le.Uint64(s[cols:]), le.Uint64(s[2*cols:]), le.Uint64(s[3*cols:])
			x4, x5, x6, x7 := le.Uint64(s[4*cols:]), le.Uint64(s[5*cols:]), le.Uint64(s[6*cols:]), le.Uint64(s[7*cols:])
			x0, x4 = swapBlocks(x0, x4, 32, 0x00000000ffffffff)
			x1, x5 = swapBlocks(x1, x5, 32, 0x00000000ffffffff)
			x2, x6 = swapBlocks(x2, x6, 32, 0x00000000ffffffff)
			x3, x7 = swapBlocks(x3, x7, 32, 0x00000000ffffffff)
			x0, x2 = swapBlocks(x0, x2, 16, 0x0000ffff0000ffff)
			x1, x3 = swapBlocks(x1, x3, 16, 0x0000ffff0000ffff)
			x4, x6 = swapBlocks(x4, x6, 16, 0x0000ffff0000ffff)
			x5, x7 = swapBlocks(x5, x7, 16, 0x0000ffff0000ffff)
			x0, x1 = swapBlocks(x0, x1, 8, 0x00ff00ff00ff00ff)
			x2, x3 = swapBlocks(x2, x3, 8, 0x00ff00ff00ff00ff)
			x4, x5 = swapBlocks(x4, x5, 8, 0x00ff00ff00ff00ff)
			x6, x7 = swapBlocks(x6, x7, 8, 0x00ff00ff00ff00ff)
			d := dst[c*rows+r : c*rows+r+7*rows+8]
			le.PutUint64(d, x0)
			le.PutUint64(d[rows:], x1)
			le.PutUint64(d[2*rows:], x2)
			le.PutUint64(d[3*rows:], x3)
			le.PutUint64(d[4*rows:], x4)
			le.PutUint64(d[5*rows:], x5)
			le.PutUint64(d[6*rows:], x6)
			le.PutUint64(d[7*rows:], x7)
		}
	}
	for r := r8; r < rows; r++ {
		for c := 0; c < cols; c++ {
			dst[c*rows+r] = src[r*cols+c]
		}
	}
	for c := c8; c < cols; c++ {
		for r := 0; r < r8; r++ {
			dst[c*rows+r] = src[r*cols+c]
		}
	}
}

// swapBlocks is one round of transposing an 8×8 byte matrix held in eight
// words (row i in word i, column j in byte j from the least significant):
// the bytes of x that mask selects once x is shifted down by bits change
// places with the bytes of y the mask selects. Rounds of 32, 16 and 8
// bits over rows 4, 2 and 1 apart swap the off-diagonal 4×4, then 2×2,
// then single bytes: after them word j holds what column j held.
func swapBlocks(x, y uint64, bits uint, mask uint64) (uint64, uint64) {
	t := (x>>bits ^ y) & mask
	return x ^ t<<bits, y ^ t
}

// decodeSlack is room the block decoder gets past a block's records. With
// none (the output's capacity exactly the records) zstd's decoder takes its
// "safe" sequence loop, which never writes past the capacity; with 16 bytes
// (its own over-allocation) it takes the loop that copies in 16-byte moves
// and may write up to 16 bytes past the output's length: ~9% less CPU in
// that loop when a merge decodes a window's key blocks (a profile; ADR
// 0004, tenth round). The
// work stays bounded: the cap limit still stops the decoder 16 bytes past
// the records, and a frame that decodes to more or less than them is
// refused as before.
const decodeSlack = 16

// parseBlock decodes a block of run: at most blockRecords records, exactly
// as many bytes as they take, in ascending order. The work is bounded by
// the declared count, itself bounded, before anything is decompressed.
func parseBlock(run byte, b []byte) ([]byte, error) {
	recs, _, err := parseBlockInto(run, b, nil, nil)
	return recs, err
}

// parseBlockInto is parseBlock decoding into memory the caller reuses:
// the records go to dst and the columns to col (each grown as needed) and
// both are returned (a merge decodes its sources' blocks one at a time).
func parseBlockInto(run byte, b, col, dst []byte) (recs, cols []byte, err error) {
	w := recLen(run)
	if w == 0 {
		return nil, col, fmt.Errorf("%w: unknown run %q", errBlock, run)
	}
	if len(b) < blockHeader {
		return nil, col, fmt.Errorf("%w: %d bytes, header needs %d", errBlock, len(b), blockHeader)
	}
	if b[0] != blockV1 && b[0] != blockV2 {
		return nil, col, fmt.Errorf("%w: block version %d, this reader knows 1 and 2", errBlock, b[0])
	}
	if b[1] != run {
		return nil, col, fmt.Errorf("%w: block of run %q where run %q belongs", errBlock, b[1], run)
	}
	n := binary.BigEndian.Uint32(b[2:])
	if n == 0 || n > blockRecords {
		return nil, col, fmt.Errorf("%w: %d records, want 1 to %d", errBlock, n, blockRecords)
	}
	size := int(n) * w
	var h zstd.Header
	if err := h.Decode(b[blockHeader:]); err != nil {
		return nil, col, fmt.Errorf("%w: zstd frame header: %v", errBlock, err)
	}
	if h.Skippable || h.DictionaryID != 0 {
		return nil, col, fmt.Errorf("%w: zstd frame is skippable or needs a dictionary", errBlock)
	}
	// Small frames declare no size: the decoder's cap limit bounds them.
	if h.HasFCS && h.FrameContentSize != uint64(size) {
		return nil, col, fmt.Errorf("%w: zstd frame holds %d bytes, %d records take %d", errBlock, h.FrameContentSize, n, size)
	}
	_, dec := blockCodec()
	col = slices.Grow(col[:0], size+decodeSlack)
	// The cap limit: the decoder writes no more than the records and the
	// slack (decodeSlack); a frame declaring its size stops at it.
	c, err := dec.DecodeAll(b[blockHeader:], col[:0:size+decodeSlack])
	if err != nil {
		return nil, col, fmt.Errorf("%w: %v", errBlock, err)
	}
	if len(c) != size {
		return nil, col, fmt.Errorf("%w: %d bytes of records, want %d", errBlock, len(c), size)
	}
	recs = slices.Grow(dst[:0], size)[:size]
	transpose(recs, c, w, int(n))
	if b[0] == blockV2 {
		deltaDecode(recs, run, w)
	}
	for i := w; i < size; i += w {
		if bytes.Compare(recs[i-w:i], recs[i:i+w]) > 0 {
			return nil, col, fmt.Errorf("%w: record %d sorts before record %d", errBlock, i/w, i/w-1)
		}
	}
	return recs, col, nil
}

// Directory format: version(1)=1 run(1) blocks(4) records(8), then the
// first record of every block.
const dirHeader = 14

// maxDirBlocks bounds a directory: 2^20 blocks of 2048 records is more
// than any shard holds.
const maxDirBlocks = 1 << 20

type directory struct {
	run     byte
	records uint64
	first   []byte // blocks × recLen(run)
}

func (d *directory) blocks() int { return len(d.first) / recLen(d.run) }

func (d *directory) firstOf(i int) []byte {
	w := recLen(d.run)
	return d.first[i*w : (i+1)*w]
}

func encodeDir(run byte, records uint64, first []byte) []byte {
	w := recLen(run)
	out := make([]byte, dirHeader, dirHeader+len(first))
	out[0] = 1
	out[1] = run
	binary.BigEndian.PutUint32(out[2:], uint32(len(first)/w))
	binary.BigEndian.PutUint64(out[6:], records)
	return append(out, first...)
}

func parseDir(run byte, b []byte) (*directory, error) {
	w := recLen(run)
	if w == 0 {
		return nil, fmt.Errorf("%w: unknown run %q", errBlock, run)
	}
	if len(b) < dirHeader {
		return nil, fmt.Errorf("%w: directory of %d bytes, header needs %d", errBlock, len(b), dirHeader)
	}
	if b[0] != 1 || b[1] != run {
		return nil, fmt.Errorf("%w: directory version %d run %q, want 1 %q", errBlock, b[0], b[1], run)
	}
	n := binary.BigEndian.Uint32(b[2:])
	recs := binary.BigEndian.Uint64(b[6:])
	if n > maxDirBlocks || len(b) != dirHeader+int(n)*w {
		return nil, fmt.Errorf("%w: directory of %d bytes for %d blocks", errBlock, len(b), n)
	}
	if recs < uint64(n) || recs > uint64(n)*blockRecords {
		return nil, fmt.Errorf("%w: directory lists %d records in %d blocks", errBlock, recs, n)
	}
	d := &directory{run: run, records: recs, first: b[dirHeader:]}
	for i := 1; i < int(n); i++ {
		if bytes.Compare(d.firstOf(i-1), d.firstOf(i)) > 0 {
			return nil, fmt.Errorf("%w: directory block %d sorts before block %d", errBlock, i, i-1)
		}
	}
	return d, nil
}

// firstBlock is the index of the first block that may hold a record ≥ lo.
func (d *directory) firstBlock(lo []byte) int {
	n := d.blocks()
	lo0, hi0 := 0, n
	for lo0 < hi0 {
		m := (lo0 + hi0) / 2
		if bytes.Compare(d.firstOf(m), lo) < 0 {
			lo0 = m + 1
		} else {
			hi0 = m
		}
	}
	// lo0: first block whose first record ≥ lo; records ≥ lo may start in
	// the block before it.
	return max(0, lo0-1)
}
