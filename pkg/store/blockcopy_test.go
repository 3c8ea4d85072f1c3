package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestCopiedBlockBytes: a version-3 block is a version-2 block's frame
// behind a longer header (annotated below); it reads back as the records
// with their batch numbers moved by the base, and every checked field
// broken is refused.
func TestCopiedBlockBytes(t *testing.T) {
	v2 := encodeBlock(runKey, twoKeyRecords) // two records, of batches 7 and 0
	blk := copyBlock(v2, 5, 8)
	hdr := unhex(`03 4b 00000002` + // version 3, run 'K', 2 records
		`00000005 00000008`) // batch base 5, the source's 8 batches
	if !bytes.Equal(blk[:copiedHeader], hdr) || !bytes.Equal(blk[copiedHeader:], v2[blockHeader:]) {
		t.Fatalf("copied block %x, want %x then the version-2 frame", blk[:copiedHeader], hdr)
	}
	recs, err := parseBlock(runKey, blk)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(twoKeyRecords)
	bo := batchOffset(runKey)
	for off := bo; off < len(want); off += keyRecLen {
		want[off+3] += 5 // batches 12 and 5
	}
	if !bytes.Equal(recs, want) {
		t.Fatalf("copied block reads %x, want %x", recs, want)
	}
	frame := v2[blockHeader:]
	for name, c := range map[string][]byte{
		"header cut":           blk[:copiedHeader-1],
		"no batches":           append(unhex(`03 4b 00000002 00000005 00000000`), frame...),
		"batches past 2^32":    append(unhex(`03 4b 00000002 fffffff9 00000008`), frame...),
		"record past batches":  copyBlock(v2, 5, 7), // batch 7 of 7
		"frame cut":            blk[:len(blk)-2],
		"count above frame":    append(unhex(`03 4b 00000003 00000005 00000008`), frame...),
		"run of another block": copyBlock(encodeBlock(runSpanID, make([]byte, spanIDRecLen)), 0, 1),
	} {
		if _, err := parseBlock(runKey, c); !errors.Is(err, errBlock) {
			t.Errorf("%s: error %v, want errBlock", name, err)
		}
	}
	// The highest base a 32-bit batch number allows.
	if recs, err := parseBlock(runKey, copyBlock(v2, 1<<32-8, 8)); err != nil || recs[bo] != 0xff {
		t.Errorf("base 2^32-8 of 8 batches: %v %x", err, recs)
	}
}

// withBatch is recs (key records) with every batch number set to n.
func withBatch(recs []byte, n byte) []byte {
	out := bytes.Clone(recs)
	for off := batchOffset(runKey); off < len(out); off += keyRecLen {
		out[off+3] = n
	}
	return out
}

// TestMergeCopiesBlocks: the same heads merged with and without copying
// blocks give merged shards whose runs hold exactly the same records in
// the same order (every block decoded by a reader), the copying merge
// having copied span-id and search blocks (version 3) and no key block;
// both answer every lookup, get and search as the spans say.
func TestMergeCopiesBlocks(t *testing.T) {
	spans := layoutSpans(t)
	var runsOf [2][3][]byte
	for i, copying := range []bool{false, true} {
		copyBlocks = copying
		t.Cleanup(func() { copyBlocks = true })
		withLayout(t, layoutBlocks, 3)
		dir := t.TempDir()
		now := t0.Add(10 * time.Minute)
		w := openTestWriter(t, dir, func(o *WriterOptions) {
			o.BatchRows = 40
			o.Now = func() time.Time { return now }
		})
		const parts = 5
		per := len(spans)/parts + 1
		for p := 0; p < parts; p++ {
			if err := w.Write(spans[p*per : min(len(spans), (p+1)*per)]...); err != nil {
				t.Fatal(err)
			}
			if err := w.Seal(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Maintain(); err != nil {
			t.Fatal(err)
		}
		m := w.Manifest()
		if len(m.Shards) != 1 || !m.Shards[0].Merged {
			t.Fatalf("want one merged shard, manifest %+v", m.Shards)
		}
		sh, err := (&opener{}).open(filepath.Join(dir, "node-a", m.Shards[0].Name), m.Shards[0])
		if err != nil {
			t.Fatal(err)
		}
		versions := map[byte]map[byte]int{}
		err = sh.view(func(txn *badger.Txn) error {
			for r, run := range runs {
				versions[run] = map[byte]int{}
				if err := scanAllRecords(sh, txn, run, func(rec []byte) error {
					runsOf[i][r] = append(runsOf[i][r], rec...)
					return nil
				}); err != nil {
					return err
				}
				for n := uint32(0); ; n++ {
					it, err := txn.Get(blockKey(run, n))
					if errors.Is(err, badger.ErrKeyNotFound) {
						break
					}
					if err != nil {
						return err
					}
					if err := it.Value(func(v []byte) error { versions[run][v[0]]++; return nil }); err != nil {
						return err
					}
				}
			}
			return nil
		})
		sh.close()
		if err != nil {
			t.Fatal(err)
		}
		if copying {
			if versions[runKey][blockV3] != 0 || versions[runSpanID][blockV3] == 0 || versions[runSearch][blockV3] == 0 {
				t.Errorf("copying merge: block versions %v, want version 3 in the span-id and search runs only", versions)
			}
		} else if versions[runSpanID][blockV3]+versions[runSearch][blockV3]+versions[runKey][blockV3] != 0 {
			t.Errorf("merge without copying wrote version-3 blocks: %v", versions)
		}
		t.Logf("copying %v: block versions %v", copying, versions)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		checkAnswers(t, dir, spans)
	}
	for r, run := range runs {
		if len(runsOf[0][r]) == 0 || !bytes.Equal(runsOf[0][r], runsOf[1][r]) {
			t.Errorf("run %q: %d records merged by decoding, %d by copying, not the same", run,
				len(runsOf[0][r])/recLen(run), len(runsOf[1][r])/recLen(run))
		}
	}
}

// TestCopiedBlockOfOtherBatchesRefused: a copied block whose record points
// past its source's batches would, moved by the base, point into the next
// source's batches: the reader refuses the block (the shard's error), as
// the merge refused such a record when it decoded every block.
func TestCopiedBlockOfOtherBatchesRefused(t *testing.T) {
	recs := withBatch(twoKeyRecords, 2) // batch 2 of a source of 2 batches
	_, err := parseBlock(runKey, copyBlock(encodeBlock(runKey, recs), 10, 2))
	if !errors.Is(err, errBlock) || !strings.Contains(err.Error(), "record of batch 2 in a copied block of 2 batches") {
		t.Fatalf("err %v", err)
	}
}
