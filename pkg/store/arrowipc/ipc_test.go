package arrowipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/klauspost/compress/zstd"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// dictMessage is a hand-assembled Arrow IPC dictionary batch message: the
// dictionary of the node column (id 0) holding one value, "node-a", its two
// buffers zstd frames made of one raw block each (format/Message.fbs,
// format/Schema.fbs, RFC 8878).
var dictMessage = unhex(`ffffffff d8000000` + // continuation, 216 bytes of metadata
	// Message table at 16, its vtable at 4
	`10000000 ` + //                     0: root offset → 16
	`0c00 1800 0400 0600 0800 1000 ` + // 4: vtable: 12 bytes, table 24; version +4, header_type +6, header +8, bodyLength +16
	`0c000000 ` + //                    16: → vtable at 4
	`0400 02 00 ` + //                  20: version V5; header type DictionaryBatch
	`20000000 00000000 ` + //           24: header → 56
	`3800000000000000 ` + //            32: bodyLength 56
	// DictionaryBatch table at 56, vtable at 40
	`0a00 1800 0800 0400 1000 0000 00000000 ` + // 40: vtable: id +8, data +4, isDelta +16
	`10000000 ` + //                    56: → vtable at 40
	`24000000 ` + //                    60: data → 96
	`0000000000000000 ` + //            64: id 0
	`00 00000000000000 ` + //           72: isDelta false
	// RecordBatch table at 96, vtable at 80
	`0c00 1800 1000 0400 0800 0c00 00000000 ` + // 80: vtable: length +16, nodes +4, buffers +8, compression +12
	`10000000 ` + //                    96: → vtable at 80
	`28000000 ` + //                   100: nodes → 140
	`3c000000 ` + //                   104: buffers → 164
	`14000000 ` + //                   108: compression → 128
	`0100000000000000 ` + //           112: length: 1 entry
	// BodyCompression table at 128, vtable at 120
	`0800 0800 0400 0000 ` + //        120: vtable: codec +4, method absent (BUFFER)
	`08000000 01 000000 ` + //         128: → vtable at 120; codec ZSTD
	`00000000 ` + //                   136: padding
	`01000000 ` + //                   140: 1 field node
	`0100000000000000 0000000000000000 ` + // 144: length 1, null count 0
	`00000000 ` + //                   160: padding
	`03000000 ` + //                   164: 3 buffers
	`0000000000000000 0000000000000000 ` + // 168: validity: none
	`0000000000000000 1900000000000000 ` + // 184: offsets: body 0, 25 bytes
	`2000000000000000 1700000000000000 ` + // 200: data: body 32, 23 bytes
	// body, 56 bytes
	`0800000000000000 ` + //           b+0: offsets decompress to 8 bytes
	`28b52ffd 20 08 410000 ` + //      b+8: zstd magic; single segment, content size 8; last raw block of 8
	`00000000 06000000 ` + //         b+17: offsets 0, 6
	`00000000000000 ` + //            b+25: padding
	`0600000000000000 ` + //          b+32: data decompresses to 6 bytes
	`28b52ffd 20 06 310000 ` + //     b+40: content size 6; last raw block of 6
	`6e6f64652d61 00`) //             b+49: "node-a", padding

const (
	dictMeta = 8        // metadata offset within dictMessage
	dictBody = 8 + 0xd8 // body offset
)

// splitMessages cuts an encoded batch at its message boundaries with Arrow's
// own message reader: the schema message, the dictionary batches, the
// record batch and the end-of-stream marker.
func splitMessages(t *testing.T, b []byte) [][]byte {
	t.Helper()
	r := bytes.NewReader(b)
	mr := ipc.NewMessageReader(r)
	var out [][]byte
	last := 0
	for {
		m, err := mr.Message()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		end := len(b) - r.Len()
		out = append(out, b[last:end])
		last = end
		_ = m
	}
	return append(out, b[last:])
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func patch(b []byte, at int, hex string) []byte {
	c := append([]byte(nil), b...)
	copy(c[at:], unhex(hex))
	return c
}

// TestDecodeBatchAnnotated replaces the node dictionary of a real batch by
// dictMessage, checks both Arrow's reader and DecodeBatch read it, then
// breaks one field at a time.
func TestDecodeBatchAnnotated(t *testing.T) {
	want := fullSpan(0) // node "node-a"
	parts := splitMessages(t, encodedBatch(t, []span.Span{want}))
	if len(parts) != 2+len(layouts[len(layouts)-1].dictColumn)+1 {
		t.Fatalf("%d messages, want schema, %d dictionaries, record batch, end", len(parts), len(layouts[len(layouts)-1].dictColumn))
	}
	schema, record, eos := parts[0], parts[len(parts)-2], parts[len(parts)-1]
	otherDicts := join(parts[2 : len(parts)-2]...)
	stream := func(dict ...[]byte) []byte {
		return join(schema, join(dict...), otherDicts, record, eos)
	}
	good := stream(dictMessage)

	// Arrow's reader agrees the hand-assembled message is the node dictionary.
	rd, err := ipc.NewReader(bytes.NewReader(good), ipc.WithSchema(span.Schema))
	if err != nil {
		t.Fatal(err)
	}
	if !rd.Next() {
		t.Fatalf("Arrow reader: %v", rd.Err())
	}
	if got := rd.Record().Column(1).(*array.Dictionary).Dictionary().(*array.String).Value(0); got != "node-a" {
		t.Fatalf("Arrow reads node %q", got)
	}
	rd.Release()
	b, err := DecodeBatch(good)
	if err != nil {
		t.Fatalf("hand-assembled dictionary: %v", err)
	}
	if got := b.All(); len(got) != 1 || got[0].Node != "node-a" || got[0].Service != want.Service {
		t.Fatalf("decoded %+v", got)
	}
	b.Release()

	// A zstd frame with no content size and one RLE block of 128 KiB, in a
	// buffer that declares 6 bytes.
	bomb := patch(dictMessage, dictBody+32, `0600000000000000 28b52ffd 00 38 030010 41`)
	bomb = patch(bomb, dictMeta+208, `1200000000000000`) // data buffer: 18 bytes

	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"metadata length 2 GiB", stream(patch(dictMessage, 4, `ffffff7f`)), "metadata of 2147483647 bytes"},
		{"metadata length negative", stream(patch(dictMessage, 4, `00000080`)), "metadata of -2147483648 bytes"},
		{"no continuation marker", stream(patch(dictMessage, 0, `00000000`)), "no continuation marker"},
		{"root offset outside metadata", stream(patch(dictMessage, dictMeta, `0000ff00`)), "flatbuffer offset out of bounds"},
		{"vtable offset outside metadata", stream(patch(dictMessage, dictMeta+16, `00000080`)), "flatbuffer offset out of bounds"},
		{"metadata version V4", stream(patch(dictMessage, dictMeta+20, `0300`)), "metadata version 3, want 4"},
		{"tensor message", stream(patch(dictMessage, dictMeta+22, `04`)), "header type 4"},
		{"body beyond the bytes", stream(patch(dictMessage, dictMeta+32, `0000000000000010`)), "body of 1152921504606846976 bytes"},
		{"dictionary id 99", stream(patch(dictMessage, dictMeta+64, `63`)), fmt.Sprintf("dictionary id 99, want 0..%d", len(layouts[len(layouts)-1].dictColumn)-1)},
		{"dictionary delta", stream(patch(dictMessage, dictMeta+72, `01`)), "dictionary delta"},
		{"dictionary of 2^31 entries", stream(patch(dictMessage, dictMeta+112, `00000080`)), "2147483648 rows, limit 32768"},
		{"no compression", stream(patch(dictMessage, dictMeta+90, `0000`)), "buffers not compressed"},
		{"lz4 codec", stream(patch(dictMessage, dictMeta+132, `00`)), "compression codec 0 method 0, want zstd"},
		{"two field nodes", stream(patch(dictMessage, dictMeta+140, `02`)), "2 field nodes, want 1"},
		{"field node vector past metadata", stream(patch(dictMessage, dictMeta+140, `ffffff0f`)), "field nodes: flatbuffer offset out of bounds"},
		{"node of 2 values", stream(patch(dictMessage, dictMeta+144, `02`)), "2 values in a batch of 1"},
		{"a null", stream(patch(dictMessage, dictMeta+152, `01`)), "1 nulls"},
		{"four buffers", stream(patch(dictMessage, dictMeta+164, `04`)), "buffers: flatbuffer offset out of bounds"},
		{"offsets buffer past the body", stream(patch(dictMessage, dictMeta+184, `4000000000000000`)), "dictionary of node offsets: bytes 64+25 outside the 56-byte body"},
		{"buffer length negative", stream(patch(dictMessage, dictMeta+192, `ffffffffffffffff`)), "bytes 0+-1 outside"},
		{"buffer shorter than its size prefix", stream(patch(dictMessage, dictMeta+192, `0400000000000000`)), "4 bytes, shorter than its size prefix"},
		{"declares 2^62 bytes", stream(patch(dictMessage, dictBody, `0000000000000040`)), "declares 4611686018427387904 decompressed bytes"},
		{"offsets for 19 entries", stream(patch(dictMessage, dictBody, `5000000000000000`)), "offsets: declares 80 bytes, want 8 to 72"},
		{"data over the batch budget", stream(patch(dictMessage, dictBody+32, `0000000300000000`)), "the batch decodes to more than 50331648 bytes"},
		{"zstd content size differs", stream(patch(dictMessage, dictBody+13, `07`)), "zstd frame holds 7 bytes, buffer declares 8"},
		{"not a zstd frame", stream(patch(dictMessage, dictBody+8, `00000000`)), "zstd frame header"},
		{"zstd bomb", stream(bomb), "dictionary of node: zstd"},
		{"negative string offset", stream(patch(dictMessage, dictBody+17, `ffffffff`)), "negative string offset"},
		{"string offsets decrease", stream(patch(dictMessage, dictBody+17, `07000000`)), "string offsets decrease"},
		{"string offsets past the data", stream(patch(dictMessage, dictBody+21, `07000000`)), "string offsets reach 7 beyond 6 data bytes"},
		{"dictionary missing", stream(), "dictionary of node missing"},
		{"dictionary twice", stream(dictMessage, dictMessage), "dictionary 0 twice"},
		{"no record batch", join(schema, dictMessage, eos), "no record batch"},
		{"message after the record batch", join(schema, dictMessage, otherDicts, record, dictMessage, eos), "after the record batch"},
		{"bytes after the end", append(good, 0, 0, 0, 0), "4 bytes after the end-of-stream marker"},
		{"no end marker", good[:len(good)-8], "0 bytes left"},
		{"other schema", patch(good, 100, `ff`), "schema message differs"},
		{"64 MiB", make([]byte, 64<<20), "67108864 bytes, more than 50331648"},
	} {
		b, err := DecodeBatch(c.in)
		if err == nil {
			b.Release()
			t.Errorf("%s: decoded", c.name)
			continue
		}
		if !errors.Is(err, ErrBatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want ErrBatch with %q", c.name, err, c.want)
		}
	}
}

// TestDictionaryIDsInFieldOrder checks the assumption behind dictColumn:
// Arrow numbers dictionaries in field order. The stream is read with
// Arrow's message reader, not planBatch.
func TestDictionaryIDsInFieldOrder(t *testing.T) {
	parts := splitMessages(t, encodedBatch(t, []span.Span{fullSpan(0)}))
	for k, p := range parts[1 : 1+len(layouts[len(layouts)-1].dictColumn)] {
		m, err := ipc.NewMessageReader(bytes.NewReader(p)).Message()
		if err != nil || m.Type() != ipc.MessageDictionaryBatch {
			t.Fatalf("message %d: %v %v", k+1, err, m)
		}
		// DictionaryBatch.id is its first field; the table is reached from
		// the Message's header offset (see dictMessage).
		meta := p[8 : 8+binary.LittleEndian.Uint32(p[4:])]
		root := int(binary.LittleEndian.Uint32(meta))
		vt := root - int(int32(binary.LittleEndian.Uint32(meta[root:])))
		hdrField := root + int(binary.LittleEndian.Uint16(meta[vt+8:]))
		hdr := hdrField + int(binary.LittleEndian.Uint32(meta[hdrField:]))
		hvt := hdr - int(int32(binary.LittleEndian.Uint32(meta[hdr:])))
		id := 0
		if off := int(binary.LittleEndian.Uint16(meta[hvt+4:])); off != 0 {
			id = int(binary.LittleEndian.Uint64(meta[hdr+off:]))
		}
		if id != k {
			t.Errorf("dictionary message %d has id %d", k, id)
		}
	}
}

// TestWriteIPCReadByArrow: the stream writeIPC makes is read alike by
// Arrow's own reader and by DecodeBatch, row for row equal to the spans
// written, and its decompressed buffers equal those of Arrow's own writer
// (ipc.WithZstd) for the same record: only the zstd frames differ.
func TestWriteIPCReadByArrow(t *testing.T) {
	spans := append([]span.Span{fullSpan(0), fullSpan(1), {SpanID: 7}}, bookinfo(t, 3)...)
	spans[1].ClientIP = netip.MustParseAddr("10.1.2.3")
	rec := recordOf(spans)
	defer rec.Release()
	ours, err := encodeBatch(spans)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := arrowIPC(rec)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{"writeIPC": ours, "Arrow's writer": theirs} {
		rd, err := ipc.NewReader(bytes.NewReader(v), ipc.WithSchema(span.Schema))
		if err != nil {
			t.Fatalf("%s: Arrow reader: %v", name, err)
		}
		if !rd.Next() {
			t.Fatalf("%s: Arrow reader: %v", name, rd.Err())
		}
		ar, err := span.NewRecord(rd.Record())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		batch, err := DecodeBatch(v)
		if err != nil {
			t.Fatalf("%s: DecodeBatch: %v", name, err)
		}
		if !reflect.DeepEqual(ar.All(), spans) || !reflect.DeepEqual(batch.All(), spans) {
			t.Errorf("%s: spans read back differ from those written", name)
		}
		batch.Release()
		rd.Release()
	}
	// Message by message, the same metadata apart from buffer offsets and
	// lengths, and the same decompressed buffers.
	po, pa := planOf(t, ours), planOf(t, theirs)
	if po.rows != pa.rows || len(po.cols) != len(pa.cols) || len(po.dicts) != len(pa.dicts) || po.decoded != pa.decoded {
		t.Fatalf("plans differ: %d rows, %d decoded bytes; Arrow's %d rows, %d decoded bytes", po.rows, po.decoded, pa.rows, pa.decoded)
	}
	arrays := func(p *batchPlan) []plannedArray { return append(append([]plannedArray(nil), p.cols...), p.dicts...) }
	ao := arrays(pa)
	for i, a := range arrays(po) {
		for j := range a.bufs {
			x, err1 := a.bufs[j].decode()
			y, err2 := ao[i].bufs[j].decode()
			if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
				t.Errorf("array %d buffer %d differs from Arrow's (%v, %v)", i, j, err1, err2)
			}
		}
	}
	if len(splitMessages(t, ours)) != len(splitMessages(t, theirs)) {
		t.Errorf("message counts differ")
	}
}

// TestWriteIPCBuffers: how writeIPC stores each buffer (ADR 0004, seventh
// round). A buffer under rawBelow bytes, or one whose zstd frame would not
// be shorter, is stored as it is behind the size -1; every other is a zstd
// frame without a content checksum. The frame sizes are checked with an
// encoder of this test's own; Arrow's reader reading these batches back is
// TestWriteIPCReadByArrow.
func TestWriteIPCBuffers(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	spans := append([]span.Span{fullSpan(0), fullSpan(1)}, bookinfo(t, 30)...)
	p := planOf(t, encodedBatch(t, spans))
	var raw, frames int
	for i, a := range append(append([]plannedArray(nil), p.cols...), p.dicts...) {
		for j, b := range a.bufs {
			if b.size == 0 {
				continue
			}
			data, err := b.decode()
			if err != nil {
				t.Fatalf("array %d buffer %d: %v", i, j, err)
			}
			shorter := len(data) >= 64 && len(enc.EncodeAll(data, nil)) < len(data)
			if b.raw {
				raw++
				if shorter {
					t.Errorf("array %d buffer %d: %d bytes stored raw, a frame would be shorter", i, j, len(data))
				}
				continue
			}
			frames++
			var h zstd.Header
			if err := h.Decode(b.src); err != nil {
				t.Fatalf("array %d buffer %d: %v", i, j, err)
			}
			if h.HasCheckSum {
				t.Errorf("array %d buffer %d: the frame has a checksum", i, j)
			}
			if !shorter {
				t.Errorf("array %d buffer %d: %d bytes compressed, stored raw they take less", i, j, len(data))
			}
		}
	}
	if raw == 0 || frames == 0 {
		t.Errorf("%d raw buffers, %d frames: want both in a Bookinfo batch", raw, frames)
	}
}

func planOf(t *testing.T, v []byte) *batchPlan {
	t.Helper()
	p, err := planBatch(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
