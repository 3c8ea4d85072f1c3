package hpackdec

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/zerotrace/zerotrace/internal/annotated"
)

// RFC 7541 Appendix C.3: three requests on one connection, no Huffman.
var (
	c31 = annotated.Hex(`
		82                               // :method GET (static 2)
		86                               // :scheme http (static 6)
		84                               // :path / (static 4)
		41 0f 7777772e6578616d706c652e636f6d // :authority (static 1) "www.example.com", added: dynamic 62
	`)
	c32 = annotated.Hex(`
		82 86 84                         // :method GET, :scheme http, :path /
		be                               // dynamic 62: :authority www.example.com
		58 08 6e6f2d6361636865           // cache-control (static 24) "no-cache", added
	`)
	c33 = annotated.Hex(`
		82                               // :method GET
		87                               // :scheme https (static 7)
		85                               // :path /index.html (static 5)
		bf                               // dynamic 63: :authority www.example.com
		40 0a 637573746f6d2d6b6579       // a new name "custom-key"
		   0c 637573746f6d2d76616c7565   // "custom-value", added
	`)
	// RFC 7541 Appendix C.5: three responses, a 256-byte table whose
	// entries are evicted.
	c51 = annotated.Hex(`
		48 03 333032                     // :status (static 8) "302", added
		58 07 70726976617465             // cache-control "private", added
		61 1d 4d6f6e2c203231204f637420323031332032303a31333a323120474d54 // date (static 33), added
		6e 17 68747470733a2f2f7777772e6578616d706c652e636f6d             // location (static 46), added
	`)
	c52 = annotated.Hex(`
		48 03 333037                     // :status "307", added: :status 302 evicted
		c1                               // dynamic 65: cache-control private
		c0                               // dynamic 64: date
		bf                               // dynamic 63: location
	`)
	c53 = annotated.Hex(`
		88                               // :status 200 (static 8)
		c1                               // dynamic 65: cache-control private
		61 1d 4d6f6e2c203231204f637420323031332032303a31333a323220474d54 // date, a new value, added
		c0                               // dynamic 64: location
		5a 04 677a6970                   // content-encoding (static 26) "gzip", added
		77 38 666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31 // set-cookie (static 55), added
	`)
)

type field struct{ name, value string }

func decode(t *testing.T, d *Decoder, b []byte) ([]field, bool, error) {
	t.Helper()
	var got []field
	complete, err := d.Decode(b, func(n, v string) { got = append(got, field{n, v}) })
	return got, complete, err
}

// xnet decodes blocks in order with golang.org/x/net's decoder: the fields
// a decoder that saw every block gives.
func xnet(t *testing.T, tableSize uint32, blocks ...[]byte) [][]field {
	t.Helper()
	var out [][]field
	d := hpack.NewDecoder(tableSize, nil)
	for _, b := range blocks {
		fs, err := d.DecodeFull(b)
		if err != nil {
			t.Fatalf("x/net: %v", err)
		}
		var got []field
		for _, f := range fs {
			got = append(got, field{f.Name, f.Value})
		}
		out = append(out, got)
	}
	return out
}

func render(fs []field) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.name+": "+f.value)
	}
	return strings.Join(s, "; ")
}

// TestDecodeRFC: the examples of RFC 7541 Appendix C.3 and C.5 decode to
// the fields the RFC lists, as x/net's decoder gives them, complete, with
// the table's entries the RFC lists after each.
func TestDecodeRFC(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		blocks  [][]byte
		want    []string
		entries []int
	}{
		{"C.3 requests", 4096, [][]byte{c31, c32, c33}, []string{
			":method: GET; :scheme: http; :path: /; :authority: www.example.com",
			":method: GET; :scheme: http; :path: /; :authority: www.example.com; cache-control: no-cache",
			":method: GET; :scheme: https; :path: /index.html; :authority: www.example.com; custom-key: custom-value",
		}, []int{1, 2, 3}},
		{"C.5 responses, eviction", 256, [][]byte{c51, c52, c53}, []string{
			":status: 302; cache-control: private; date: Mon, 21 Oct 2013 20:13:21 GMT; location: https://www.example.com",
			":status: 307; cache-control: private; date: Mon, 21 Oct 2013 20:13:21 GMT; location: https://www.example.com",
			":status: 200; cache-control: private; date: Mon, 21 Oct 2013 20:13:22 GMT; location: https://www.example.com; content-encoding: gzip; set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
		}, []int{4, 4, 3}},
	} {
		ref := xnet(t, uint32(tc.size), tc.blocks...)
		d := New(tc.size, tc.size, 1<<16)
		for i, b := range tc.blocks {
			got, complete, err := decode(t, d, b)
			if err != nil || !complete || render(got) != tc.want[i] || render(ref[i]) != tc.want[i] || d.Len() != tc.entries[i] {
				t.Errorf("%s, block %d: %v complete %v, %d entries\n got %s\nwant %s\nx/net %s", tc.name, i+1, err, complete, d.Len(),
					render(got), tc.want[i], render(ref[i]))
			}
		}
	}
}

// TestDecodeAfterReset: a table started anew between the RFC's requests
// leaves out what refers to entries from before, never names another
// entry, and keeps entries added since in step: a placeholder stands for
// an entry added under a name it did not know.
func TestDecodeAfterReset(t *testing.T) {
	d := New(4096, 4096, 1<<16)
	decode(t, d, c31)
	d.Reset()
	got, complete, err := decode(t, d, c32)
	if err != nil || complete || render(got) != ":method: GET; :scheme: http; :path: /; cache-control: no-cache" || d.Len() != 1 {
		t.Errorf("C.3.2 after a reset: %v complete %v, %d entries: %s", err, complete, d.Len(), render(got))
	}
	// C.3.3 refers to dynamic 63, :authority from before the reset: left out.
	got, complete, err = decode(t, d, c33)
	if err != nil || complete || render(got) != ":method: GET; :scheme: https; :path: /index.html; custom-key: custom-value" {
		t.Errorf("C.3.3 after a reset: %v complete %v: %s", err, complete, render(got))
	}
	// The table now holds custom-key (62) and cache-control (63). A name
	// by an index past it: its value added under a placeholder, which a
	// later reference finds and leaves out.
	b := annotated.Hex(`
		40 02 6b31 02 7631 // a new name "k1" "v1", added: dynamic 62
		7f 03 02 7632      // name: dynamic 66 (6-bit prefix 63 + 3), past the 3 entries: "v2" added under a placeholder
	`)
	got, complete, err = decode(t, d, b)
	if err != nil || complete || render(got) != "k1: v1" || d.Len() != 4 {
		t.Errorf("placeholder: %v complete %v, %d entries: %s", err, complete, d.Len(), render(got))
	}
	got, complete, err = decode(t, d, annotated.Hex(`
		be // dynamic 62: the placeholder
		bf // dynamic 63: k1 v1
		c0 // dynamic 64: custom-key custom-value
		c1 // dynamic 65: cache-control no-cache
		c2 // dynamic 66: past the table
	`))
	if err != nil || complete || render(got) != "k1: v1; custom-key: custom-value; cache-control: no-cache" {
		t.Errorf("after the placeholder: %v complete %v: %s", err, complete, render(got))
	}
}

// TestDecodeMalformed: a malformed block is an error at the field where it
// is found, the fields before it given.
func TestDecodeMalformed(t *testing.T) {
	for name, tc := range map[string]struct {
		b    []byte
		want error
		got  string
	}{
		"index 0":                  {annotated.Hex(`82 80 // :method GET, then index 0`), ErrIndex0, ":method: GET"},
		"string past the block":    {annotated.Hex(`82 40 05 616263 // a name of 5 bytes, 3 there`), ErrTruncated, ":method: GET"},
		"integer past the block":   {annotated.Hex(`ff 80 // an index continued, then the block ends`), ErrTruncated, ""},
		"integer too large":        {annotated.Hex(`ff ffffffff7f // an index of 2^35 and more`), ErrInteger, ""},
		"string longer than 16":    {annotated.Hex(`40 11 // a name of 17 bytes`), ErrString, ""},
		"update above the allowed": {annotated.Hex(`3fe11f // a table size update to 4096 (31 + 4065)`), ErrSize, ""},
		"bad Huffman code":         {annotated.Hex(`40 81 ff 01 61 // a Huffman name of one 0xff byte (EOS padding longer than 7 bits)`), ErrHuffman, ""},
	} {
		d := New(256, 256, 16)
		got, _, err := decode(t, d, tc.b)
		if !errors.Is(err, tc.want) || render(got) != tc.got {
			t.Errorf("%s: %v with %q, want %v with %q", name, err, render(got), tc.want, tc.got)
		}
	}
}

// isSubsequence reports whether every field of sub is in all, in order.
func isSubsequence(sub, all []field) bool {
	i := 0
	for _, f := range all {
		if i < len(sub) && sub[i] == f {
			i++
		}
	}
	return i == len(sub)
}

// FuzzDecode: b cut in two blocks at cut. Where x/net's decoder reads
// both, this one gives the same fields, complete; with its table started
// anew between them, the second block's fields are some of x/net's, in
// order (never another entry's). Malformed input is an error, no panic.
func FuzzDecode(f *testing.F) {
	f.Add(append(append([]byte{}, c31...), c32...), uint8(len(c31)))
	f.Add(append(append([]byte{}, c32...), c33...), uint8(len(c32)))
	f.Add(append(append([]byte{}, c51...), c52...), uint8(len(c51)))
	f.Add(append(append([]byte{}, c52...), c53...), uint8(len(c52)))
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		k := min(int(cut), len(b))
		blocks := [][]byte{b[:k], b[k:]}
		var ref [][]field
		x := hpack.NewDecoder(4096, nil)
		for _, bl := range blocks {
			fs, err := x.DecodeFull(bl)
			if err != nil {
				ref = nil
				break
			}
			var got []field
			for _, f := range fs {
				got = append(got, field{f.Name, f.Value})
			}
			ref = append(ref, got)
		}
		d := New(4096, 4096, 1<<16)
		for i, bl := range blocks {
			got, complete, err := decode(t, d, bl)
			if ref != nil && (err != nil || !complete || render(got) != render(ref[i])) {
				t.Fatalf("block %d: %v complete %v\n got %s\nx/net %s", i, err, complete, render(got), render(ref[i]))
			}
		}
		if ref == nil {
			return
		}
		d = New(4096, 4096, 1<<16)
		decode(t, d, blocks[0])
		d.Reset()
		got, _, err := decode(t, d, blocks[1])
		if err != nil || !isSubsequence(got, ref[1]) {
			t.Fatalf("after a reset: %v\n got %s\nx/net %s", err, render(got), render(ref[1]))
		}
	})
}

// grpcBlock is a gRPC request's header block from Go's encoder once its
// fields are indexed: the second request on a connection.
func grpcBlock(b *testing.B) (first, second []byte) {
	var buf strings.Builder
	enc := hpack.NewEncoder(&buf)
	write := func(xrid string) []byte {
		buf.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/bookinfo.Reviews/Get"},
			{":authority", "reviews:9080"}, {"content-type", "application/grpc"}, {"te", "trailers"},
			{"x-request-id", xrid}, {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}} {
			if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
				b.Fatal(err)
			}
		}
		return []byte(buf.String())
	}
	return write("rid-1"), write("rid-2")
}

// BenchmarkDecode: the second gRPC request's block (every field indexed but
// its x-request-id, a new value under an indexed name), on a table holding
// the first's; BenchmarkDecodeXNet is golang.org/x/net's decoder on the
// same, its peer.
func BenchmarkDecode(b *testing.B) {
	first, second := grpcBlock(b)
	n := 0
	emit := func(string, string) { n++ }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := New(4096, 4096, 1<<16)
		d.Decode(first, emit)
		if ok, err := d.Decode(second, emit); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	if n != 16*b.N {
		b.Fatalf("%d fields", n)
	}
}

func BenchmarkDecodeXNet(b *testing.B) {
	first, second := grpcBlock(b)
	n := 0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := hpack.NewDecoder(4096, func(hpack.HeaderField) { n++ })
		d.Write(first)
		d.Close()
		if _, err := d.Write(second); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
	if n != 16*b.N {
		b.Fatalf("%d fields", n)
	}
}
