package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestMergeStreamKeyOrder: the stream writer takes keys only in ascending
// order, across calls too; anything else is an error, not a panic in
// Badger's goroutines.
func TestMergeStreamKeyOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls [][]string
		bad   bool
	}{
		{name: "ascending", calls: [][]string{{"B1", "B2"}, {"B3"}, {"D", "M", "R1"}}},
		{name: "equal keys", calls: [][]string{{"B1", "B1"}}, bad: true},
		{name: "descending in a call", calls: [][]string{{"B2", "B1"}}, bad: true},
		{name: "descending across calls", calls: [][]string{{"M"}, {"B1"}}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := badger.Open(mergedOptions(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			m, err := newMergeStream(db)
			if err != nil {
				t.Fatal(err)
			}
			defer m.sw.Cancel()
			var got error
			for _, keys := range tc.calls {
				var sets []kv
				for _, k := range keys {
					sets = append(sets, kv{[]byte(k), []byte("v")})
				}
				if got = m.write(sets); got != nil {
					break
				}
			}
			if (got != nil) != tc.bad {
				t.Fatalf("write: %v, want an error: %v", got, tc.bad)
			}
			if got != nil && !strings.Contains(got.Error(), "stream writer: key") {
				t.Errorf("error %q does not name the key", got)
			}
		})
	}
}

// TestMergedShardStreamWritten: a merge's output is built by the stream
// writer — its tables at the last level, none larger than mergedTable
// plus a block — and a head's batch values are in its value log.
func TestMergedShardStreamWritten(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	spans := bookinfo(t, 400) // 15,200 spans: batch values over headValueThreshold
	for i := 0; i < len(spans); i += 3800 {
		if err := w.Write(spans[i:min(len(spans), i+3800)]...); err != nil {
			t.Fatal(err)
		}
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	heads := w.Manifest().Shards
	var vlog int64
	for _, e := range heads {
		for _, f := range e.Files {
			if strings.HasSuffix(f.Name, ".vlog") {
				vlog += f.Size
			}
		}
	}
	if vlog < headValueThreshold*int64(len(heads)) {
		t.Errorf("the %d head shards hold %d bytes of value logs: their batch values are not there", len(heads), vlog)
	}
	w.opt.Now = func() time.Time { return time.Unix(0, spans[len(spans)-1].StartNs).Add(time.Hour) }
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	m := w.Manifest()
	if len(m.Shards) != 1 || !m.Shards[0].Merged {
		t.Fatalf("after the merge the manifest lists %+v, want one merged shard", m.Shards)
	}
	w.Close()
	db, err := badger.Open(badgerOptions(filepath.Join(dir, "node-a", m.Shards[0].Name), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := db.Tables()
	if len(tables) == 0 {
		t.Fatal("the merged shard has no table")
	}
	last := db.Opts().MaxLevels - 1
	for _, tb := range tables {
		if tb.Level != last || tb.OnDiskSize > mergedTable+1<<20 {
			t.Errorf("table %d at level %d, %d bytes: want level %d (stream writer), at most ~%d bytes", tb.ID, tb.Level, tb.OnDiskSize, last, mergedTable)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node-a", heads[0].Name)); !os.IsNotExist(err) {
		t.Errorf("a merged source is still there: %v", err)
	}
}

// TestMergeSourcesOpenWithoutCaches: a shard read once (a merge's source,
// openOnce) is opened without Badger's block and index caches, a reader's
// (open) with them; through either, a merged shard's compressed tables and
// a head's read back alike: every batch value and index block.
func TestMergeSourcesOpenWithoutCaches(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	defer w.Close()
	spans := bookinfo(t, 400)
	for i := 0; i < len(spans); i += 3800 {
		if err := w.Write(spans[i:min(len(spans), i+3800)]...); err != nil {
			t.Fatal(err)
		}
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	w.opt.Now = func() time.Time { return time.Unix(0, spans[len(spans)-1].StartNs).Add(time.Hour) }
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	// And a head besides the merged shard.
	if err := w.Write(spans[:3800]...); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	m := w.Manifest()
	if len(m.Shards) != 2 || !m.Shards[0].Merged || m.Shards[1].Merged {
		t.Fatalf("the manifest lists %+v, want a merged shard and a head", m.Shards)
	}
	for _, e := range m.Shards {
		path := filepath.Join(dir, "node-a", e.Name)
		var o opener
		rd, err := o.open(path, e)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.close()
		once, err := o.openOnce(path, e)
		if err != nil {
			t.Fatal(err)
		}
		defer once.close()
		if rd.db.BlockCacheMetrics() == nil || rd.db.IndexCacheMetrics() == nil {
			t.Errorf("%s: a reader's shard has no block or index cache", e.Name)
		}
		if once.db.BlockCacheMetrics() != nil || once.db.IndexCacheMetrics() != nil {
			t.Errorf("%s: a merge source's shard has a block or index cache", e.Name)
		}
		a, b := storedValues(t, rd), storedValues(t, once)
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("%s: %d values with caches, %d without", e.Name, len(a), len(b))
		}
		for k, v := range a {
			if !bytes.Equal(b[k], v) {
				t.Fatalf("%s: key %x reads differently without caches", e.Name, k)
			}
		}
	}
}

// storedValues reads every batch value and index block of sh.
func storedValues(t *testing.T, sh *shard) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := sh.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if k[0] != pBatch && k[0] != pBlock {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(k)] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
