package arrowipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/klauspost/compress/zstd"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// A stored batch is an Arrow IPC stream: the schema message, one dictionary
// batch per dictionary column, one record batch and the end-of-stream marker,
// every buffer zstd-compressed behind its 8-byte decompressed size. Arrow's
// own reader sizes allocations and zstd windows from lengths in the bytes
// (a forged metadata length made it allocate gigabytes), so batches are read
// here in two passes: the first checks every length, count and offset against
// the bytes present and the limits below and sums the declared decompressed
// sizes; only then does the second allocate and decompress, each buffer into
// exactly its declared size.

// Limits for decoding untrusted batch bytes. pkg/store's writer never makes a
// batch beyond them (it refuses larger BatchRows/MergedRows and cuts a batch in two
// when it would decode to more than MaxDecodedBytes).
const (
	MaxBatchRows    = 1 << 15  // rows of a record batch, entries of a dictionary
	maxMetaBytes    = 64 << 10 // flatbuffer metadata of one message (a record batch's is ~3 KiB)
	MaxDecodedBytes = 48 << 20 // all buffers of a batch, decompressed
	maxBatchBytes   = MaxDecodedBytes
)

// ErrBatch marks every way the bytes of a batch can be malformed.
var ErrBatch = errors.New("malformed batch")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBatch, fmt.Sprintf(format, args...))
}

// Arrow IPC constants (format/Message.fbs, format/Schema.fbs).
const (
	ipcContinuation   = 0xFFFFFFFF
	ipcMetadataV5     = 4
	ipcHeaderDict     = 2
	ipcHeaderRecord   = 3
	ipcCodecZstd      = 1
	fbStructNodeBytes = 16 // FieldNode{length, null_count int64}
	fbStructBufBytes  = 16 // Buffer{offset, length int64}
)

// colLayout is how one schema column is stored.
type colLayout struct {
	name  string
	typ   arrow.DataType
	width int  // bytes per value of fixed-width columns and dictionary indices
	str   bool // utf8: offsets and data buffers
	dict  int  // dictionary id, -1 if none
}

// schemaLayout is a schema version's storage: its columns, and dictColumn
// maps a dictionary id to its column (the Arrow writer numbers dictionaries
// in field order from 0).
type schemaLayout struct {
	schema     *arrow.Schema
	layout     []colLayout
	dictColumn []int
}

// layouts are the storage of span.Schemas, by version index.
var layouts = func() []schemaLayout {
	out := make([]schemaLayout, len(span.Schemas))
	for i, s := range span.Schemas {
		l, dc := layoutOf(s)
		out[i] = schemaLayout{s, l, dc}
	}
	return out
}()

func layoutOf(schema *arrow.Schema) ([]colLayout, []int) {
	var l []colLayout
	var dc []int
	for i, f := range schema.Fields() {
		c := colLayout{name: f.Name, typ: f.Type, dict: -1}
		switch t := f.Type.(type) {
		case *arrow.DictionaryType:
			c.width, c.dict = 4, len(dc)
			dc = append(dc, i)
		case *arrow.StringType:
			c.str = true
		case arrow.FixedWidthDataType:
			c.width = t.BitWidth() / 8
		default:
			panic(fmt.Sprintf("store: no layout for column %s %s", f.Name, f.Type))
		}
		l = append(l, c)
	}
	return l, dc
}

// stringBuffers is 3: validity, offsets, data; fixed width has 2: validity, values.
func (c colLayout) buffers() int {
	if c.str {
		return 3
	}
	return 2
}

// plannedBuffer is one buffer checked by the first pass.
type plannedBuffer struct {
	src  []byte // the stored bytes after the size prefix
	size int    // declared decompressed size, already within limits
	raw  bool   // stored uncompressed
}

// plannedArray is one string or fixed-width array: values (fixed width) or
// offsets and data (utf8).
type plannedArray struct {
	rows int
	bufs [2]plannedBuffer
}

// batchPlan is the first pass's result.
type batchPlan struct {
	rows    int
	cols    []plannedArray // per column, in schema order
	dicts   []plannedArray // per dictionary id
	decoded int            // sum of declared decompressed sizes
	schema  *schemaLayout  // the batch's schema version
}

// planBatch is the first pass: it checks the whole stream and decompresses
// nothing.
func planBatch(b []byte) (*batchPlan, error) {
	if len(b) > maxBatchBytes {
		return nil, badf("%d bytes, more than %d", len(b), maxBatchBytes)
	}
	// The schema message of a version is always the same: compare bytes
	// instead of parsing it.
	version := -1
	for i, m := range schemaMessages {
		if bytes.HasPrefix(b, m) {
			version = i
		}
	}
	if version < 0 {
		if v := sniffVersion(b); v != "" {
			return nil, fmt.Errorf("%w %q: this reader reads %s", span.ErrSchemaVersion, v, span.SchemaVersions())
		}
		return nil, badf("not a span batch (schema message differs)")
	}
	sl := &layouts[version]
	layout, dictColumn := sl.layout, sl.dictColumn
	p := &batchPlan{rows: -1, dicts: make([]plannedArray, len(dictColumn)), schema: sl}
	seen := make([]bool, len(dictColumn))
	budget := MaxDecodedBytes
	pos := len(schemaMessages[version])
	for {
		m, next, err := nextMessage(b, pos)
		if err != nil {
			return nil, err
		}
		if m == nil {
			pos = next
			break
		}
		if p.rows >= 0 {
			return nil, badf("message at byte %d after the record batch", pos)
		}
		switch m.header {
		case ipcHeaderDict:
			if m.delta {
				return nil, badf("message at byte %d: dictionary delta", pos)
			}
			if m.dictID < 0 || m.dictID >= int64(len(dictColumn)) {
				return nil, badf("message at byte %d: dictionary id %d, want 0..%d", pos, m.dictID, len(dictColumn)-1)
			}
			if seen[m.dictID] {
				return nil, badf("message at byte %d: dictionary %d twice", pos, m.dictID)
			}
			seen[m.dictID] = true
			name := "dictionary of " + layout[dictColumn[m.dictID]].name
			rows, err := m.batch.check(name, 1, 3)
			if err != nil {
				return nil, err
			}
			if p.dicts[m.dictID], err = m.batch.array(name, 0, 0, colLayout{str: true}, rows, &budget); err != nil {
				return nil, err
			}
		case ipcHeaderRecord:
			nbuf := 0
			for _, c := range layout {
				nbuf += c.buffers()
			}
			rows, err := m.batch.check("record batch", len(layout), nbuf)
			if err != nil {
				return nil, err
			}
			p.rows = rows
			p.cols = make([]plannedArray, len(layout))
			buf := 0
			for i, c := range layout {
				if p.cols[i], err = m.batch.array("column "+c.name, i, buf, c, rows, &budget); err != nil {
					return nil, err
				}
				buf += c.buffers()
			}
		}
		pos = next
	}
	if p.rows < 0 {
		return nil, badf("no record batch")
	}
	if pos != len(b) {
		return nil, badf("%d bytes after the end-of-stream marker", len(b)-pos)
	}
	for id, ok := range seen {
		if !ok {
			return nil, badf("dictionary of %s missing", layout[dictColumn[id]].name)
		}
	}
	p.decoded = MaxDecodedBytes - budget
	return p, nil
}

// ipcMessage is a dictionary or record batch message.
type ipcMessage struct {
	header byte
	dictID int64
	delta  bool
	batch  recordBatch
}

// nextMessage reads the message at pos; nil at the end-of-stream marker,
// with next just after it.
func nextMessage(b []byte, pos int) (*ipcMessage, int, error) {
	if len(b)-pos < 8 {
		return nil, 0, badf("message at byte %d: %d bytes left, want a continuation marker and a length", pos, len(b)-pos)
	}
	if binary.LittleEndian.Uint32(b[pos:]) != ipcContinuation {
		return nil, 0, badf("message at byte %d: no continuation marker", pos)
	}
	n := int64(int32(binary.LittleEndian.Uint32(b[pos+4:])))
	pos += 8
	if n == 0 {
		return nil, pos, nil
	}
	if n < 0 || n > maxMetaBytes || n > int64(len(b)-pos) {
		return nil, 0, badf("message at byte %d: metadata of %d bytes, %d present, limit %d", pos-8, n, len(b)-pos, maxMetaBytes)
	}
	at := pos - 8
	meta := b[pos : pos+int(n)]
	pos += int(n)
	msg, err := fbRoot(meta)
	if err != nil {
		return nil, 0, badf("message at byte %d: %v", at, err)
	}
	version, err := msg.scalar(0, 2)
	if err != nil {
		return nil, 0, badf("message at byte %d: version: %v", at, err)
	}
	if version != ipcMetadataV5 {
		return nil, 0, badf("message at byte %d: metadata version %d, want %d", at, version, ipcMetadataV5)
	}
	htype, err := msg.scalar(1, 1)
	if err != nil {
		return nil, 0, badf("message at byte %d: header type: %v", at, err)
	}
	hdr, err := msg.table(2)
	if err != nil {
		return nil, 0, badf("message at byte %d: header: %v", at, err)
	}
	bodyLen, err := msg.scalar(3, 8)
	if err != nil {
		return nil, 0, badf("message at byte %d: body length: %v", at, err)
	}
	if int64(bodyLen) < 0 || int64(bodyLen) > int64(len(b)-pos) {
		return nil, 0, badf("message at byte %d: body of %d bytes, %d present", at, int64(bodyLen), len(b)-pos)
	}
	body := b[pos : pos+int(bodyLen)]
	pos += int(bodyLen)

	m := &ipcMessage{header: byte(htype)}
	rb := hdr
	switch htype {
	case ipcHeaderDict:
		id, err := hdr.scalar(0, 8)
		if err != nil {
			return nil, 0, badf("message at byte %d: dictionary id: %v", at, err)
		}
		delta, err := hdr.scalar(2, 1)
		if err != nil {
			return nil, 0, badf("message at byte %d: dictionary delta: %v", at, err)
		}
		m.dictID, m.delta = int64(id), delta != 0
		if rb, err = hdr.table(1); err != nil {
			return nil, 0, badf("message at byte %d: dictionary data: %v", at, err)
		}
	case ipcHeaderRecord:
	default:
		return nil, 0, badf("message at byte %d: header type %d, want a dictionary or record batch", at, htype)
	}
	m.batch = recordBatch{at: at, t: rb, body: body}
	return m, pos, nil
}

// recordBatch is a RecordBatch table and its message body.
type recordBatch struct {
	at    int // message offset, for errors
	t     fbTable
	body  []byte
	nodes []byte
	bufs  []byte
}

// check reads the row count, field nodes, buffers and compression and checks
// their counts; it returns the row count.
func (r *recordBatch) check(what string, nodes, bufs int) (int, error) {
	fail := func(format string, args ...any) (int, error) {
		return 0, badf("%s (message at byte %d): %s", what, r.at, fmt.Sprintf(format, args...))
	}
	rows, err := r.t.scalar(0, 8)
	if err != nil {
		return fail("length: %v", err)
	}
	if int64(rows) < 0 || int64(rows) > MaxBatchRows {
		return fail("%d rows, limit %d", int64(rows), MaxBatchRows)
	}
	var n int
	if r.nodes, n, err = r.t.structs(1, fbStructNodeBytes); err != nil {
		return fail("field nodes: %v", err)
	}
	if n != nodes {
		return fail("%d field nodes, want %d", n, nodes)
	}
	if r.bufs, n, err = r.t.structs(2, fbStructBufBytes); err != nil {
		return fail("buffers: %v", err)
	}
	if n != bufs {
		return fail("%d buffers, want %d", n, bufs)
	}
	comp, err := r.t.table(3)
	if err != nil {
		return fail("compression: %v", err)
	}
	if comp.buf == nil {
		return fail("buffers not compressed")
	}
	codec, err := comp.scalar(0, 1)
	if err != nil {
		return fail("compression codec: %v", err)
	}
	method, err := comp.scalar(1, 1)
	if err != nil {
		return fail("compression method: %v", err)
	}
	if codec != ipcCodecZstd || method != 0 {
		return fail("compression codec %d method %d, want zstd (1) per buffer (0)", codec, method)
	}
	if _, n, err := r.t.structs(4, 8); err != nil || n != 0 {
		return fail("variadic buffer counts present")
	}
	return int(rows), nil
}

// array checks field node i and the buffers from buf on of a column laid
// out as c with rows rows, and charges their declared sizes to budget.
func (r *recordBatch) array(what string, node, buf int, c colLayout, rows int, budget *int) (plannedArray, error) {
	a := plannedArray{rows: rows}
	nd := r.nodes[node*fbStructNodeBytes:]
	if l := int64(binary.LittleEndian.Uint64(nd)); l != int64(rows) {
		return a, badf("%s: %d values in a batch of %d", what, l, rows)
	}
	if nulls := int64(binary.LittleEndian.Uint64(nd[8:])); nulls != 0 {
		return a, badf("%s: %d nulls", what, nulls)
	}
	// The validity bitmap (buffer buf) is not read: there are no nulls.
	if _, err := r.buffer(what+" validity", buf, 0, math.MaxInt, nil); err != nil {
		return a, err
	}
	var err error
	if !c.str {
		need := rows * c.width
		a.bufs[0], err = r.buffer(what+" values", buf+1, need, need+64, budget)
		return a, err
	}
	need := 0
	if rows > 0 {
		need = (rows + 1) * 4
	}
	if a.bufs[0], err = r.buffer(what+" offsets", buf+1, need, need+64, budget); err != nil {
		return a, err
	}
	a.bufs[1], err = r.buffer(what+" data", buf+2, 0, math.MaxInt, budget)
	return a, err
}

// buffer checks buffer i: its place in the body, its declared size within
// [lo, hi] and the budget, and that a zstd frame header agrees. A buffer
// without a budget is only located, never decoded.
func (r *recordBatch) buffer(what string, i, lo, hi int, budget *int) (plannedBuffer, error) {
	d := r.bufs[i*fbStructBufBytes:]
	off, n := int64(binary.LittleEndian.Uint64(d)), int64(binary.LittleEndian.Uint64(d[8:]))
	if off < 0 || n < 0 || off > int64(len(r.body)) || n > int64(len(r.body))-off {
		return plannedBuffer{}, badf("%s: bytes %d+%d outside the %d-byte body", what, off, n, len(r.body))
	}
	if n == 0 {
		if lo > 0 {
			return plannedBuffer{}, badf("%s: empty, want %d bytes", what, lo)
		}
		return plannedBuffer{}, nil
	}
	if n < 8 {
		return plannedBuffer{}, badf("%s: %d bytes, shorter than its size prefix", what, n)
	}
	src := r.body[off+8 : off+n]
	p := plannedBuffer{src: src}
	if size := int64(binary.LittleEndian.Uint64(r.body[off:])); size == -1 {
		p.raw, p.size = true, len(src)
	} else if size < 0 || size > int64(MaxDecodedBytes) {
		return p, badf("%s: declares %d decompressed bytes", what, size)
	} else {
		p.size = int(size)
	}
	if budget == nil {
		return p, nil
	}
	if p.size < lo || p.size > hi {
		return p, badf("%s: declares %d bytes, want %d to %d", what, p.size, lo, hi)
	}
	if *budget -= p.size; *budget < 0 {
		return p, badf("%s: the batch decodes to more than %d bytes", what, MaxDecodedBytes)
	}
	if !p.raw && p.size > 0 {
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return p, badf("%s: zstd frame header: %v", what, err)
		}
		if h.Skippable || h.DictionaryID != 0 {
			return p, badf("%s: zstd frame is skippable or needs a dictionary", what)
		}
		if h.HasFCS && h.FrameContentSize != uint64(p.size) {
			return p, badf("%s: zstd frame holds %d bytes, buffer declares %d", what, h.FrameContentSize, p.size)
		}
	}
	return p, nil
}

// zstdDecoder decodes whole buffers; WithDecodeAllCapLimit stops it at the
// capacity of the destination, which is the declared size.
var zstdDecoder = func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderMaxMemory(MaxDecodedBytes),
		zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic(err)
	}
	return d
}()

// decode decompresses the buffer into exactly its declared size.
func (p plannedBuffer) decode() ([]byte, error) {
	if p.size == 0 {
		return nil, nil
	}
	if p.raw {
		return append(make([]byte, 0, p.size), p.src...), nil
	}
	out, err := zstdDecoder.DecodeAll(p.src, make([]byte, 0, p.size))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if len(out) != p.size {
		return nil, fmt.Errorf("zstd: %d bytes, %d declared", len(out), p.size)
	}
	return out, nil
}

// data is the second pass for one array: decompress and check string
// offsets.
func (a plannedArray) data(what string, c colLayout, typ arrow.DataType) (arrow.ArrayData, error) {
	first, err := a.bufs[0].decode()
	if err != nil {
		return nil, badf("%s: %v", what, err)
	}
	if !c.str {
		return array.NewData(typ, a.rows, []*memory.Buffer{nil, memory.NewBufferBytes(first)}, nil, 0, 0), nil
	}
	data, err := a.bufs[1].decode()
	if err != nil {
		return nil, badf("%s: %v", what, err)
	}
	if a.rows == 0 {
		first = make([]byte, 4)
	}
	offs := arrow.Int32Traits.CastFromBytes(first)[:a.rows+1]
	prev := offs[0]
	if prev < 0 {
		return nil, badf("%s: negative string offset", what)
	}
	for _, o := range offs[1:] {
		if o < prev {
			return nil, badf("%s: string offsets decrease", what)
		}
		prev = o
	}
	if int(prev) > len(data) {
		return nil, badf("%s: string offsets reach %d beyond %d data bytes", what, prev, len(data))
	}
	return array.NewData(typ, a.rows, []*memory.Buffer{nil, memory.NewBufferBytes(first), memory.NewBufferBytes(data)}, nil, 0, 0), nil
}

// record is the second pass: it decompresses every buffer and assembles the
// record.
func (p *batchPlan) record() (arrow.Record, error) {
	layout := p.schema.layout
	cols := make([]arrow.Array, 0, len(layout))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i, c := range layout {
		what := "column " + c.name
		var d arrow.ArrayData
		var err error
		if c.dict < 0 {
			d, err = p.cols[i].data(what, c, c.typ)
		} else {
			d, err = p.cols[i].data(what, c, arrow.PrimitiveTypes.Int32)
			if err == nil {
				var dict arrow.ArrayData
				dict, err = p.dicts[c.dict].data("dictionary of "+c.name, colLayout{str: true}, arrow.BinaryTypes.String)
				if err == nil {
					idx := d
					d = array.NewDataWithDictionary(c.typ, p.rows, idx.Buffers(), 0, 0, dict.(*array.Data))
					idx.Release()
					dict.Release()
				}
			}
		}
		if err != nil {
			return nil, err
		}
		cols = append(cols, array.MakeFromData(d))
		d.Release()
	}
	return array.NewRecord(p.schema.schema, cols, int64(p.rows)), nil
}

// fbTable is a flatbuffer table; every read is bounds-checked.
type fbTable struct {
	buf      []byte // nil: an absent table
	pos, vt  int
	vtLength int
}

var errFlatbuffer = errors.New("flatbuffer offset out of bounds")

func fbRoot(buf []byte) (fbTable, error) {
	if len(buf) < 4 {
		return fbTable{}, errFlatbuffer
	}
	return fbTableAt(buf, int64(binary.LittleEndian.Uint32(buf)))
}

func fbTableAt(buf []byte, pos int64) (fbTable, error) {
	if pos < 0 || pos > int64(len(buf))-4 {
		return fbTable{}, errFlatbuffer
	}
	vt := pos - int64(int32(binary.LittleEndian.Uint32(buf[pos:])))
	if vt < 0 || vt > int64(len(buf))-4 {
		return fbTable{}, errFlatbuffer
	}
	n := int64(binary.LittleEndian.Uint16(buf[vt:]))
	if n < 4 || n%2 != 0 || n > int64(len(buf))-vt {
		return fbTable{}, errFlatbuffer
	}
	return fbTable{buf: buf, pos: int(pos), vt: int(vt), vtLength: int(n)}, nil
}

// field is the position of field slot, 0 when absent.
func (t fbTable) field(slot int) int {
	o := 4 + 2*slot
	if t.buf == nil || o+2 > t.vtLength {
		return 0
	}
	off := int(binary.LittleEndian.Uint16(t.buf[t.vt+o:]))
	if off == 0 {
		return 0
	}
	return t.pos + off
}

// scalar reads a little-endian integer of size bytes; absent is 0, the
// default of every field read here.
func (t fbTable) scalar(slot, size int) (uint64, error) {
	p := t.field(slot)
	if p == 0 {
		return 0, nil
	}
	if p > len(t.buf)-size {
		return 0, errFlatbuffer
	}
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(t.buf[p+i])
	}
	return v, nil
}

// indirect follows the offset stored in field slot; 0 when absent.
func (t fbTable) indirect(slot int) (int64, error) {
	p := t.field(slot)
	if p == 0 {
		return 0, nil
	}
	if p > len(t.buf)-4 {
		return 0, errFlatbuffer
	}
	return int64(p) + int64(binary.LittleEndian.Uint32(t.buf[p:])), nil
}

// table reads a sub-table; absent gives a table with a nil buf.
func (t fbTable) table(slot int) (fbTable, error) {
	p, err := t.indirect(slot)
	if err != nil || p == 0 {
		return fbTable{}, err
	}
	return fbTableAt(t.buf, p)
}

// structs reads a vector of structs of size bytes each.
func (t fbTable) structs(slot, size int) ([]byte, int, error) {
	p, err := t.indirect(slot)
	if err != nil || p == 0 {
		return nil, 0, err
	}
	if p > int64(len(t.buf))-4 {
		return nil, 0, errFlatbuffer
	}
	n := int64(binary.LittleEndian.Uint32(t.buf[p:]))
	if n > (int64(len(t.buf))-p-4)/int64(size) {
		return nil, 0, errFlatbuffer
	}
	return t.buf[p+4 : p+4+n*int64(size)], int(n), nil
}
