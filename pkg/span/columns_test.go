package span

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// randomSpan sets every field of a span from rnd, each string from a small
// set (so dictionaries repeat values) or empty, addresses IPv4, IPv6 or
// unknown.
func randomSpan(rnd *rand.Rand) Span {
	var s Span
	v := reflect.ValueOf(&s).Elem()
	strs := []string{"", "a", "bookinfo", "reviews-v2", "GET /reviews/{id}", "é\x00ß", "x"}
	addrs := []netip.Addr{{}, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::7"), netip.MustParseAddr("::ffff:10.1.2.3")}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(strs[rnd.IntN(len(strs))])
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(rnd.Uint64())
		case reflect.Int32, reflect.Int64:
			f.SetInt(int64(rnd.Uint64()))
		case reflect.Array: // TraceID
			for j := 0; j < f.Len(); j++ {
				f.Index(j).SetUint(uint64(rnd.IntN(256)))
			}
		default:
			if f.Type() == reflect.TypeOf(netip.Addr{}) {
				f.Set(reflect.ValueOf(addrs[rnd.IntN(len(addrs))]))
			} else {
				panic(fmt.Sprintf("field %s of kind %s", v.Type().Field(i).Name, f.Kind()))
			}
		}
	}
	return s
}

// TestColumnsMatchArrow: for the same spans, Columns holds exactly the
// buffers of the record Arrow's builders make (values, string offsets and
// bytes, dictionary indices and dictionaries), also when reused after
// Reset, with the spans given one by one (Append) or in slices of 0 to 100
// spans (AppendSpans: chunks of appendChunk and a rest).
func TestColumnsMatchArrow(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	c := NewColumns()
	b := NewBuilder(nil)
	defer b.Release()
	for round, n := range []int{1, 300, 0, 17, 300, 1000, 1, 64} {
		c.Reset()
		spans := make([]Span, n)
		for i := range spans {
			spans[i] = randomSpan(rnd)
			b.Append(&spans[i])
		}
		if round < 4 {
			for i := range spans {
				c.Append(&spans[i])
			}
		} else {
			for rest := spans; len(rest) > 0; {
				k := min(len(rest), rnd.IntN(101))
				c.AppendSpans(rest[:k])
				rest = rest[k:]
			}
		}
		rec := b.NewRecord()
		if c.Len() != n || int(rec.NumRows()) != n || c.NumColumns() != int(rec.NumCols()) {
			t.Fatalf("round %d: %d rows, %d columns; Arrow %d rows, %d columns", round, c.Len(), c.NumColumns(), rec.NumRows(), rec.NumCols())
		}
		for i := 0; i < c.NumColumns(); i++ {
			d, a := c.Column(i), rec.Column(i)
			name := rec.ColumnName(i)
			switch arr := a.(type) {
			case *array.Dictionary:
				dict := arr.Dictionary().(*array.String)
				if d.Kind != ColumnDict || d.Entries != dict.Len() || !bytes.Equal(d.Values, fixedBytes(arr.Indices(), 4)) {
					t.Fatalf("round %d, %s: indices differ (%d entries, Arrow %d)", round, name, d.Entries, dict.Len())
				}
				if !bytes.Equal(d.Offsets, offsetBytes(dict)) || !bytes.Equal(d.Data, dict.ValueBytes()) {
					t.Fatalf("round %d, %s: dictionary differs", round, name)
				}
			case *array.String:
				want := offsetBytes(arr)
				if n == 0 {
					want = nil
				}
				if d.Kind != ColumnString || !bytes.Equal(d.Offsets, want) || !bytes.Equal(d.Data, arr.ValueBytes()) {
					t.Fatalf("round %d, %s: strings differ", round, name)
				}
			default:
				w := a.DataType().(arrow.FixedWidthDataType).BitWidth() / 8
				if d.Kind != ColumnFixed || d.Width != w || !bytes.Equal(d.Values, fixedBytes(a, w)) {
					t.Fatalf("round %d, %s: values differ", round, name)
				}
			}
		}
		if got := c.DecodedBytes(); n > 0 && got < n*c.NumColumns() {
			t.Fatalf("round %d: DecodedBytes %d for %d rows", round, got, n)
		}
		rec.Release()
	}
}

func fixedBytes(a arrow.Array, w int) []byte {
	if a.Len() == 0 {
		return nil
	}
	return a.Data().Buffers()[1].Bytes()[a.Data().Offset()*w : (a.Data().Offset()+a.Len())*w]
}

func offsetBytes(a *array.String) []byte {
	if a.Len() == 0 && len(a.ValueOffsets()) == 0 {
		return []byte{0, 0, 0, 0}
	}
	return arrow.Int32Traits.CastToBytes(a.ValueOffsets()[:a.Len()+1])
}

// benchSpans are the benchmarks' 4,096 spans of every field.
func benchSpans() []Span {
	rnd := rand.New(rand.NewPCG(5, 6))
	spans := make([]Span, 4096)
	for i := range spans {
		spans[i] = randomSpan(rnd)
	}
	return spans
}

// BenchmarkColumnsAppend appends spans of every field to reused columns
// (Arrow's builders, the peer, in BenchmarkBuilderAppend).
func BenchmarkColumnsAppend(b *testing.B) {
	spans := benchSpans()
	c := NewColumns()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%len(spans) == 0 {
			c.Reset()
		}
		c.Append(&spans[i%len(spans)])
	}
}

// BenchmarkColumnsAppendSpans appends 4,096 spans of every field at once,
// as the store's batch encoder does (ns/op per batch, ns/span reported).
func BenchmarkColumnsAppendSpans(b *testing.B) {
	spans := benchSpans()
	c := NewColumns()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Reset()
		c.AppendSpans(spans)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}

func BenchmarkBuilderAppend(b *testing.B) {
	spans := benchSpans()
	bld := NewBuilder(nil)
	defer bld.Release()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%len(spans) == 0 {
			bld.NewRecord().Release()
		}
		bld.Append(&spans[i%len(spans)])
	}
}
