package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// encodeBatch writes rec as an Arrow IPC stream with zstd-compressed buffers.
func encodeBatch(rec arrow.Record) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(span.Schema), ipc.WithZstd(), ipc.WithDictionaryDeltas(false))
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("encoding batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encoding batch: %w", err)
	}
	return buf.Bytes(), nil
}

// Batch is one decoded record batch.
type Batch struct {
	rec arrow.Record
	*span.Record
}

// Release frees the batch's Arrow memory.
func (b *Batch) Release() { b.rec.Release() }

// DecodeBatch decodes the stored bytes of one batch. Any malformed input,
// including a panic inside the Arrow reader, becomes an error.
func DecodeBatch(b []byte) (batch *Batch, err error) {
	defer func() {
		if r := recover(); r != nil {
			batch, err = nil, fmt.Errorf("decoding batch: arrow reader panicked: %v", r)
		}
	}()
	if len(b) > maxBatchBytes {
		return nil, fmt.Errorf("decoding batch: %d bytes, more than %d", len(b), maxBatchBytes)
	}
	// The schema message of a version is always the same: compare bytes
	// instead of letting the flatbuffer decoder size allocations from
	// untrusted lengths.
	schema := -1
	for i, m := range schemaMessages {
		if bytes.HasPrefix(b, m) {
			schema = i
		}
	}
	if schema < 0 {
		if v := sniffVersion(b); v != "" {
			return nil, fmt.Errorf("decoding batch: %w %q: this reader reads %s", span.ErrSchemaVersion, v, span.SchemaVersions())
		}
		return nil, errors.New("decoding batch: not a span batch (schema message differs)")
	}
	mem := &cappedAllocator{limit: maxDecodedBytes}
	rd, err := ipc.NewReader(bytes.NewReader(b), ipc.WithSchema(span.Schemas[schema]), ipc.WithAllocator(mem))
	if err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	defer rd.Release()
	if !rd.Next() {
		if err := rd.Err(); err != nil {
			return nil, fmt.Errorf("decoding batch: %w", err)
		}
		return nil, errors.New("decoding batch: no record")
	}
	rec := rd.Record()
	if err := validate(rec); err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	r, err := span.NewRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	rec.Retain()
	return &Batch{rec: rec, Record: r}, nil
}

// validate runs Arrow's own full validation of every column, so that reading
// rows cannot index out of bounds.
func validate(rec arrow.Record) error {
	for i, c := range rec.Columns() {
		if c.Len() != int(rec.NumRows()) {
			return fmt.Errorf("column %d has %d rows, record %d", i, c.Len(), rec.NumRows())
		}
		if err := validateArray(c); err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

// validateArray checks buffer sizes and string offsets of the types the span
// schema uses.
func validateArray(a arrow.Array) error {
	d := a.Data()
	n := d.Len() + d.Offset()
	bufs := d.Buffers()
	need := func(i, size int) error {
		if i >= len(bufs) || bufs[i] == nil {
			if size == 0 {
				return nil
			}
			return fmt.Errorf("buffer %d missing", i)
		}
		if bufs[i].Len() < size {
			return fmt.Errorf("buffer %d has %d bytes, need %d", i, bufs[i].Len(), size)
		}
		return nil
	}
	switch t := a.DataType().(type) {
	case *arrow.DictionaryType:
		if err := need(1, n*4); err != nil {
			return err
		}
		dict := d.Dictionary()
		if dict == nil {
			return errors.New("dictionary missing")
		}
		da := array.MakeFromData(dict)
		defer da.Release()
		return validateArray(da)
	case *arrow.StringType:
		if err := need(1, (n+1)*4); err != nil {
			return err
		}
		offs := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())[:n+1]
		dataLen := 0
		if len(bufs) > 2 && bufs[2] != nil {
			dataLen = bufs[2].Len()
		}
		prev := offs[0]
		if prev < 0 {
			return errors.New("negative string offset")
		}
		for _, o := range offs[1:] {
			if o < prev {
				return errors.New("string offsets decrease")
			}
			prev = o
		}
		if int(prev) > dataLen {
			return fmt.Errorf("string offsets reach %d beyond %d data bytes", prev, dataLen)
		}
		return nil
	case *arrow.FixedSizeBinaryType:
		return need(1, n*t.ByteWidth)
	case arrow.FixedWidthDataType:
		return need(1, n*t.BitWidth()/8)
	}
	return fmt.Errorf("unexpected type %s", a.DataType())
}

// Limits for decoding untrusted batch bytes: a batch the writer makes is far
// below both; a forged length field cannot make the reader allocate more.
const (
	maxBatchBytes   = 64 << 20
	maxDecodedBytes = 512 << 20
)

var errTooLarge = errors.New("batch decodes to more memory than allowed")

// cappedAllocator is the Go allocator with a budget; exceeding it panics with
// errTooLarge, which DecodeBatch turns into an error.
type cappedAllocator struct {
	used, limit int
}

func (a *cappedAllocator) charge(n int) {
	if n < 0 || a.used+n > a.limit {
		panic(errTooLarge)
	}
	a.used += n
}

func (a *cappedAllocator) Allocate(size int) []byte {
	a.charge(size)
	return memory.DefaultAllocator.Allocate(size)
}

func (a *cappedAllocator) Reallocate(size int, b []byte) []byte {
	a.charge(size - len(b))
	return memory.DefaultAllocator.Reallocate(size, b)
}

func (a *cappedAllocator) Free(b []byte) { a.used -= len(b) }

// schemaMessages are the encoded schema messages a batch starts with, one
// per span.Schemas version; schemaMessage is the current one.
var schemaMessages = func() [][]byte {
	out := make([][]byte, len(span.Schemas))
	for i, s := range span.Schemas {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(s), ipc.WithZstd())
		if err := w.Close(); err != nil {
			panic(err)
		}
		b := buf.Bytes()
		out[i] = b[:len(b)-8] // without the end-of-stream marker
	}
	return out
}()

var schemaMessage = schemaMessages[len(schemaMessages)-1]

// sniffVersion finds the "span/N" value of the zerotrace.schema metadata in
// the first KiB of a batch whose schema message is not one this reader
// knows, so that a batch of a newer collector is named as such.
func sniffVersion(b []byte) string {
	b = b[:min(len(b), 1024)]
	if !bytes.Contains(b, []byte("zerotrace.schema")) {
		return ""
	}
	j := bytes.Index(b, []byte("span/"))
	if j < 0 {
		return ""
	}
	v := b[j:]
	n := len("span/")
	for n < len(v) && n < 12 && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	if n == len("span/") {
		return ""
	}
	return string(v[:n])
}
