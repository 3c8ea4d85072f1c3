package store

import "encoding/binary"

// Block version 2 (ADR 0004, fourth round): before the records are stored
// column by column, some of their fields hold the difference from the
// same field of the record before (zigzag-coded, so a small step back is
// small too) instead of the value. Sorted records step by little in those
// fields (span ids count up, start times of one namespace or one id range
// follow each other, rows of one batch), and a column of small
// differences is mostly zero bytes, which zstd stores in almost nothing,
// where the values' low bytes looked random to it. Version 1 blocks (no
// differences) are still read.
const (
	blockV1 = 1 // records column by column
	blockV2 = 2 // deltaFields of each record as differences, then column by column
)

// blockVersion is the version the writer encodes; tests set blockV1 to
// write blocks as earlier collectors did.
var blockVersion byte = blockV2

// field is a big-endian unsigned field of a record: offset and width (4 or 8).
type field struct{ off, width int }

// deltaFields are the fields of a run's records a version-2 block stores
// as differences: those that sorted neighbours share or step by little
// (measured on Bookinfo shards, TestBlockV2Smaller). In the key run that
// is start, batch and row (the records of one key — a trace id's spans, a
// request's x-request-id — are neighbours) but not the value: neighbouring
// values are unrelated numbers and hashes, and their differences took
// more bytes than the values (28.95 against 28.37 bytes/span). The search
// run's other fields (hashes of names, duration) are left alone too:
// neighbours alternate among few, which zstd finds as repeats.
func deltaFields(run byte) []field {
	switch run {
	case runKey:
		return keyDeltas
	case runSpanID, runSearch:
		return idSearchDeltas
	}
	return nil
}

var (
	keyDeltas      = []field{{9, 8}, {17, 4}, {21, 4}}         // kind(1) value(8) start(8) batch(4) row(4): start, batch, row
	idSearchDeltas = []field{{0, 8}, {8, 8}, {16, 4}, {20, 4}} // span_id or nsHash(8) start(8) batch(4) row(4) [search fields]
)

func zigzag(d int64) uint64   { return uint64(d<<1) ^ uint64(d>>63) }
func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }

// deltaEncode writes the n w-byte records of src into dst (same size) with
// the run's delta fields replaced by their zigzag difference from the
// record before; the first record is copied as it is.
func deltaEncode(dst, src []byte, run byte, w int) {
	copy(dst, src)
	be := binary.BigEndian
	for _, f := range deltaFields(run) {
		for off := len(src) - w; off >= w; off -= w {
			p, c := src[off-w+f.off:], src[off+f.off:]
			d := dst[off+f.off:]
			if f.width == 8 {
				be.PutUint64(d, zigzag(int64(be.Uint64(c)-be.Uint64(p))))
			} else {
				be.PutUint32(d, uint32(zigzag(int64(int32(be.Uint32(c)-be.Uint32(p))))))
			}
		}
	}
}

// deltaDecode undoes deltaEncode in place.
func deltaDecode(recs []byte, run byte, w int) {
	be := binary.BigEndian
	for _, f := range deltaFields(run) {
		for off := w; off+w <= len(recs); off += w {
			p, c := recs[off-w+f.off:], recs[off+f.off:]
			if f.width == 8 {
				be.PutUint64(c, be.Uint64(p)+uint64(unzigzag(be.Uint64(c))))
			} else {
				be.PutUint32(c, be.Uint32(p)+uint32(unzigzag(uint64(be.Uint32(c)))))
			}
		}
	}
}
