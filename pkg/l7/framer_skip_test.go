package l7

import (
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
)

// TestFramedSkippable: after a chunk, the bytes a framed protocol's
// direction will count without keeping any are the rest of the current
// body once the head it keeps (4096 bytes) is complete; none while the head
// is being gathered (the next bytes fill it), none of a body that fits the
// head, none of an HTTP/2 header block (kept whole); all of an HTTP/2 DATA
// frame (nothing kept).
func TestFramedSkippable(t *testing.T) {
	// pad appends n zero body bytes to an annotated chunk.
	pad := func(b []byte, n int) []byte { return append(b, make([]byte, n)...) }
	for _, tc := range []struct {
		name     string
		p        StreamParser
		b        []byte
		n        int // real bytes of the chunk (len(b) captured)
		response bool
		want     int
	}{
		{"PostgreSQL: a 64 KiB DataRow, 10 bytes of it read", PostgreSQL{}, annotated.Hex(`
			44 00010004          // 'D', length 65540 (itself included): a 65536-byte body
			0001 0000fffa 616263 // one column of 65530 bytes, "abc"…
			6465                 // 10 body bytes in all: the head not complete
		`), 15, true, 0},
		{"PostgreSQL: a 64 KiB DataRow, its 4096-byte head read", PostgreSQL{}, pad(annotated.Hex(`
			44 00010004   // 'D', a 65536-byte body
			0001 0000fffa // one column of 65530 bytes; 4090 more body bytes follow
		`), 4090), 5 + 4096, true, 65536 - 4096},
		{"PostgreSQL: a DataRow that fits the head", PostgreSQL{}, annotated.Hex(`
			44 00000104    // 'D', a 256-byte body
			0001 000000fa // one column of 250 bytes
		`), 11, true, 0},
		{"Kafka: a 64 KiB request, 1000 real bytes of which 21 captured", Kafka{}, annotated.Hex(`
			00010000                                 // size 65536
			0000 0009 00000007 0003 636c69 00000000 // Produce v9, correlation 7, client "cli", …: 17 body bytes
		`), 1000, false, 65536 - 996}, // the capture ended inside the body: what follows a gap does not continue the head
		{"Kafka: a 64 KiB request, 8000 real bytes of which its head captured", Kafka{}, pad(annotated.Hex(`
			00010000                                 // size 65536
			0000 0009 00000007 0003 636c69 00000000 // Produce v9, correlation 7, client "cli", …: 17 body bytes
		`), 4096-17), 8000, false, 65536 - (8000 - 4)},
		{"MySQL: a 64 KiB packet, 12 bytes of it", MySQL{}, annotated.Hex(`
			000001 00                    // length 65536, sequence 0
			03 696e7365727420696e746f // COM_QUERY "insert into"
		`), 16, false, 0},
		{"MySQL: a 64 KiB packet, its head", MySQL{}, pad(annotated.Hex(`
			000001 00                    // length 65536, sequence 0
			03 696e7365727420696e746f // COM_QUERY "insert into", then 4084 more bytes
		`), 4096-12), 4 + 4096, false, 65536 - 4096},
		{"HTTP/2: a DATA frame after the server's SETTINGS", HTTP2{}, annotated.Hex(`
			000000 04 00 00000000   // SETTINGS, empty
			004000 00 00 00000001   // DATA, 16384 bytes, stream 1
			30313233343536373839    // 10 of them
		`), 28, true, 16384 - 10},
		{"HTTP/2: a HEADERS block, kept whole", HTTP2{}, annotated.Hex(`
			000000 04 00 00000000 // SETTINGS, empty
			000100 01 04 00000001 // HEADERS, 256 bytes, END_HEADERS, stream 1
			88                    // :status 200, then 255 bytes to come
		`), 19, true, 0},
	} {
		st := tc.p.NewStream()
		st.Feed(tc.b, tc.n, tc.response, func(*Message) {})
		sk, ok := st.(Skipper)
		if !ok {
			t.Fatalf("%s: not a Skipper", tc.name)
		}
		if got := sk.Skippable(tc.response); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// feedSkipping feeds b in pieces of n bytes (n <= 0: whole) as the capture
// sends a connection's syscalls once the stream's skippable bytes were
// told (with skip): a piece wholly inside them without its bytes, one that
// crosses their end as their rest without bytes and then its bytes from
// their end (bpf/socket/bodies.h, collector/session Chunk.Skip). It returns
// the messages with Truncated cleared (bytes not captured set it).
func feedSkipping(st Stream, b []byte, response bool, n int, skip bool) []Message {
	var out []Message
	emit := func(m *Message) {
		c := *m
		c.Truncated = false
		out = append(out, c)
	}
	if n <= 0 {
		n = len(b)
	}
	for i := 0; i < len(b); i += n {
		j := min(i+n, len(b))
		k := 0
		if sk, ok := st.(Skipper); ok && skip {
			k = sk.Skippable(response)
		}
		switch {
		case k >= j-i:
			st.Feed(nil, j-i, response, emit)
		case k > 0:
			st.Feed(nil, k, response, emit)
			st.Feed(b[i+k:j], j-i-k, response, emit)
		default:
			st.Feed(b[i:j], j-i, response, emit)
		}
	}
	return out
}

// FuzzFramedSkip: for every framed protocol, pieces given without their
// bytes wherever the stream called them skippable (as the capture sends a
// syscall wholly inside a range it was told) leave every message as read
// with them, but for Truncated.
func FuzzFramedSkip(f *testing.F) {
	big := func(hdr []byte, n int) []byte { return append(append([]byte{}, hdr...), make([]byte, n)...) }
	f.Add(uint8(0), big([]byte{'D', 0, 0, 0x20, 4, 0, 1, 0, 0, 0x1f, 0xfa}, 8192-6), true, uint8(200))
	f.Add(uint8(1), big([]byte{0, 0, 0x20, 0, 0, 0, 0, 9, 0, 0, 0, 7, 0, 3, 'c', 'l', 'i'}, 8192-13), false, uint8(250))
	f.Add(uint8(2), big([]byte{0, 0x20, 0, 0, 3, 's', 'e', 'l'}, 8192-4), false, uint8(100))
	f.Add(uint8(3), append(big([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 0, 0, 0, 1}, 8192), 0, 0, 1, 1, 5, 0, 0, 0, 1, 0x88), true, uint8(255))
	// Long statements whose text fills the head: a skip that started
	// inside the head's room would lose some of it.
	text := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i*7%26)
		}
		return b
	}
	f.Add(uint8(2), append([]byte{0, 0x20, 0, 0, 3}, text(8191)...), false, uint8(100))
	f.Add(uint8(0), append(append([]byte{'Q', 0, 0, 0x20, 4}, text(8191)...), 0), false, uint8(150))
	protos := []StreamParser{PostgreSQL{}, Kafka{}, MySQL{}, HTTP2{}}
	f.Fuzz(func(t *testing.T, proto uint8, b []byte, response bool, n uint8) {
		p := protos[int(proto)%len(protos)]
		read := feedSkipping(p.NewStream(), b, response, int(n), false)
		skipped := feedSkipping(p.NewStream(), b, response, int(n), true)
		if len(skipped) != len(read) {
			t.Fatalf("%T, pieces of %d: %d messages with skips, %d read", p, n, len(skipped), len(read))
		}
		for i := range read {
			if skipped[i] != read[i] {
				t.Fatalf("%T, pieces of %d, message %d: %+v with skips, %+v read", p, n, i, skipped[i], read[i])
			}
		}
	})
}

// BenchmarkFramedSkip: a MySQL query of 256 KiB in 16 KiB reads whose first
// 1024 bytes are captured (the capture's default), its 4 KiB head gathered
// from the first five, the rest told skippable and fed without bytes, then
// the server's OK.
func BenchmarkFramedSkip(b *testing.B) {
	const read, captured = 16384, 1024
	size := 1 << 18
	pkt := make([]byte, 4+size)
	pkt[0], pkt[1], pkt[2], pkt[4] = byte(size), byte(size>>8), byte(size>>16), 3 // COM_QUERY
	copy(pkt[5:], "select 1 from t where x in (")
	ok := []byte{7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}
	st := MySQL{}.NewStream()
	n, skipped := 0, 0
	emit := func(*Message) { n++ }
	for i := 0; i < b.N; i++ {
		for off := 0; off < len(pkt); off += read {
			k := min(read, len(pkt)-off)
			if st.(Skipper).Skippable(false) >= k {
				st.Feed(nil, k, false, emit)
				skipped++
			} else {
				st.Feed(pkt[off:off+min(k, captured)], k, false, emit)
			}
		}
		st.Feed(ok, len(ok), true, emit)
	}
	if n == 0 || skipped == 0 {
		b.Fatalf("%d messages, %d reads skipped", n, skipped)
	}
}
