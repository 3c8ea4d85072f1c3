package store

import (
	"encoding/binary"
	"fmt"
)

// Block version 3 (ADR 0004, fourteenth round): a head's version-2 block
// that a merge copied into the merged shard as it is stored, without
// decoding it. A merged shard numbers its batches after its sources' (each
// source's batch numbers moved by the batches before it), so a record the
// head wrote points at the head's batch n and means the merged shard's
// batch base+n; the header says so, and says how many batches the head
// had, so that a record pointing past them is refused as the merge refused
// it when it decoded every block, instead of landing in another head's
// batches:
//
//	version(1)=3 run(1) count(4) base(4) batches(4), then the version-2 zstd frame
//
// A reader undoes the differences as for version 2, checks every record's
// batch is below batches and adds base (rebase) before checking the order.
const copiedHeader = blockHeader + 8

// parseCopiedHeader reads a version-3 header's batch base and count: at
// least one batch, and base+batches within the 32-bit batch numbers.
func parseCopiedHeader(b []byte) (base, batches uint32, err error) {
	if len(b) < copiedHeader {
		return 0, 0, fmt.Errorf("%w: %d bytes, a version-3 header needs %d", errBlock, len(b), copiedHeader)
	}
	base, batches = binary.BigEndian.Uint32(b[blockHeader:]), binary.BigEndian.Uint32(b[blockHeader+4:])
	if batches == 0 || uint64(base)+uint64(batches) > 1<<32 {
		return 0, 0, fmt.Errorf("%w: copied block of batches %d from %d", errBlock, batches, base)
	}
	return base, batches, nil
}

// rebase checks that every record of run points below batches and moves
// its batch number by base.
func rebase(recs []byte, run byte, base, batches uint32) error {
	w, bo := recLen(run), batchOffset(run)
	for off := bo; off < len(recs); off += w {
		n := binary.BigEndian.Uint32(recs[off:])
		if n >= batches {
			return fmt.Errorf("%w: record of batch %d in a copied block of %d batches", errBlock, n, batches)
		}
		binary.BigEndian.PutUint32(recs[off:], base+n)
	}
	return nil
}

// copyBlock is the version-3 block of a source's version-2 block b whose
// records point into the source's batches batches, moved by base in the
// merged shard.
func copyBlock(b []byte, base, batches uint32) []byte {
	out := make([]byte, copiedHeader, copiedHeader+len(b)-blockHeader)
	out[0] = blockV3
	copy(out[1:blockHeader], b[1:blockHeader])
	binary.BigEndian.PutUint32(out[blockHeader:], base)
	binary.BigEndian.PutUint32(out[blockHeader+4:], batches)
	return append(out, b[blockHeader:]...)
}
