package arrowipc

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestMain limits the minimization of new interesting fuzz inputs to 100
// tries unless -fuzzminimizetime is given: with inputs of tens of KiB, Go's
// default of 60 s per input stalls `go test -fuzz FuzzDecodeBatch` at 0
// executions per second (docs/fuzzing.md).
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		flag.Set("test.fuzzminimizetime", "100x")
	}
	os.Exit(m.Run())
}

var t0 = spangen.FullStart

// fullSpan has every field set to a distinct non-zero value.
func fullSpan(i int) span.Span { return spangen.Full(i) }

func bookinfo(t testing.TB, n int) []span.Span {
	t.Helper()
	g := spangen.New(spangen.Config{Seed: 7, Start: t0, Interval: 20 * time.Millisecond})
	var out []span.Span
	for _, tr := range g.Next(n) {
		out = append(out, tr.Spans...)
	}
	return out
}

// TestWriteCorpus regenerates the committed seed corpus of FuzzDecodeBatch
// from real batches: ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite the testdata/fuzz/FuzzDecodeBatch seeds")
	}
	good := encodedBatch(t, append([]span.Span{fullSpan(0)}, bookinfo(t, 1)...))
	// seed-bookinfo and the seeds cut from it were written before the
	// seventh round of ADR 0004 (every buffer a zstd frame with a
	// checksum); seed-bookinfo-raw-buffers by the writer since (short
	// buffers stored raw, frames without checksum). Rewriting them writes
	// all with the current writer.
	seeds := map[string][]byte{
		"seed-bookinfo-raw-buffers": encodedBatch(t, append([]span.Span{fullSpan(1)}, bookinfo(t, 2)...)),
		"seed-bookinfo":             good,
		"seed-truncated":            good[:len(good)*2/3],
		"seed-flipped-body":         flip(good, len(good)-100),
		"seed-schema-only":          append(append([]byte(nil), schemaMessage...), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
