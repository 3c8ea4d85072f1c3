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
	rd, err := ipc.NewReader(bytes.NewReader(b), ipc.WithSchema(span.Schema), ipc.WithAllocator(memory.DefaultAllocator))
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
