package store

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestRecoverHeadOfLargerMemtable: a head shard a crash left, written with
// the 8 MiB memtable (values in it) of the writer before heads put their
// values in the value log, holds more in its write-ahead log than a 2 MiB
// memtable takes; recovery replays it into a memtable as large as the one
// that wrote it, instead of Badger exiting the process, and keeps every span.
func TestRecoverHeadOfLargerMemtable(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(t.TempDir(), "h-00000000000000000001")
	db, err := badger.Open(badgerOptions(live, false).WithCompression(0).WithMemTableSize(8 << 20))
	if err != nil {
		t.Fatal(err)
	}
	sw := &shardWriter{dir: live, db: db, meta: shardMeta{Node: "node-a", Layout: writeLayout}, seen: map[valueEntry]bool{},
		seenWorkload: map[[2]string]bool{}, head: true}
	enc := newBatchEncoder()
	spans := bookinfo(t, 4000) // 152,000 spans, ~4.5 MB of batch values
	var written int
	for i := 0; i < len(spans); i += 1900 {
		sws, err := sw.prepare(spans[i:min(len(spans), i+1900)], enc)
		if err != nil {
			t.Fatal(err)
		}
		n, err := sw.commit(sws...)
		if err != nil {
			t.Fatal(err)
		}
		written += n
	}
	// The crash: the files as they are now (page cache), the process gone.
	node := filepath.Join(dir, "node-a")
	crashed := filepath.Join(node, filepath.Base(live))
	if err := os.MkdirAll(crashed, 0o750); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(live)
	for _, e := range ents {
		copyFile(t, filepath.Join(live, e.Name()), filepath.Join(crashed, e.Name()))
	}
	db.Close()
	if m := memLogBytes(crashed); m <= 2*headMemTable {
		t.Fatalf("the crashed head's write-ahead log is %d bytes: not beyond a %d-byte memtable, the test shows nothing", m, headMemTable)
	}
	w := openTestWriter(t, dir, nil)
	defer w.Close()
	m := w.Manifest()
	if len(m.Shards) != 1 || m.Shards[0].Spans != int64(written) {
		t.Fatalf("after recovery the manifest lists %+v, want the head with %d spans", m.Shards, written)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, i := range []int{0, len(spans) / 2, len(spans) - 1} {
		got, err := r.Get(t.Context(), 0, 0, []uint64{spans[i].SpanID})
		if err != nil || len(got) != 1 {
			t.Errorf("span %d (id %x) after recovery: %d found, %v", i, spans[i].SpanID, len(got), err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHeadMemFor(t *testing.T) {
	for _, tc := range []struct{ mem, want int64 }{
		{0, headMemTable},
		{1 << 20, headMemTable},      // 1.25 MiB → 2 MiB, the least
		{2 << 20, 3 << 20},           // 2.5 MiB → 3 MiB
		{4<<20 + 1, 6 << 20},         // 5 MiB and a bit → 6 MiB
		{12 << 20, 15 << 20},         // 15 MiB → 15 MiB
		{100 << 20, maxHeadMemTable}, // the most
	} {
		if got := headMemFor(tc.mem); got != tc.want {
			t.Errorf("headMemFor(%d) = %d, want %d", tc.mem, got, tc.want)
		}
	}
}

// TestHeadMemtableSizedToLastHead: after a head whose index took more than
// a 2 MiB memtable, the next head opens with one that takes it whole.
func TestHeadMemtableSizedToLastHead(t *testing.T) {
	w := openTestWriter(t, t.TempDir(), nil)
	defer w.Close()
	if err := w.Write(bookinfo(t, 3000)...); err != nil { // 114,000 spans
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	if w.headMem <= headMemTable {
		t.Fatalf("after a head of 114,000 spans the next memtable is %d bytes, want more than %d", w.headMem, headMemTable)
	}
	if err := w.Write(bookinfo(t, 10)...); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := w.head.db.Opts().MemTableSize; got != w.headMem {
		t.Errorf("the next head's memtable is %d bytes, want %d", got, w.headMem)
	}
}

// TestHeadWriterHasNoCaches: a head's writer opens Badger without a block
// or index cache (built and dropped at every open, every 2 s, for reads it
// never makes), and a merged shard's writer with them as before; the head
// is still read back whole (its merge and readers open it apart).
func TestHeadWriterHasNoCaches(t *testing.T) {
	dir := t.TempDir()
	h, err := openShardWriter(filepath.Join(dir, "h-1"), "node-a", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.db.BlockCacheMetrics() != nil || h.db.IndexCacheMetrics() != nil {
		t.Error("a head's writer has a block or index cache")
	}
	h.close()
	m, err := openShardWriter(filepath.Join(dir, "w-1.tmp"), "node-a", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.abort()
	if m.db.BlockCacheMetrics() == nil {
		t.Error("a merged shard's writer has no block cache: its tables are compressed")
	}
}

// TestHeadTakesBatchOverSixteenMiB: a batch of incompressible strings whose
// value is over 16 MiB (under the writer's decoded limit, so one batch) is
// written into a head, sealed, merged with another head, and every span
// reads back whole. With the heads' value log files at 16 MiB Badger
// refused the value: the spans were dropped as a write error.
func TestHeadTakesBatchOverSixteenMiB(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	defer w.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var spans []span.Span
	for i := range 20 { // 20 × 1 MiB of random letters: ~20 MiB however compressed
		s := fullSpan(i)
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		s.RequestResource = fmt.Sprintf("/%d/%s", i, b)
		spans = append(spans, s)
	}
	if err := w.Write(spans...); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.DroppedError != 0 || st.Spans != uint64(len(spans)) {
		t.Fatalf("%d spans written, %d dropped as errors; want %d written", st.Spans, st.DroppedError, len(spans))
	}
	if m := w.Manifest(); len(m.Shards) != 1 || m.Shards[0].Batches != 1 || m.Shards[0].Bytes <= 16<<20 {
		t.Fatalf("the manifest lists %+v, want one head of one batch over 16 MiB", m.Shards)
	}
	small := bookinfo(t, 10)
	if err := w.Write(small...); err != nil {
		t.Fatal(err)
	}
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	w.opt.Now = func() time.Time { return time.Unix(0, spans[0].StartNs).Add(time.Hour) }
	if err := w.Maintain(); err != nil {
		t.Fatal(err)
	}
	if m := w.Manifest(); len(m.Shards) != 1 || !m.Shards[0].Merged {
		t.Fatalf("after the merge the manifest lists %+v, want one merged shard", m.Shards)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Get(t.Context(), 0, 0, ids(spans))
	if err != nil || len(got) != len(spans) {
		t.Fatalf("%d of %d spans read back: %v", len(got), len(spans), err)
	}
	for _, s := range got {
		if s.RequestResource != spans[s.SpanID-spans[0].SpanID].RequestResource {
			t.Fatalf("span %d: resource of %d bytes differs", s.SpanID, len(s.RequestResource))
		}
	}
}
