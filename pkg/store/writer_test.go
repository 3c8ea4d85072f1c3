package store

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// TestWriteCutsBatchesInOrder: whatever the sizes of the Write calls
// (smaller than a batch, several batches at once, with spans pending or
// not), the stored batches are the written spans in order, cut every
// BatchRows, the rest cut by Flush; and the writer keeps none of the
// caller's memory (the caller overwrites its slice after each call, as the
// collector's span queue does).
func TestWriteCutsBatchesInOrder(t *testing.T) {
	const rows = 7
	dir := t.TempDir()
	w := openTestWriter(t, dir, func(o *WriterOptions) { o.BatchRows = rows })
	spans := bookinfo(t, 2)[:62]
	var buf []span.Span
	at := 0
	for _, n := range []int{3, 20, 7, 1, 0, 15, 2, 14} {
		buf = append(buf[:0], spans[at:at+n]...)
		if err := w.Write(buf...); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = fullSpan(i) // the caller's next spans
		}
		at += n
	}
	if at != len(spans) {
		t.Fatalf("wrote %d of %d spans", at, len(spans))
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	m := w.Manifest()
	if len(m.Shards) != 1 {
		t.Fatalf("%d shards, want 1", len(m.Shards))
	}
	var o opener
	sh, err := o.open(filepath.Join(dir, "node-a", m.Shards[0].Name), m.Shards[0])
	if err != nil {
		t.Fatal(err)
	}
	defer sh.close()
	var got [][]span.Span
	err = sh.db.View(func(txn *badger.Txn) error {
		return eachBatch(txn, func(n uint32, b *arrowipc.Batch) error {
			if int(n) != len(got) {
				t.Errorf("batch %d read as the %dth", n, len(got))
			}
			got = append(got, b.All())
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]span.Span
	for i := 0; i < len(spans); i += rows {
		want = append(want, spans[i:min(len(spans), i+rows)])
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("stored batches differ from the written spans cut every %d (-want +got):\n%s", rows, diff)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
