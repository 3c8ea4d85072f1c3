package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store/arrowipc"
)

// TestWriterSplitsBatchBeyondLimit: spans that would make a batch decoding
// to more than arrowipc.MaxDecodedBytes are written as several batches, all readable.
func TestWriterSplitsBatchBeyondLimit(t *testing.T) {
	dir := t.TempDir()
	w := openTestWriter(t, dir, nil)
	var spans []span.Span
	for i := range 40 { // 40 × 1.5 MiB of resource strings: 60 MiB
		s := fullSpan(i)
		s.RequestResource = fmt.Sprintf("/%d/%s", i, strings.Repeat("r", 3<<19))
		spans = append(spans, s)
	}
	if err := w.Write(spans...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := w.Manifest()
	if len(m.Shards) != 1 || m.Shards[0].Batches < 2 {
		t.Fatalf("shards %+v, want one shard of two or more batches", m.Shards)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Get(context.Background(), 0, 0, ids(spans))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(spans) {
		t.Fatalf("read %d spans, want %d", len(got), len(spans))
	}
	for _, s := range got {
		if s.RequestResource != spans[s.SpanID-1000].RequestResource {
			t.Fatalf("span %d: resource of %d bytes differs", s.SpanID, len(s.RequestResource))
		}
	}
}

func TestWriterRefusesBatchRowsBeyondLimit(t *testing.T) {
	for _, o := range []WriterOptions{{BatchRows: arrowipc.MaxBatchRows + 1}, {MergedRows: arrowipc.MaxBatchRows + 1}} {
		o.Dir, o.Node, o.NoBackground = t.TempDir(), "n", true
		if w, err := OpenWriter(o); err == nil {
			w.Close()
			t.Errorf("OpenWriter accepted %+v", o)
		}
	}
}

// TestDamagedBatchNamedOthersAnswer: a batch value that made the old reader
// allocate 2 GB, written into a sealed shard, fails that shard's part of a
// query with an error naming the shard; the other shard answers.
func TestDamagedBatchNamedOthersAnswer(t *testing.T) {
	dir, spans, m := twoSealedShards(t)
	damaged := readCorpusEntry(t, "old-reader-alloc-metadata-2GiB")
	// As if the collector had written the damaged batch: the shard's
	// checksums match it, so the reader gets as far as decoding.
	bad := damageShard(t, dir, m, batchKey(0), damaged)

	if err := othersAnswer(t, dir, bad, spans); !errors.Is(err, arrowipc.ErrBatch) {
		t.Fatalf("want a malformed batch, got %v", err)
	} else {
		t.Logf("error: %v", err)
	}
}

// readCorpusEntry reads a []byte entry of the committed FuzzDecodeBatch corpus.
func readCorpusEntry(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("arrowipc", "testdata", "fuzz", "FuzzDecodeBatch", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a go test fuzz v1 []byte entry", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// TestManifestSizeLimit: a reader reads at most maxManifestBytes of a
// manifest; the same manifest one byte shorter is read.
func TestManifestSizeLimit(t *testing.T) {
	dir := t.TempDir()
	body := `{"version":1,"node":"n","shards":[]}`
	pad := strings.Repeat(" ", maxManifestBytes-len(body))
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(body+pad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readManifest(dir); err != nil {
		t.Fatalf("manifest of exactly %d bytes: %v", maxManifestBytes, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(body+pad+" "), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readManifest(dir); err == nil || !strings.Contains(err.Error(), "more than 16777216 bytes") {
		t.Fatalf("manifest of %d bytes: error %v", maxManifestBytes+1, err)
	}
}
