package arrowipc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Encoder encodes spans as stored batches: Arrow IPC streams with
// zstd-compressed buffers (writeIPC). Its columns and buffers serve batch
// after batch, so encoding allocates the stream it returns and little
// else. Not safe for concurrent use.
type Encoder struct {
	cols *span.Columns
	ipc  ipcWriter
}

// NewEncoder returns an encoder for batch after batch.
func NewEncoder() *Encoder { return &Encoder{cols: span.NewColumns()} }

// Encode returns the stored stream of spans (a new slice). A batch beyond
// the decoding limits gives an error wrapping ErrTooLarge.
func (e *Encoder) Encode(spans []span.Span) ([]byte, error) {
	e.cols.Reset()
	e.cols.AppendSpans(spans)
	v := e.ipc.writeIPC(e.cols)
	// A batch the reader would refuse is never written: the caller cuts it
	// in two (pkg/store's shardWriter.prepare).
	if _, err := planBatch(v); err != nil {
		return nil, fmt.Errorf("encoding batch of %d rows: %w: %w", len(spans), ErrTooLarge, err)
	}
	return v, nil
}

// ErrTooLarge reports a record beyond the reader's limits.
var ErrTooLarge = errors.New("batch beyond the decoding limits")

// Batch is one decoded record batch.
type Batch struct {
	rec arrow.Record
	*span.Record
}

// Release frees the batch's Arrow memory.
func (b *Batch) Release() { b.rec.Release() }

// Retain keeps the batch readable after a Release (one Release per
// Retain): its columns are Go memory, which the garbage collector frees
// once nothing points at them.
func (b *Batch) Retain() { b.rec.Retain() }

// DecodeBatch decodes the stored bytes of one batch. Malformed bytes give an
// error wrapping ErrBatch, after bounded work: see planBatch for the checks
// made before anything is allocated or decompressed.
func DecodeBatch(b []byte) (batch *Batch, err error) {
	defer func() {
		// Every read is checked; this is the last line of defence.
		if r := recover(); r != nil {
			batch, err = nil, fmt.Errorf("decoding batch: %w: panic: %v", ErrBatch, r)
		}
	}()
	p, err := planBatch(b)
	if err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	rec, err := p.record()
	if err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	r, err := span.NewRecord(rec)
	if err != nil {
		rec.Release()
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	return &Batch{rec: rec, Record: r}, nil
}

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
