package span

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// The Arrow form of a span: one column per field of the span record
// (docs/span.md), snake_case names.
// Repetitive strings are dictionary-encoded (int32 indices into utf8); enums
// are uint8; ids and sequence numbers are fixed-width integers; addresses and
// trace ids are 16-byte fixed-size binary (IPv4 as IPv4-mapped IPv6, with the
// zero address meaning "unknown").

type colKind uint8

const (
	kDict colKind = iota // dictionary<int32, utf8>
	kStr                 // plain utf8 (unique-ish strings: x-request-id, resource)
	kU8
	kU16
	kU32
	kU64
	kI32
	kI64
	kAddr // fixed_size_binary(16)
	kTID  // fixed_size_binary(16)
)

type column struct {
	name string
	kind colKind
	str  func(*Span) *string
	u8   func(*Span) *uint8
	u16  func(*Span) *uint16
	u32  func(*Span) *uint32
	u64  func(*Span) *uint64
	i32  func(*Span) *int32
	i64  func(*Span) *int64
	addr func(*Span) *netip.Addr
	tid  func(*Span) *TraceID
}

func dictCol(n string, f func(*Span) *string) column { return column{name: n, kind: kDict, str: f} }
func strCol(n string, f func(*Span) *string) column  { return column{name: n, kind: kStr, str: f} }
func u8Col(n string, f func(*Span) *uint8) column    { return column{name: n, kind: kU8, u8: f} }
func u16Col(n string, f func(*Span) *uint16) column  { return column{name: n, kind: kU16, u16: f} }
func u32Col(n string, f func(*Span) *uint32) column  { return column{name: n, kind: kU32, u32: f} }
func u64Col(n string, f func(*Span) *uint64) column  { return column{name: n, kind: kU64, u64: f} }
func i32Col(n string, f func(*Span) *int32) column   { return column{name: n, kind: kI32, i32: f} }
func i64Col(n string, f func(*Span) *int64) column   { return column{name: n, kind: kI64, i64: f} }
func addrCol(n string, f func(*Span) *netip.Addr) column {
	return column{name: n, kind: kAddr, addr: f}
}

var columns = []column{
	u64Col("span_id", func(s *Span) *uint64 { return &s.SpanID }),
	dictCol("node", func(s *Span) *string { return &s.Node }),
	u8Col("signal_source", func(s *Span) *uint8 { return (*uint8)(&s.SignalSource) }),
	u8Col("tap_side", func(s *Span) *uint8 { return (*uint8)(&s.TapSide) }),
	dictCol("capture_nic", func(s *Span) *string { return &s.CaptureNIC }),
	u64Col("netns", func(s *Span) *uint64 { return &s.NetNS }),
	i64Col("start_ns", func(s *Span) *int64 { return &s.StartNs }),
	i64Col("end_ns", func(s *Span) *int64 { return &s.EndNs }),
	u32Col("pid", func(s *Span) *uint32 { return &s.PID }),
	u32Col("req_tid", func(s *Span) *uint32 { return &s.ReqTID }),
	u32Col("resp_tid", func(s *Span) *uint32 { return &s.RespTID }),
	dictCol("process_name", func(s *Span) *string { return &s.ProcessName }),
	dictCol("comm", func(s *Span) *string { return &s.Comm }),
	dictCol("cmdline", func(s *Span) *string { return &s.Cmdline }),
	dictCol("container_id", func(s *Span) *string { return &s.ContainerID }),
	dictCol("pod", func(s *Span) *string { return &s.Pod }),
	dictCol("namespace", func(s *Span) *string { return &s.Namespace }),
	dictCol("service", func(s *Span) *string { return &s.Service }),
	u64Col("socket_id", func(s *Span) *uint64 { return &s.SocketID }),
	u8Col("ip_version", func(s *Span) *uint8 { return &s.IPVersion }),
	addrCol("client_ip", func(s *Span) *netip.Addr { return &s.ClientIP }),
	u16Col("client_port", func(s *Span) *uint16 { return &s.ClientPort }),
	addrCol("server_ip", func(s *Span) *netip.Addr { return &s.ServerIP }),
	u16Col("server_port", func(s *Span) *uint16 { return &s.ServerPort }),
	u8Col("l4", func(s *Span) *uint8 { return (*uint8)(&s.L4) }),
	u8Col("tunnel_type", func(s *Span) *uint8 { return (*uint8)(&s.TunnelType) }),
	addrCol("tunnel_outer_src", func(s *Span) *netip.Addr { return &s.TunnelOuterSrc }),
	addrCol("tunnel_outer_dst", func(s *Span) *netip.Addr { return &s.TunnelOuterDst }),
	u8Col("l7_protocol", func(s *Span) *uint8 { return (*uint8)(&s.L7Protocol) }),
	dictCol("l7_version", func(s *Span) *string { return &s.L7Version }),
	dictCol("request_type", func(s *Span) *string { return &s.RequestType }),
	dictCol("request_domain", func(s *Span) *string { return &s.RequestDomain }),
	strCol("request_resource", func(s *Span) *string { return &s.RequestResource }),
	dictCol("endpoint", func(s *Span) *string { return &s.Endpoint }),
	i32Col("response_code", func(s *Span) *int32 { return &s.ResponseCode }),
	u8Col("response_status", func(s *Span) *uint8 { return (*uint8)(&s.ResponseStatus) }),
	dictCol("response_exception", func(s *Span) *string { return &s.ResponseException }),
	i64Col("request_bytes", func(s *Span) *int64 { return &s.RequestBytes }),
	i64Col("response_bytes", func(s *Span) *int64 { return &s.ResponseBytes }),
	i64Col("result_count", func(s *Span) *int64 { return &s.ResultCount }),
	u32Col("stream_id", func(s *Span) *uint32 { return &s.StreamID }),
	u32Col("req_tcp_seq", func(s *Span) *uint32 { return &s.ReqTCPSeq }),
	u32Col("resp_tcp_seq", func(s *Span) *uint32 { return &s.RespTCPSeq }),
	u64Col("syscall_trace_id_req", func(s *Span) *uint64 { return &s.SyscallTraceIDReq }),
	u64Col("syscall_trace_id_resp", func(s *Span) *uint64 { return &s.SyscallTraceIDResp }),
	strCol("x_request_id_req", func(s *Span) *string { return &s.XRequestIDReq }),
	strCol("x_request_id_resp", func(s *Span) *string { return &s.XRequestIDResp }),
	{name: "trace_id", kind: kTID, tid: func(s *Span) *TraceID { return &s.TraceID }},
	u64Col("parent_span_id", func(s *Span) *uint64 { return &s.ParentSpanID }),
	u64Col("app_span_id", func(s *Span) *uint64 { return &s.AppSpanID }),
	u32Col("flags", func(s *Span) *uint32 { return (*uint32)(&s.Flags) }),
	// span/2
	dictCol("workload", func(s *Span) *string { return &s.Workload }),
	dictCol("workload_kind", func(s *Span) *string { return &s.WorkloadKind }),
	dictCol("container_name", func(s *Span) *string { return &s.ContainerName }),
	// span/3: spans an OpenTelemetry SDK sent (signal source otel)
	dictCol("name", func(s *Span) *string { return &s.Name }),
	u8Col("span_kind", func(s *Span) *uint8 { return (*uint8)(&s.Kind) }),
	strCol("attributes", func(s *Span) *string { return &s.Attributes }),
	dictCol("resource", func(s *Span) *string { return &s.Resource }),
	dictCol("scope", func(s *Span) *string { return &s.Scope }),
}

// Schema versions: span/1 is the first 51 columns; span/2 adds workload,
// workload_kind and container_name at the end; span/3 adds the fields of
// spans an OpenTelemetry SDK sent (name, span_kind, attributes, resource,
// scope). A writer writes the newest; a reader reads every version it knows
// and refuses others by name.
const (
	SchemaVersion = "span/3"
	schemaKey     = "zerotrace.schema"
)

var versions = []struct {
	name string
	cols int
}{{"span/1", 51}, {"span/2", 54}, {SchemaVersion, len(columns)}}

var dictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

func (c column) dataType() arrow.DataType {
	switch c.kind {
	case kDict:
		return dictType
	case kStr:
		return arrow.BinaryTypes.String
	case kU8:
		return arrow.PrimitiveTypes.Uint8
	case kU16:
		return arrow.PrimitiveTypes.Uint16
	case kU32:
		return arrow.PrimitiveTypes.Uint32
	case kU64:
		return arrow.PrimitiveTypes.Uint64
	case kI32:
		return arrow.PrimitiveTypes.Int32
	case kI64:
		return arrow.PrimitiveTypes.Int64
	default:
		return &arrow.FixedSizeBinaryType{ByteWidth: 16}
	}
}

func schemaOf(version string, cols []column) *arrow.Schema {
	fs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fs[i] = arrow.Field{Name: c.name, Type: c.dataType()}
	}
	md := arrow.NewMetadata([]string{schemaKey}, []string{version})
	return arrow.NewSchema(fs, &md)
}

// Schema is the Arrow schema of a span record batch (SchemaVersion).
var Schema = schemaOf(SchemaVersion, columns)

// Schemas are the schemas a reader accepts, oldest first; the last is Schema.
var Schemas = func() []*arrow.Schema {
	out := make([]*arrow.Schema, len(versions))
	for i, v := range versions {
		out[i] = schemaOf(v.name, columns[:v.cols])
	}
	out[len(out)-1] = Schema
	return out
}()

// ErrSchemaVersion reports a batch written with a schema version this reader
// does not know (a newer collector): upgrade the reader.
var ErrSchemaVersion = errors.New("unknown span schema version")

// SchemaVersions lists the versions a reader accepts, e.g. "span/1, span/2".
func SchemaVersions() string {
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = v.name
	}
	return strings.Join(names, ", ")
}

// Builder appends spans to Arrow columns and cuts record batches.
// It is not safe for concurrent use.
type Builder struct {
	b    *array.RecordBuilder
	rows int
	ab   [16]byte
}

// NewBuilder returns a builder using mem (nil: the Go allocator).
func NewBuilder(mem memory.Allocator) *Builder {
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	return &Builder{b: array.NewRecordBuilder(mem, Schema)}
}

// Len is the number of spans appended since the last cut.
func (b *Builder) Len() int { return b.rows }

func addr16(a netip.Addr) [16]byte {
	if !a.IsValid() {
		return [16]byte{}
	}
	return a.As16()
}

// Append adds one span.
func (b *Builder) Append(s *Span) {
	for i := range columns {
		c := &columns[i]
		f := b.b.Field(i)
		switch c.kind {
		case kDict:
			f.(*array.BinaryDictionaryBuilder).Append(stringBytes(*c.str(s)))
		case kStr:
			f.(*array.StringBuilder).Append(*c.str(s))
		case kU8:
			f.(*array.Uint8Builder).Append(*c.u8(s))
		case kU16:
			f.(*array.Uint16Builder).Append(*c.u16(s))
		case kU32:
			f.(*array.Uint32Builder).Append(*c.u32(s))
		case kU64:
			f.(*array.Uint64Builder).Append(*c.u64(s))
		case kI32:
			f.(*array.Int32Builder).Append(*c.i32(s))
		case kI64:
			f.(*array.Int64Builder).Append(*c.i64(s))
		case kAddr:
			b.ab = addr16(*c.addr(s))
			f.(*array.FixedSizeBinaryBuilder).Append(b.ab[:])
		case kTID:
			t := c.tid(s)
			f.(*array.FixedSizeBinaryBuilder).Append(t[:])
		}
	}
	b.rows++
}

// stringBytes views s as bytes without copying it, for Arrow's dictionary
// builder, which only compares the bytes and copies them when it inserts a
// new value (AppendString converted, allocating, every value of every
// dictionary column). Never nil: nil appends a null.
func stringBytes(s string) []byte {
	if s == "" {
		return noBytes
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

var noBytes = []byte{}

// NewRecord cuts the appended spans into a record (the caller releases it)
// and resets the builder, dictionaries included.
func (b *Builder) NewRecord() arrow.Record {
	rows := b.rows
	b.rows = 0
	r := b.b.NewRecord()
	for i := range columns {
		if columns[i].kind == kDict {
			b.b.Field(i).(*array.BinaryDictionaryBuilder).ResetFull()
		}
	}
	// The next batch is likely as long: its buffers start at that size
	// instead of growing to it by doubling, copying as they go.
	b.b.Reserve(rows)
	return r
}

// Release frees the builder's memory.
func (b *Builder) Release() { b.b.Release() }

// Record reads spans out of a record batch with the span schema.
type Record struct {
	rec  arrow.Record
	cols []any // one per column of the record's version; later columns read as zero
}

// ErrSchema reports a record whose columns do not match Schema.
var ErrSchema = errors.New("record does not have the span schema")

// NewRecord checks rec against the schema of its version (Schemas) and
// prepares it for reading. The record must stay alive while the Record is
// used. A version this reader does not know is ErrSchemaVersion.
func NewRecord(rec arrow.Record) (*Record, error) {
	ver, _ := rec.Schema().Metadata().GetValue(schemaKey)
	n := -1
	for _, v := range versions {
		if v.name == ver {
			n = v.cols
		}
	}
	if n < 0 {
		return nil, fmt.Errorf("%w %q: this reader reads %s", ErrSchemaVersion, ver, SchemaVersions())
	}
	if int(rec.NumCols()) != n {
		return nil, fmt.Errorf("%w: %d columns, want %d for %s", ErrSchema, rec.NumCols(), n, ver)
	}
	r := &Record{rec: rec, cols: make([]any, n)}
	for i, c := range columns[:n] {
		a := rec.Column(i)
		if rec.ColumnName(i) != c.name || !arrow.TypeEqual(a.DataType(), c.dataType()) {
			return nil, fmt.Errorf("%w: column %d is %s %s, want %s %s", ErrSchema, i, rec.ColumnName(i), a.DataType(), c.name, c.dataType())
		}
		if a.NullN() != 0 {
			return nil, fmt.Errorf("%w: column %s has nulls", ErrSchema, c.name)
		}
		if c.kind == kDict {
			d := a.(*array.Dictionary)
			dict, ok := d.Dictionary().(*array.String)
			if !ok {
				return nil, fmt.Errorf("%w: column %s dictionary is %s", ErrSchema, c.name, d.Dictionary().DataType())
			}
			idx, ok := d.Indices().(*array.Int32)
			if !ok {
				return nil, fmt.Errorf("%w: column %s indices are %s", ErrSchema, c.name, d.Indices().DataType())
			}
			for j := 0; j < idx.Len(); j++ {
				if v := idx.Value(j); v < 0 || int(v) >= dict.Len() {
					return nil, fmt.Errorf("%w: column %s row %d: dictionary index %d out of range", ErrSchema, c.name, j, v)
				}
			}
			r.cols[i] = dictCol2{dict, idx}
			continue
		}
		r.cols[i] = a
	}
	return r, nil
}

type dictCol2 struct {
	dict *array.String
	idx  *array.Int32
}

// Len is the number of spans.
func (r *Record) Len() int { return int(r.rec.NumRows()) }

// Row decodes span i into s (columns newer than the record's version are zero).
func (r *Record) Row(i int, s *Span) {
	for k := range columns[len(r.cols):] {
		clearCol(&columns[len(r.cols)+k], s)
	}
	r.decode(i, s, allColumns[:len(r.cols)])
}

// KeyRow decodes into s only what a store indexes span i under: its span
// id, start, and the fields IndexKeys reads (every version has them). The
// other fields of s are left as they were.
func (r *Record) KeyRow(i int, s *Span) { r.decode(i, s, keyColumns) }

// allColumns are the indexes of every column, keyColumns those KeyRow
// decodes: span_id, start_ns and the columns IndexKeys reads, kept by hand
// beside IndexKeys's direct field reads; TestKeyColumns derives that set
// from IndexKeys and names any column this list lacks or holds in excess.
var (
	allColumns = func() []int {
		out := make([]int, len(columns))
		for i := range out {
			out[i] = i
		}
		return out
	}()
	keyColumns = columnIndexes("span_id", "start_ns", "node", "signal_source", "tap_side", "pid",
		"req_tcp_seq", "resp_tcp_seq", "syscall_trace_id_req", "syscall_trace_id_resp",
		"x_request_id_req", "x_request_id_resp", "trace_id", "parent_span_id", "app_span_id")
)

func columnIndexes(names ...string) []int {
	out := make([]int, len(names))
	for j, n := range names {
		out[j] = -1
		for i := range columns {
			if columns[i].name == n {
				out[j] = i
			}
		}
		if out[j] < 0 || out[j] >= versions[0].cols {
			panic("span: no column " + n + " in every version")
		}
	}
	return out
}

// decode decodes the columns at idx of row i into s.
func (r *Record) decode(i int, s *Span, idx []int) {
	for _, k := range idx {
		c := &columns[k]
		switch c.kind {
		case kDict:
			d := r.cols[k].(dictCol2)
			*c.str(s) = d.dict.Value(int(d.idx.Value(i)))
		case kStr:
			*c.str(s) = r.cols[k].(*array.String).Value(i)
		case kU8:
			*c.u8(s) = r.cols[k].(*array.Uint8).Value(i)
		case kU16:
			*c.u16(s) = r.cols[k].(*array.Uint16).Value(i)
		case kU32:
			*c.u32(s) = r.cols[k].(*array.Uint32).Value(i)
		case kU64:
			*c.u64(s) = r.cols[k].(*array.Uint64).Value(i)
		case kI32:
			*c.i32(s) = r.cols[k].(*array.Int32).Value(i)
		case kI64:
			*c.i64(s) = r.cols[k].(*array.Int64).Value(i)
		case kAddr:
			*c.addr(s) = addrFrom16(r.cols[k].(*array.FixedSizeBinary).Value(i))
		case kTID:
			copy(c.tid(s)[:], r.cols[k].(*array.FixedSizeBinary).Value(i))
		}
	}
}

// StartNs returns start_ns of row i without decoding the rest.
func (r *Record) StartNs(i int) int64 { return r.cols[6].(*array.Int64).Value(i) }

// All decodes every row.
func (r *Record) All() []Span {
	out := make([]Span, r.Len())
	for i := range out {
		r.Row(i, &out[i])
	}
	return out
}

// clearCol zeroes the field of a column newer than a record's version (the
// span/2 and span/3 columns are strings and a uint8).
func clearCol(c *column, s *Span) {
	switch c.kind {
	case kDict, kStr:
		*c.str(s) = ""
	case kU8:
		*c.u8(s) = 0
	}
}

func addrFrom16(b []byte) netip.Addr {
	var a [16]byte
	copy(a[:], b)
	if a == ([16]byte{}) {
		return netip.Addr{}
	}
	ad := netip.AddrFrom16(a)
	if ad.Is4In6() {
		return ad.Unmap()
	}
	return ad
}
