package store

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

// Annotated raw bytes of every index record type.
func TestIndexKeyBytes(t *testing.T) {
	k := unhex(`4b            ` + // 'K'
		`01               ` + // kind: req_tcp_seq
		`00000000 0001e240 ` + // value 123456
		`18987f06 6d1c0000 ` + // start_ns
		`00000007          ` + // batch 7
		`0000002a`) // row 42
	kind, v, r, err := parseCorrKey(k)
	if err != nil || kind != span.KeyReqTCPSeq || v != 123456 || r.batch != 7 || r.row != 42 || r.start != 0x18987f066d1c0000 {
		t.Fatalf("parseCorrKey: %v %v %v %+v", err, kind, v, r)
	}
	if got := corrKey(nil, kind, v, r); !bytes.Equal(got, k) {
		t.Fatalf("corrKey re-encodes as %x", got)
	}
	sk := unhex(`54 ` + // 'T'
		`cbf29ce484222325 ` + // namespace hash (FNV-1a of "")
		`0000000000000064 00000001 00000002`)
	ns, r, err := parseSearchKey(sk)
	if err != nil || ns != hashString("") || r.start != 100 || r.batch != 1 || r.row != 2 {
		t.Fatalf("parseSearchKey: %v %x %+v", err, ns, r)
	}
	sv := unhex(`0000000000000001 0000000000000002 ` + // service, endpoint hashes
		`02 03 06 ` + // protocol 2 = http2, status 3 = server_error, tap side 6 = s-p
		`00000000004c4b40`) // duration 5 ms
	f, err := parseSearchFields(sv)
	if err != nil || f.service != 1 || f.endpoint != 2 || f.protocol != 2 || f.status != 3 || f.tap != 6 || f.duration != 5_000_000 || f.workload != 0 {
		t.Fatalf("parseSearchFields (before span/2): %v %+v", err, f)
	}
	sv2 := append(append([]byte(nil), sv...), unhex(`00000000000000ff`)...) // + workload hash
	if f, err := parseSearchFields(sv2); err != nil || f.workload != 0xff || f.duration != 5_000_000 || !bytes.Equal(f.put(nil), sv2) {
		t.Fatalf("parseSearchFields: %v %+v", err, f)
	}
	wk := []byte("Wbookinfo\x00productpage")
	if ns, w, err := parseWorkloadKey(wk); err != nil || ns != "bookinfo" || w != "productpage" || !bytes.Equal(workloadKey(ns, w), wk) {
		t.Fatalf("parseWorkloadKey: %v %q %q", err, ns, w)
	}
	vk := []byte("Vbookinfo\x00reviews\x00GET /reviews/{id}\x00\x01")
	ve, err := parseValuesKey(vk)
	if err != nil || ve != (valueEntry{"bookinfo", "reviews", "GET /reviews/{id}", 1}) {
		t.Fatalf("parseValuesKey: %v %+v", err, ve)
	}
	if !bytes.Equal(valuesKey(ve), vk) {
		t.Fatal("valuesKey does not re-encode")
	}

	for name, bad := range map[string]func() error{
		"corr key short":       func() error { _, _, _, err := parseCorrKey(k[:25]); return err },
		"corr key wrong type":  func() error { _, _, _, err := parseCorrKey(append([]byte{'X'}, k[1:]...)); return err },
		"search key long":      func() error { _, _, err := parseSearchKey(append(sk, 0)); return err },
		"search value short":   func() error { _, err := parseSearchFields(sv[:10]); return err },
		"values key 2 fields":  func() error { _, err := parseValuesKey([]byte("Vns\x00svc\x00\x01")); return err },
		"values key 4 fields":  func() error { _, err := parseValuesKey([]byte("Va\x00b\x00c\x00d\x00\x01")); return err },
		"values key too short": func() error { _, err := parseValuesKey([]byte("V\x00")); return err },
		"batch key":            func() error { _, err := parseBatchKey([]byte("B\x00\x01")); return err },
		"search value 30":      func() error { _, err := parseSearchFields(sv2[:30]); return err },
		"workload key no sep":  func() error { _, _, err := parseWorkloadKey([]byte("Wbookinfo")); return err },
		"workload key 2 seps":  func() error { _, _, err := parseWorkloadKey([]byte("Wa\x00b\x00c")); return err },
	} {
		if err := bad(); !errors.Is(err, errKey) {
			t.Errorf("%s: error %v, want errKey", name, err)
		}
	}
}

func TestManifestBytes(t *testing.T) {
	good := `{"version":1,"node":"n","shards":[{"name":"h-1","min_ns":1,"max_ns":2,"spans":3,"batches":1,"bytes":10}]}`
	if m, err := ParseManifest([]byte(good)); err != nil || len(m.Shards) != 1 || m.Shards[0].Spans != 3 {
		t.Fatalf("good manifest: %v %+v", err, m)
	}
	for name, b := range map[string]string{
		"not json":       `{"version":1,`,
		"wrong version":  `{"version":9,"node":"n","shards":[]}`,
		"path traversal": `{"version":1,"node":"n","shards":[{"name":"../etc","min_ns":1,"max_ns":2}]}`,
		"nested path":    `{"version":1,"node":"n","shards":[{"name":"a/b","min_ns":1,"max_ns":2}]}`,
		"listed twice":   `{"version":1,"node":"n","shards":[{"name":"a","min_ns":1,"max_ns":2},{"name":"a","min_ns":1,"max_ns":2}]}`,
		"range inverted": `{"version":1,"node":"n","shards":[{"name":"a","min_ns":5,"max_ns":2}]}`,
		"file path":      `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"../MANIFEST","size":1,"sha256":"` + sum0 + `"}]}]}`,
		"file twice": `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"M","size":1,"sha256":"` + sum0 +
			`"},{"name":"M","size":1,"sha256":"` + sum0 + `"}]}]}`,
		"short sha256":  `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"M","size":1,"sha256":"abcd"}]}]}`,
		"negative size": `{"version":1,"node":"n","shards":[{"name":"a","files":[{"name":"M","size":-1,"sha256":"` + sum0 + `"}]}]}`,
	} {
		if _, err := ParseManifest([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// sum0 is the SHA-256 of no bytes.
const sum0 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

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
			if !errors.Is(err, errBatch) && !errors.Is(err, span.ErrSchema) && !errors.Is(err, span.ErrSchemaVersion) {
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

func FuzzIndexKeys(f *testing.F) {
	f.Add(corrKey(nil, span.KeyXRequestID, 99, ref{1, 2, 3}))
	f.Add(searchKey(nil, 5, ref{7, 8, 9}))
	f.Add(searchFields{service: 1, endpoint: 2, protocol: 3, status: 4, tap: 5, duration: 6, workload: 7}.put(nil))
	f.Add(searchFields{service: 1, endpoint: 2, protocol: 3, status: 4, tap: 5, duration: 6}.put(nil)[:searchVal])
	f.Add(workloadKey("bookinfo", "productpage"))
	f.Add(valuesKey(valueEntry{"ns", "svc", "GET /", 1}))
	f.Add(batchKey(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if kind, v, r, err := parseCorrKey(b); err == nil && !bytes.Equal(corrKey(nil, kind, v, r), b) {
			t.Fatalf("correlation key %x does not round-trip", b)
		}
		if ns, r, err := parseSearchKey(b); err == nil && !bytes.Equal(searchKey(nil, ns, r), b) {
			t.Fatalf("search key %x does not round-trip", b)
		}
		if f, err := parseSearchFields(b); err == nil && !bytes.Equal(f.put(nil)[:len(b)], b) {
			t.Fatalf("search value %x does not round-trip", b)
		}
		if ns, w, err := parseWorkloadKey(b); err == nil && !bytes.Equal(workloadKey(ns, w), b) {
			t.Fatalf("workload key %q does not round-trip", b)
		}
		if v, err := parseValuesKey(b); err == nil && !bytes.Equal(valuesKey(v), b) {
			t.Fatalf("values key %q does not round-trip", b)
		}
		if n, err := parseBatchKey(b); err == nil && !bytes.Equal(batchKey(n), b) {
			t.Fatalf("batch key %x does not round-trip", b)
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"h-1","min_ns":1,"max_ns":2,"spans":3}]}`))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"w-1","merged":true,"sources":["h-1","h-2"]}]}`))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"h-1","files":[{"name":"MANIFEST","size":0,"sha256":"` + sum0 + `"}]}]}`))
	f.Add([]byte(`{"version":1,"node":"n","shards":[{"name":"h-1","span_ids":["0001000000000002-0001000000000009","0002000000000000-0002000000000000"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, s := range m.Shards {
			if strings.ContainsAny(s.Name, `/\`) || s.Name == ".." {
				t.Fatalf("accepted shard name %q", s.Name)
			}
			if len(s.SpanIDs) > maxIDRanges {
				t.Fatalf("accepted %d span id ranges", len(s.SpanIDs))
			}
			for _, r := range s.SpanIDs {
				if r[1] < r[0] {
					t.Fatalf("accepted inverted span id range %v", r)
				}
			}
			for _, f := range s.Files {
				if strings.ContainsAny(f.Name, `/\`) || f.Name == ".." || len(f.SHA256) != 64 || f.Size < 0 {
					t.Fatalf("accepted file %+v", f)
				}
			}
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

func BenchmarkParseIndexKeys(b *testing.B) {
	k := corrKey(nil, span.KeyReqTCPSeq, 1, ref{1, 2, 3})
	for i := 0; i < b.N; i++ {
		if _, _, _, err := parseCorrKey(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseManifest(b *testing.B) {
	m := []byte(`{"version":1,"node":"n","shards":[{"name":"h-1","min_ns":1,"max_ns":2,"spans":3,"batches":1,"bytes":10,` +
		`"span_ids":["0001000000000002-0001000000000009","0002000000000000-0002000000000000"]}]}`)
	for i := 0; i < b.N; i++ {
		if _, err := ParseManifest(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatchOnly measures DecodeBatch without reading the rows.
func BenchmarkDecodeBatchOnly(b *testing.B) {
	benchDecode(b, encodedBatch(b, bookinfo(&testing.T{}, 100)), false)
}

// BenchmarkDecodeBatchLargest decodes the largest batch a writer makes:
// maxBatchRows rows whose request resources bring it close to
// maxDecodedBytes. It bounds the decode time of any accepted input.
func BenchmarkDecodeBatchLargest(b *testing.B) {
	spans := make([]span.Span, maxBatchRows)
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
	enc := newBatchEncoder()
	for _, enc := range []struct {
		name string
		f    func([]span.Span) ([]byte, error)
	}{{"writeIPC", enc.encode}, {"arrow", func(spans []span.Span) ([]byte, error) {
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
