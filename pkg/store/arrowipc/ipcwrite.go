package arrowipc

import (
	"encoding/binary"
	"sync"

	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// The writer's side of the stored batch format (see ipc.go): the same Arrow
// IPC stream Arrow's own writer makes with ipc.WithZstd, written here
// because Arrow's writer creates a new zstd encoder, with an 8 MiB window
// and its 16 MiB history, for every message it compresses: 15 per batch,
// ~49 MB allocated and cleared per 3,800-span batch, more CPU than the rest
// of ingest (issue 16). This writer compresses every buffer with one shared
// encoder and assembles the flatbuffer metadata itself.

// batchEnc compresses buffers; EncodeAll reuses its state between calls.
// No content checksum: the frames live in shard files whose SHA-256 a
// reader checks before parsing a byte (ADR 0002), and Badger's log
// checksums each entry of an unsealed head; a frame with a checksum (older
// writers) is still read and its checksum still checked. zstd's fastest
// level: in the collector the batches' zstd was a quarter of its CPU per
// span, and the default level's matches cost ~40% more of it for ~0.5
// bytes/span after merging (ADR 0004, seventh and eighth rounds).
var batchEnc = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err)
	}
	return e
})

// ipcWriter assembles batch streams; its buffers serve batch after batch.
type ipcWriter struct {
	out  []byte
	fb   *flatbuffers.Builder
	body []byte
	bufs [][2]int64 // offset, length in body
	node [][2]int64 // length, null count
}

// writeIPC encodes the spans in cols as the stored stream: the schema
// message, one dictionary batch per dictionary column (ids in field
// order), the record batch and the end-of-stream marker. The stream is a
// new slice (the caller keeps it); w's other buffers are reused.
func (w *ipcWriter) writeIPC(cols *span.Columns) []byte {
	if w.fb == nil {
		w.fb = flatbuffers.NewBuilder(4096)
	}
	w.out = append(make([]byte, 0, max(64<<10, len(w.out)+len(w.out)/8)), schemaMessage...)
	rows := cols.Len()
	// Dictionaries first, numbered in field order.
	id := int64(0)
	for i := 0; i < cols.NumColumns(); i++ {
		d := cols.Column(i)
		if d.Kind != span.ColumnDict {
			continue
		}
		w.reset()
		w.addStrings(d.Entries, d.Offsets, d.Data)
		w.message(ipcHeaderDict, int64(d.Entries), id)
		id++
	}
	w.reset()
	for i := 0; i < cols.NumColumns(); i++ {
		d := cols.Column(i)
		switch d.Kind {
		case span.ColumnString:
			w.addStrings(rows, d.Offsets, d.Data)
		default: // fixed-width values, dictionary indices
			w.node = append(w.node, [2]int64{int64(rows), 0})
			w.buffer(nil)
			w.buffer(d.Values)
		}
	}
	w.message(ipcHeaderRecord, int64(rows), 0)
	w.out = binary.LittleEndian.AppendUint32(w.out, ipcContinuation)
	w.out = binary.LittleEndian.AppendUint32(w.out, 0)
	return w.out
}

func (w *ipcWriter) reset() {
	w.body, w.bufs, w.node = w.body[:0], w.bufs[:0], w.node[:0]
}

// addStrings adds a utf8 array of n values: a field node, an empty
// validity buffer, the offsets (n+1, from 0) and the data; no rows, no
// buffers.
func (w *ipcWriter) addStrings(n int, offsets, data []byte) {
	w.node = append(w.node, [2]int64{int64(n), 0})
	w.buffer(nil)
	if n == 0 {
		w.buffer(nil)
		w.buffer(nil)
		return
	}
	w.buffer(offsets[:4*(n+1)])
	w.buffer(data)
}

// rawBelow: a buffer this short is stored uncompressed; a zstd frame of it
// takes more bytes than the buffer (a 12-byte dictionary offsets buffer:
// 25 bytes).
const rawBelow = 64

// rawSize is the size prefix of a buffer stored uncompressed (-1, the
// Arrow IPC format's marker, read by Arrow's reader and by DecodeBatch).
const rawSize = ^uint64(0)

// buffer appends b to the body behind its 8-byte size, zstd-compressed, or
// as it is behind rawSize when it is shorter than rawBelow or its frame
// would not be shorter than it; padded to 8 bytes. An empty b takes no
// bytes.
func (w *ipcWriter) buffer(b []byte) {
	start := len(w.body)
	if len(b) >= rawBelow {
		w.body = binary.LittleEndian.AppendUint64(w.body, uint64(len(b)))
		w.body = batchEnc().EncodeAll(b, w.body)
	}
	if len(b) > 0 && (len(b) < rawBelow || len(w.body)-start-8 >= len(b)) {
		w.body = binary.LittleEndian.AppendUint64(w.body[:start], rawSize)
		w.body = append(w.body, b...)
	}
	n := len(w.body) - start
	w.bufs = append(w.bufs, [2]int64{int64(start), int64(n)})
	for len(w.body)%8 != 0 {
		w.body = append(w.body, 0)
	}
}

// message appends a dictionary batch (dictionary id) or record batch
// message of rows rows holding the nodes and buffers added since reset
// (format/Message.fbs).
func (w *ipcWriter) message(header byte, rows, id int64) {
	b := w.fb
	b.Reset()
	bufs := pairVector(b, w.bufs)  // Buffer{offset, length}
	nodes := pairVector(b, w.node) // FieldNode{length, null_count}
	b.StartObject(2)               // BodyCompression
	b.PrependByteSlot(0, ipcCodecZstd, 0)
	comp := b.EndObject()
	b.StartObject(5) // RecordBatch
	b.PrependInt64Slot(0, rows, 0)
	b.PrependUOffsetTSlot(1, nodes, 0)
	b.PrependUOffsetTSlot(2, bufs, 0)
	b.PrependUOffsetTSlot(3, comp, 0)
	hdr := b.EndObject()
	if header == ipcHeaderDict {
		b.StartObject(3) // DictionaryBatch
		b.PrependInt64Slot(0, id, 0)
		b.PrependUOffsetTSlot(1, hdr, 0)
		hdr = b.EndObject()
	}
	b.StartObject(5) // Message
	b.PrependInt16Slot(0, ipcMetadataV5, 0)
	b.PrependByteSlot(1, header, 0)
	b.PrependUOffsetTSlot(2, hdr, 0)
	b.PrependInt64Slot(3, int64(len(w.body)), 0)
	b.Finish(b.EndObject())
	meta := b.FinishedBytes()
	// The continuation and length, then the metadata padded so the body
	// starts on 8 bytes.
	n := (len(meta) + 7) &^ 7
	w.out = binary.LittleEndian.AppendUint32(w.out, ipcContinuation)
	w.out = binary.LittleEndian.AppendUint32(w.out, uint32(n))
	w.out = append(w.out, meta...)
	for range n - len(meta) {
		w.out = append(w.out, 0)
	}
	w.out = append(w.out, w.body...)
}

// pairVector writes a vector of structs of two int64 fields (Buffer and
// FieldNode are both).
func pairVector(b *flatbuffers.Builder, v [][2]int64) flatbuffers.UOffsetT {
	b.StartVector(fbStructBufBytes, len(v), 8)
	for i := len(v) - 1; i >= 0; i-- {
		b.Prep(8, fbStructBufBytes)
		b.PrependInt64(v[i][1])
		b.PrependInt64(v[i][0])
	}
	return b.EndVector(len(v))
}
