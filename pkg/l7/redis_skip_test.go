package l7

import (
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
)

// TestRedisSkippable: after a chunk, the bytes a direction will count
// without reading are the rest of a bulk string the message keeps nothing
// of: a reply's value, a request's argument after its command and key.
func TestRedisSkippable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		b        []byte
		n        int // real bytes of the chunk (len(b) captured)
		response bool
		want     int
	}{
		{"a reply's value, 10 of 100 bytes read", annotated.Hex(`
			24 313030 0d0a       // "$100\r\n"
			30313233343536373839 // 10 bytes of the value
		`), 16, true, 92}, // 90 bytes and the CRLF
		{"the same, 1000 real bytes of which 16 captured", annotated.Hex(`
			24 31303030 0d0a   // "$1000\r\n"
			303132333435363738 // 9 bytes captured
		`), 516, true, 1002 - 509},
		{"a value in an array, after a whole one", annotated.Hex(`
			2a32 0d0a                  // "*2\r\n"
			2435 0d0a 68656c6c6f 0d0a // "$5\r\nhello\r\n"
			243530 0d0a 7878           // "$50\r\nxx"
		`), 22, true, 50},
		{"a blob error: its text is the reason", annotated.Hex(`
			21 3230 0d0a 4552 // "!20\r\nER"
		`), 7, true, 0},
		{"a SET's value", annotated.Hex(`
			2a33 0d0a            // "*3\r\n"
			2433 0d0a 534554 0d0a // "$3\r\nSET\r\n"
			2431 0d0a 6b 0d0a     // "$1\r\nk\r\n"
			24313030 0d0a 76767676 // "$100\r\nvvvv"
		`), 30, false, 98},
		{"a GET's key: kept", annotated.Hex(`
			2a32 0d0a             // "*2\r\n"
			2433 0d0a 474554 0d0a // "$3\r\nGET\r\n"
			243130 0d0a 6162      // "$10\r\nab"
		`), 22, false, 0},
		{"a line cut", annotated.Hex(`
			2b4f // "+O"
		`), 2, true, 0},
		{"the value read to its end", annotated.Hex(`
			2432 0d0a 6f6b 0d0a // "$2\r\nok\r\n"
		`), 8, true, 0},
		{"not RESP: out of sync", annotated.Hex(`
			48545450 // "HTTP"
		`), 4, true, 0},
	} {
		st := Redis{}.NewStream()
		st.Feed(tc.b, tc.n, tc.response, func(*Message) {})
		if got := st.(Skipper).Skippable(tc.response); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if got := st.(Skipper).Skippable(!tc.response); got != 0 {
			t.Errorf("%s: the other direction %d, want 0", tc.name, got)
		}
	}
}

// FuzzRedisSkip: the bytes a stream calls skippable, given without their
// content, leave every message of RESP values as read with them (but for
// Truncated).
func FuzzRedisSkip(f *testing.F) {
	for _, s := range []string{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20\r\nvvvvvvvvvvvvvvvvvvvv\r\n", "$30\r\nhello hello hello hello hello!\r\n+OK\r\n",
		"*2\r\n$10\r\naaaaaaaaaa\r\n$12\r\nbbbbbbbbbbbb\r\n", "!12\r\nERR too long\r\n:1\r\n", "|1\r\n+k\r\n$9\r\nattribute\r\n$4\r\nbody\r\n"} {
		f.Add([]byte(s), false, uint8(5))
		f.Add([]byte(s), true, uint8(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, response bool, n uint8) {
		read := redisFeed(Redis{}.NewStream(), string(b), response, 0)
		if len(read) == 0 || read[len(read)-1].Offset+read[len(read)-1].Length != int64(len(b)) {
			// Not all of b read as values: where a chunk ends decides what
			// is dropped after bytes that are not RESP, and skips move
			// those ends (FuzzRedisStream's condition too).
			skipped := feedSkipping(Redis{}.NewStream(), b, response, int(n), true)
			if len(skipped) > len(b) {
				t.Fatalf("%d messages in %d bytes", len(skipped), len(b))
			}
			return
		}
		for i := range read {
			read[i].Truncated = false
		}
		skipped := feedSkipping(Redis{}.NewStream(), b, response, int(n), true)
		if len(skipped) != len(read) {
			t.Fatalf("pieces of %d: %d messages with skips, %d read", n, len(skipped), len(read))
		}
		for i := range read {
			if skipped[i] != read[i] {
				t.Fatalf("pieces of %d, message %d: %+v with skips, %+v read", n, i, skipped[i], read[i])
			}
		}
	})
}

// BenchmarkRedisSkip: a GET of a 64 KiB value read in 16 KiB reads, the
// reads after the first told skippable and fed without their bytes.
func BenchmarkRedisSkip(b *testing.B) {
	req := []byte("*2\r\n$3\r\nGET\r\n$8\r\nuser:100\r\n")
	head := []byte("$65536\r\n")
	first := append(append([]byte{}, head...), make([]byte, 1024-len(head))...)
	st := Redis{}.NewStream()
	n := 0
	emit := func(*Message) { n++ }
	for i := 0; i < b.N; i++ {
		st.Feed(req, len(req), false, emit)
		st.Feed(first, 16384, true, emit)
		for left := 65536 + len(head) + 2 - 16384; left > 0; left -= 16384 {
			if st.(Skipper).Skippable(true) == 0 {
				b.Fatal("not skippable")
			}
			st.Feed(nil, min(left, 16384), true, emit)
		}
	}
	if n != 2*b.N {
		b.Fatalf("%d messages", n)
	}
}
