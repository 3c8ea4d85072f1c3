package span

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// The span record's field names (docs/span.md), all of which the schema must
// carry.
var recordFields = []string{"span_id", "node", "signal_source", "tap_side", "capture_nic", "netns",
	"start_ns", "end_ns", "pid", "req_tid", "resp_tid", "process_name", "comm", "container_id", "pod",
	"namespace", "service", "ip_version", "client_ip", "client_port", "server_ip", "server_port", "l4",
	"tunnel_type", "tunnel_outer_src", "tunnel_outer_dst", "l7_protocol", "request_type", "request_domain",
	"request_resource", "endpoint", "response_code", "response_status", "response_exception",
	"request_bytes", "response_bytes", "req_tcp_seq", "resp_tcp_seq", "syscall_trace_id_req",
	"syscall_trace_id_resp", "x_request_id_req", "x_request_id_resp", "trace_id", "parent_span_id", "app_span_id"}

func TestSchemaHasRecordFields(t *testing.T) {
	for _, name := range recordFields {
		idx := Schema.FieldIndices(name)
		if len(idx) != 1 {
			t.Errorf("schema lacks %s", name)
		}
	}
	// Every Span field has a column (the columns table covers the struct).
	if n := reflect.TypeOf(Span{}).NumField(); n != len(Schema.Fields()) {
		t.Errorf("Span has %d fields, the schema %d columns", n, len(Schema.Fields()))
	}
	for _, f := range Schema.Fields() {
		switch f.Name {
		case "namespace", "service", "node", "process_name":
			if f.Type.ID() != arrow.DICTIONARY {
				t.Errorf("%s is %s, want dictionary-encoded", f.Name, f.Type)
			}
		case "span_id", "req_tcp_seq", "syscall_trace_id_req":
			if f.Type.ID() != arrow.UINT64 && f.Type.ID() != arrow.UINT32 {
				t.Errorf("%s is %s, want a fixed-width integer", f.Name, f.Type)
			}
		case "trace_id", "client_ip":
			if f.Type.ID() != arrow.FIXED_SIZE_BINARY {
				t.Errorf("%s is %s, want fixed-size binary", f.Name, f.Type)
			}
		}
	}
}

func TestBuilderRecordRoundTrip(t *testing.T) {
	tid, _ := ParseTraceID("00000000000000000000000000c0ffee")
	in := []Span{
		{SpanID: 1, Node: "n1", Namespace: "a", ClientIP: netip.MustParseAddr("10.0.0.1"), TraceID: tid, Flags: FlagPartial},
		{SpanID: 2, Node: "n1", Namespace: "b", ClientIP: netip.MustParseAddr("fe80::1"), ServerIP: netip.Addr{}},
		{SpanID: 3, Node: "n2", Namespace: "a", XRequestIDReq: "x", RequestResource: "/r"},
	}
	b := NewBuilder(nil)
	defer b.Release()
	for i := 0; i < 2; i++ { // the builder is reusable across cuts, dictionaries included
		for j := range in {
			b.Append(&in[j])
		}
		rec := b.NewRecord()
		r, err := NewRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		out := r.All()
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("cut %d: round trip\n in %+v\nout %+v", i, in, out)
		}
		if r.StartNs(0) != in[0].StartNs {
			t.Fatal("StartNs")
		}
		rec.Release()
	}
}

func TestSchemaVersions(t *testing.T) {
	in := []Span{{SpanID: 1, Node: "n1", Workload: "productpage-v1", WorkloadKind: "Deployment", ContainerName: "productpage", Flags: FlagProxy,
		SignalSource: SourceOTel, Name: "GET /reviews", Kind: KindServer, Attributes: `{"a":1}`, Resource: `{"service.name":"reviews"}`, Scope: "otelhttp@0.72.0"}}
	b := NewBuilder(nil)
	defer b.Release()
	b.Append(&in[0])
	rec := b.NewRecord()
	defer rec.Release()
	if v, _ := rec.Schema().Metadata().GetValue("zerotrace.schema"); v != "span/3" {
		t.Fatalf("written version %q, want span/3", v)
	}
	r, err := NewRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if out := r.All(); !reflect.DeepEqual(in, out) {
		t.Fatalf("span/3 round trip:\n in %+v\nout %+v", in, out)
	}

	// A span/2 record (the first 54 columns) reads beside it, the span/3
	// fields zero even in a reused Span.
	v2 := array.NewRecord(Schemas[1], rec.Columns()[:54], rec.NumRows())
	defer v2.Release()
	r2, err := NewRecord(v2)
	if err != nil {
		t.Fatalf("span/2: %v", err)
	}
	got2 := in[0]
	r2.Row(0, &got2)
	want2 := in[0]
	want2.Name, want2.Kind, want2.Attributes, want2.Resource, want2.Scope = "", 0, "", "", ""
	if got2 != want2 {
		t.Fatalf("span/2 row:\n got %+v\nwant %+v", got2, want2)
	}

	// A span/1 record (the first 51 columns) reads, the span/2 fields zero
	// even in a reused Span.
	v1 := array.NewRecord(Schemas[0], rec.Columns()[:51], rec.NumRows())
	defer v1.Release()
	if len(Schemas[0].Fields()) != 51 || Schemas[0].Field(50).Name != "flags" {
		t.Fatalf("span/1 schema: %v", Schemas[0])
	}
	r1, err := NewRecord(v1)
	if err != nil {
		t.Fatalf("span/1: %v", err)
	}
	got := in[0]
	r1.Row(0, &got)
	want := in[0]
	want.Workload, want.WorkloadKind, want.ContainerName = "", "", ""
	want.Name, want.Kind, want.Attributes, want.Resource, want.Scope = "", 0, "", "", ""
	if got != want {
		t.Fatalf("span/1 row:\n got %+v\nwant %+v", got, want)
	}

	// An unknown version is refused by name.
	md := arrow.NewMetadata([]string{"zerotrace.schema"}, []string{"span/9"})
	v9 := array.NewRecord(arrow.NewSchema(Schema.Fields(), &md), rec.Columns(), rec.NumRows())
	defer v9.Release()
	_, err = NewRecord(v9)
	if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), `"span/9"`) || !strings.Contains(err.Error(), "span/1, span/2, span/3") {
		t.Fatalf("span/9: %v", err)
	}
}
