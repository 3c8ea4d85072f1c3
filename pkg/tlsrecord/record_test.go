package tlsrecord

import (
	"errors"
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
)

var unhex = annotated.Hex

// rec builds a record of type typ with n body bytes (version TLS 1.2 on
// the wire, as TLS 1.3 sends it too).
func rec(typ uint8, n int) []byte {
	b := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	for i := 0; i < n; i++ {
		b = append(b, byte(i*7+int(typ)))
	}
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		typ  uint8
		body int
		err  error
	}{
		{"handshake TLS 1.0 record version (ClientHello)", unhex(`16 0301 00c8`), TypeHandshake, 200, nil},
		{"application data TLS 1.2", unhex(`17 0303 4000`), TypeApplicationData, 1 << 14, nil},
		{"change cipher spec", unhex(`14 0303 0001`), TypeChangeCipherSpec, 1, nil},
		{"alert TLS 1.3", unhex(`15 0304 0002`), TypeAlert, 2, nil},
		{"empty application data (1/n-1 splitting)", unhex(`17 0302 0000`), TypeApplicationData, 0, nil},
		{"longest ciphertext 2^14+2048", unhex(`17 0303 4800`), TypeApplicationData, MaxBody, nil},
		{"one byte too long", unhex(`17 0303 4801`), 0, 0, ErrTooLong},
		{"content type 24 (heartbeat)", unhex(`18 0303 0010`), 0, 0, ErrNotTLS},
		{"content type 19", unhex(`13 0303 0010`), 0, 0, ErrNotTLS},
		{"SSL 3.0", unhex(`16 0300 0010`), 0, 0, ErrNotTLS},
		{"version 3.5", unhex(`17 0305 0010`), 0, 0, ErrNotTLS},
		{"major version 2", unhex(`17 0203 0010`), 0, 0, ErrNotTLS},
		{"empty handshake", unhex(`16 0303 0000`), 0, 0, ErrNotTLS},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), 0, 0, ErrNotTLS},
		{"four bytes", unhex(`17 0303 00`), 0, 0, ErrShort},
	} {
		typ, body, err := Header(tc.b)
		if !errors.Is(err, tc.err) || typ != tc.typ || body != tc.body {
			t.Errorf("%s: type %d body %d err %v, want %d %d %v", tc.name, typ, body, err, tc.typ, tc.body, tc.err)
		}
	}
	if !IsClientHello(unhex(`16 0301 00c8 01 0000c4 0303`)) || IsClientHello(unhex(`16 0303 0040 02 00003c 0303`)) || IsClientHello(unhex(`16 0301 00c8`)) {
		t.Error("IsClientHello")
	}
}

type recs []Record

func (r *recs) record(x Record) { *r = append(*r, x) }

// TestReaderSegments: record boundaries found across segment cuts.
func TestReaderSegments(t *testing.T) {
	// Two records, 7 and 3 body bytes, then a third of 2, as one stream
	// from sequence number 0xfffffff0 (it wraps).
	stream := unhex(`
		17 0303 0007  01 02 03 04 05 06 07  // record 1 at seq base+0, 12 bytes
		17 0303 0003  08 09 0a              // record 2 at base+12, 8 bytes
		15 0303 0002  01 00                 // record 3 (alert) at base+20, 7 bytes
	`)
	var base uint32 = 0xfffffff0
	want := []Record{{Type: TypeApplicationData, Seq: base, Len: 12}, {Type: TypeApplicationData, Seq: base + 12, Len: 8}, {Type: TypeAlert, Seq: base + 20, Len: 7}}
	check := func(name string, got recs) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d records %+v, want %d", name, len(got), got, len(want))
		}
		for i := range want {
			g := got[i]
			g.Seg, g.First, g.HasFirst = 0, 0, false
			if g != want[i] {
				t.Errorf("%s: record %d %+v, want %+v", name, i, g, want[i])
			}
		}
	}
	// Every cut into two and three segments: header split, body split,
	// several records per segment.
	for i := 1; i < len(stream); i++ {
		for j := i; j < len(stream); j++ {
			var r reader
			var got recs
			for _, s := range [][2]int{{0, i}, {i, j}, {j, len(stream)}} {
				if s[0] == s[1] {
					continue
				}
				if err := r.feed(base+uint32(s[0]), stream[s[0]:s[1]], 1, &got); err != nil {
					t.Fatalf("cut %d,%d: %v", i, j, err)
				}
			}
			check("cut", got)
		}
	}
	// Retransmissions: a segment again, and one overlapping the next.
	var r reader
	var got recs
	for _, s := range [][2]int{{0, 10}, {0, 10}, {5, 15}, {0, 15}, {15, len(stream)}, {20, 27}} {
		if err := r.feed(base+uint32(s[0]), stream[s[0]:s[1]], 1, &got); err != nil {
			t.Fatal(err)
		}
	}
	check("retransmitted", got)
	if r.lost {
		t.Error("retransmissions marked as loss")
	}
	// A segment lost inside record 1's body: boundaries kept, loss noted.
	r, got = reader{}, nil
	r.feed(base, stream[:6], 1, &got)
	r.feed(base+9, stream[9:], 1, &got)
	check("gap in a body", got)
	if !r.lost {
		t.Error("a gap not marked as loss")
	}
}

// TestReaderResync: bytes that are no header where one must start lose
// sync; the reader takes up again at a segment that starts with a header.
func TestReaderResync(t *testing.T) {
	var r reader
	var got recs
	if err := r.feed(100, []byte("GET / HTTP/1.1\r\n"), 1, &got); !errors.Is(err, ErrNotTLS) {
		t.Fatalf("plain text: %v", err)
	}
	// Records, then a lost segment that held a header: next segment mid-body.
	s := cat(rec(23, 10), rec(23, 10))
	r.feed(200, s[:15], 2, &got)
	if err := r.feed(200+30+4, []byte{1, 2, 3, 4}, 3, &got); err == nil {
		t.Fatal("mid-body bytes after a lost header taken as a header")
	}
	if err := r.feed(300, rec(23, 4), 4, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 200 || got[1].Seq != 300 || !r.lost {
		t.Fatalf("%+v lost=%v", got, r.lost)
	}
	// A header whose fields are bad, inside a stream.
	r, got = reader{}, nil
	if err := r.feed(0, cat(rec(23, 3), unhex(`17 0303 ffff`)), 1, &got); !errors.Is(err, ErrTooLong) || len(got) != 1 || r.synced {
		t.Fatalf("%v %+v synced=%v", err, got, r.synced)
	}
}
