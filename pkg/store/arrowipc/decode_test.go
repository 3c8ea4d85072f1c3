package arrowipc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// recordOf builds the Arrow record of spans; the caller releases it.
func recordOf(spans []span.Span) arrow.Record {
	b := span.NewBuilder(nil)
	defer b.Release()
	for i := range spans {
		b.Append(&spans[i])
	}
	return b.NewRecord()
}

// arrowIPC encodes rec with Arrow's own IPC writer, as encodeBatch did
// before writeIPC.
func arrowIPC(rec arrow.Record) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(span.Schema), ipc.WithZstd(), ipc.WithDictionaryDeltas(false))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	err := w.Close()
	return buf.Bytes(), err
}

// encodeBatch encodes spans as one stored batch.
func encodeBatch(spans []span.Span) ([]byte, error) { return NewEncoder().Encode(spans) }

func encodedBatch(tb testing.TB, spans []span.Span) []byte {
	v, err := encodeBatch(spans)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestDecodeBatchErrors(t *testing.T) {
	good := encodedBatch(t, []span.Span{fullSpan(0), fullSpan(1)})
	b, err := DecodeBatch(good)
	if err != nil || b.Len() != 2 {
		t.Fatalf("good batch: %v", err)
	}
	b.Release()
	for name, in := range map[string][]byte{
		"empty":            nil,
		"truncated":        good[:len(good)/2],
		"garbage":          []byte("\xff\xff\xff\xff\x10\x00\x00\x00garbage"),
		"flipped byte":     flip(good, len(good)/3),
		"schema only":      good[:200],
		"last byte cut":    good[:len(good)-1],
		"zstd body broken": flip(good, len(good)-40),
	} {
		if b, err := DecodeBatch(in); err == nil {
			// A flipped byte inside a value can still decode to a valid
			// batch; it must then read without panicking.
			b.All()
			b.Release()
			if name == "empty" || name == "garbage" || name == "truncated" {
				t.Errorf("%s: decoded", name)
			}
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}

// The budget FuzzDecodeBatch holds every input under 1 MiB to (issue 18):
// decoding finishes in under 50 ms and allocates under 64 MiB. The time is
// wall time, which a loaded machine or a GC pause can stretch, so an input
// over the time budget is decoded again, up to five times in all, and fails
// only if every attempt is over: a slow input is slow every time.
const (
	budgetInputBytes = 1 << 20
	budgetTime       = 50 * time.Millisecond
	budgetAlloc      = 64 << 20
	budgetAttempts   = 5
)

// decodeWithinBudget decodes b and fails t if b is under budgetInputBytes and
// the decode is over the time or allocation budget.
func decodeWithinBudget(t *testing.T, b []byte) (*Batch, error) {
	var best time.Duration
	for attempt := 0; ; attempt++ {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		batch, err := DecodeBatch(b)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		recordSlowest(took, len(b), after.TotalAlloc-before.TotalAlloc)
		if len(b) >= budgetInputBytes {
			return batch, err
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > budgetAlloc {
			t.Fatalf("decoding %d bytes allocated %d bytes, budget %d (err %v)", len(b), alloc, budgetAlloc, err)
		}
		if attempt == 0 || took < best {
			best = took
		}
		if best < budgetTime {
			return batch, err
		}
		if attempt == budgetAttempts-1 {
			t.Fatalf("decoding %d bytes took at least %v in %d attempts, budget %v (err %v)", len(b), best, budgetAttempts, budgetTime, err)
		}
		if err == nil {
			batch.Release()
		}
	}
}

// slowest is this process's longest decode; with ZT_DECODE_SLOWEST=dir each
// fuzz worker keeps its longest in dir/decode-<pid> (docs/fuzzing.md).
var slowest time.Duration

func recordSlowest(took time.Duration, n int, alloc uint64) {
	dir := os.Getenv("ZT_DECODE_SLOWEST")
	if dir == "" || took <= slowest {
		return
	}
	slowest = took
	line := fmt.Sprintf("%v %d bytes %d allocated\n", took, n, alloc)
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("decode-%d", os.Getpid())), []byte(line), 0o644)
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodedBatch(f, []span.Span{fullSpan(0)}))
	f.Add(encodedBatch(f, bookinfo(&testing.T{}, 1)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := decodeWithinBudget(t, b)
		if err != nil {
			if !errors.Is(err, ErrBatch) && !errors.Is(err, span.ErrSchema) && !errors.Is(err, span.ErrSchemaVersion) {
				t.Fatalf("error %q is neither a malformed batch, a schema mismatch nor an unknown version", err)
			}
			return
		}
		defer batch.Release()
		spans := batch.All()
		// A batch that decodes re-encodes to the same spans.
		again, err := DecodeBatch(encodedBatch(t, spans))
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		defer again.Release()
		if again.Len() != len(spans) {
			t.Fatalf("re-encoded batch has %d rows, want %d", again.Len(), len(spans))
		}
	})
}

func BenchmarkDecodeBatch(b *testing.B) {
	spans := bookinfo(&testing.T{}, 100) // 3800 spans
	benchDecode(b, encodedBatch(b, spans), true)
	b.ReportMetric(float64(len(spans)*b.N)/b.Elapsed().Seconds(), "spans/s")
}

// benchDecode decodes v b.N times, reading every row if rows.
func benchDecode(b *testing.B, v []byte, rows bool) {
	b.SetBytes(int64(len(v)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch, err := DecodeBatch(v)
		if err != nil {
			b.Fatal(err)
		}
		if rows {
			batch.All()
		}
		batch.Release()
	}
}

// BenchmarkDecodeBatchOnly measures DecodeBatch without reading the rows.
func BenchmarkDecodeBatchOnly(b *testing.B) {
	benchDecode(b, encodedBatch(b, bookinfo(&testing.T{}, 100)), false)
}

// BenchmarkDecodeBatchLargest decodes the largest batch a writer makes:
// MaxBatchRows rows whose request resources bring it close to
// MaxDecodedBytes. It bounds the decode time of any accepted input.
func BenchmarkDecodeBatchLargest(b *testing.B) {
	spans := make([]span.Span, MaxBatchRows)
	for i := range spans {
		spans[i] = fullSpan(i)
		spans[i].RequestResource = fmt.Sprintf("/%d/%s", i, strings.Repeat("r", 900))
	}
	v := encodedBatch(b, spans)
	p, err := planBatch(v)
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, v, false)
	b.ReportMetric(float64(p.decoded)/(1<<20), "decoded-MiB")
	b.ReportMetric(float64(len(v))/(1<<20), "stored-MiB")
}

// TestDecodeBatchVersions: a batch a span/1 collector wrote
// (testdata/span1-batch.arrow: fullSpan(0) and one Bookinfo request, encoded
// by the code of commit fbf9b18) still decodes; a batch of an unknown version
// is refused by name.
func TestDecodeBatchVersions(t *testing.T) {
	v1, err := os.ReadFile(filepath.Join("testdata", "span1-batch.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(v1, schemaMessages[0]) {
		t.Fatal("the seed is not a span/1 batch")
	}
	b, err := DecodeBatch(v1)
	if err != nil {
		t.Fatalf("span/1 batch: %v", err)
	}
	defer b.Release()
	spans := b.All()
	if want := 1 + len(bookinfo(t, 1)); len(spans) != want || spans[0] != fullSpan(0) {
		t.Fatalf("span/1 batch: %d spans (want %d), first\n %+v\nwant %+v", len(spans), want, spans[0], fullSpan(0))
	}

	md := arrow.NewMetadata([]string{"zerotrace.schema"}, []string{"span/9"})
	sb := span.NewBuilder(nil)
	defer sb.Release()
	sb.Append(&spans[0])
	rec := sb.NewRecord()
	defer rec.Release()
	v9 := array.NewRecord(arrow.NewSchema(span.Schema.Fields(), &md), rec.Columns(), rec.NumRows())
	defer v9.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(v9.Schema()), ipc.WithZstd())
	if err := w.Write(v9); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, err = DecodeBatch(buf.Bytes())
	if !errors.Is(err, span.ErrSchemaVersion) || !strings.Contains(err.Error(), `"span/9"`) {
		t.Fatalf("span/9 batch: %v", err)
	}
}

// BenchmarkEncodeBatch encodes 3,800 Bookinfo spans as the stored stream:
// with the writer's batch encoder (span.Columns and writeIPC, reused from
// batch to batch) and, as the peer, with Arrow's record builder and its own
// IPC writer (which encodeBatch used before issue 16).
func BenchmarkEncodeBatch(b *testing.B) {
	spans := bookinfo(b, 100)
	enc := NewEncoder()
	for _, enc := range []struct {
		name string
		f    func([]span.Span) ([]byte, error)
	}{{"writeIPC", enc.Encode}, {"arrow", func(spans []span.Span) ([]byte, error) {
		rec := recordOf(spans)
		defer rec.Release()
		return arrowIPC(rec)
	}}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for i := 0; i < b.N; i++ {
				v, err := enc.f(spans)
				if err != nil {
					b.Fatal(err)
				}
				n = len(v)
			}
			b.ReportMetric(float64(n)/float64(len(spans)), "bytes/span")
			b.ReportMetric(float64(len(spans)*b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
