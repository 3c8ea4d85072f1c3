package span

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"unsafe"
)

// Columns holds spans column by column in the buffers of the Arrow record
// batch that stores them (Schema): what an Arrow IPC writer sends, built
// without Arrow's builders. Fixed-width values are little-endian, strings
// Arrow offsets (int32) and bytes, dictionary columns int32 indices into
// their distinct values in order of first appearance (as Arrow's dictionary
// builder numbers them). Reset keeps every buffer, so a writer that cuts
// batch after batch allocates nothing per span once its buffers have grown.
// Not safe for concurrent use.
type Columns struct {
	rows int
	cols []ColumnData
}

// ColumnKind is how a column's values are held.
type ColumnKind uint8

const (
	// ColumnFixed: Values holds Width bytes per row.
	ColumnFixed ColumnKind = iota
	// ColumnString: utf8; Offsets holds rows+1 int32 offsets into Data
	// (none while there are no rows).
	ColumnString
	// ColumnDict: Values holds an int32 index per row into the dictionary,
	// whose strings are Offsets (entries+1 int32) and Data.
	ColumnDict
)

// ColumnData is one column's buffers; they alias the Columns' memory until
// its next Append or Reset.
type ColumnData struct {
	Kind    ColumnKind
	Width   int // bytes per value in Values (4 for dictionary indices)
	Values  []byte
	Offsets []byte
	Data    []byte
	Entries int // distinct values of a dictionary column

	field uintptr // offset of the span field
	kind  colKind
	dict  map[string]int32
	last  string // the value last looked up in dict, and its index
	lastI int32
}

// fieldOffsets are the offsets of each column's field in a Span.
var fieldOffsets = func() []uintptr {
	var s Span
	base := unsafe.Pointer(&s)
	off := make([]uintptr, len(columns))
	for i, c := range columns {
		var p unsafe.Pointer
		switch c.kind {
		case kDict, kStr:
			p = unsafe.Pointer(c.str(&s))
		case kU8:
			p = unsafe.Pointer(c.u8(&s))
		case kU16:
			p = unsafe.Pointer(c.u16(&s))
		case kU32:
			p = unsafe.Pointer(c.u32(&s))
		case kU64:
			p = unsafe.Pointer(c.u64(&s))
		case kI32:
			p = unsafe.Pointer(c.i32(&s))
		case kI64:
			p = unsafe.Pointer(c.i64(&s))
		case kAddr:
			p = unsafe.Pointer(c.addr(&s))
		case kTID:
			p = unsafe.Pointer(c.tid(&s))
		}
		off[i] = uintptr(p) - uintptr(base)
	}
	return off
}()

// NewColumns returns empty columns of Schema.
func NewColumns() *Columns {
	c := &Columns{cols: make([]ColumnData, len(columns))}
	for i, col := range columns {
		d := &c.cols[i]
		d.field, d.kind = fieldOffsets[i], col.kind
		switch col.kind {
		case kDict:
			d.Kind, d.Width, d.dict = ColumnDict, 4, map[string]int32{}
		case kStr:
			d.Kind = ColumnString
		default:
			d.Kind, d.Width = ColumnFixed, col.dataType().(interface{ BitWidth() int }).BitWidth()/8
		}
	}
	c.Reset()
	return c
}

// Len is the number of spans appended since the last Reset.
func (c *Columns) Len() int { return c.rows }

// NumColumns is the number of columns (those of Schema).
func (c *Columns) NumColumns() int { return len(c.cols) }

// Column returns column i's buffers.
func (c *Columns) Column(i int) *ColumnData { return &c.cols[i] }

// Reset empties the columns, dictionaries included, keeping their memory.
func (c *Columns) Reset() {
	c.rows = 0
	for i := range c.cols {
		d := &c.cols[i]
		d.Values, d.Offsets, d.Data, d.Entries = d.Values[:0], d.Offsets[:0], d.Data[:0], 0
		if d.dict != nil {
			clear(d.dict)
			d.Offsets = binary.LittleEndian.AppendUint32(d.Offsets, 0)
			d.last, d.lastI = "", -1
		}
	}
}

// Append adds one span.
func (c *Columns) Append(s *Span) { c.AppendSpans(unsafe.Slice(s, 1)) }

// appendChunk is how many spans AppendSpans takes column by column: 32
// spans (22 KB) stay in the first-level cache while every column reads its
// field of each.
const appendChunk = 32

// AppendSpans adds spans in order, into the same buffers as Append one by
// one, column by column over chunks of appendChunk spans: one switch on a
// column's kind per chunk instead of per span, and a fixed-width column's
// buffer grown once per chunk.
func (c *Columns) AppendSpans(spans []Span) {
	if len(spans) == 0 {
		return
	}
	le := binary.LittleEndian
	if c.rows == 0 {
		for i := range c.cols {
			if d := &c.cols[i]; d.Kind == ColumnString {
				d.Offsets = le.AppendUint32(d.Offsets, 0)
			}
		}
	}
	for lo := 0; lo < len(spans); lo += appendChunk {
		ch := spans[lo:min(lo+appendChunk, len(spans))]
		for i := range c.cols {
			c.cols[i].appendChunk(ch)
		}
	}
	c.rows += len(spans)
}

// appendChunk adds the column's field of each span in ch.
func (d *ColumnData) appendChunk(ch []Span) {
	le := binary.LittleEndian
	field := func(j int) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(&ch[j]), d.field) }
	if d.kind == kStr {
		off := grow(&d.Offsets, 4*len(ch))
		for j := range ch {
			d.Data = append(d.Data, *(*string)(field(j))...)
			le.PutUint32(off[4*j:], uint32(len(d.Data)))
		}
		return
	}
	v := grow(&d.Values, d.Width*len(ch))
	switch d.kind {
	case kDict:
		// Spans of one connection share their strings: the value last
		// looked up is compared first, by address before bytes.
		last, lastI := d.last, d.lastI
		for j := range ch {
			s := *(*string)(field(j))
			if lastI < 0 || len(s) != len(last) || unsafe.StringData(s) != unsafe.StringData(last) && s != last {
				last, lastI = s, d.index(s)
			}
			le.PutUint32(v[4*j:], uint32(lastI))
		}
		d.last, d.lastI = last, lastI
	case kU8:
		for j := range ch {
			v[j] = *(*uint8)(field(j))
		}
	case kU16:
		for j := range ch {
			le.PutUint16(v[2*j:], *(*uint16)(field(j)))
		}
	case kU32, kI32:
		for j := range ch {
			le.PutUint32(v[4*j:], *(*uint32)(field(j)))
		}
	case kU64, kI64:
		for j := range ch {
			le.PutUint64(v[8*j:], *(*uint64)(field(j)))
		}
	case kAddr:
		for j := range ch {
			a := addr16(*(*netip.Addr)(field(j)))
			copy(v[16*j:16*j+16], a[:])
		}
	case kTID:
		for j := range ch {
			copy(v[16*j:16*j+16], (*TraceID)(field(j))[:])
		}
	}
}

// grow lengthens *b by n bytes and returns those n bytes.
func grow(b *[]byte, n int) []byte {
	l := len(*b)
	*b = slices.Grow(*b, n)[:l+n]
	return (*b)[l:]
}

// index returns the dictionary index of v, adding it when new.
func (d *ColumnData) index(v string) int32 {
	i, ok := d.dict[v]
	if !ok {
		i = int32(d.Entries)
		d.dict[v] = i
		d.Entries++
		d.Data = append(d.Data, v...)
		d.Offsets = binary.LittleEndian.AppendUint32(d.Offsets, uint32(len(d.Data)))
	}
	return i
}

// DecodedBytes is what the columns' buffers hold: the size of the batch
// once a reader has decompressed it (apart from padding and metadata).
func (c *Columns) DecodedBytes() int {
	n := 0
	for i := range c.cols {
		d := &c.cols[i]
		n += len(d.Values) + len(d.Offsets) + len(d.Data)
	}
	return n
}
