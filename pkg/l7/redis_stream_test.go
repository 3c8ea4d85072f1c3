package l7

import (
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// redisFeed feeds b to a Redis stream in one direction, in pieces of n
// bytes (0: whole), and returns the messages.
func redisFeed(st Stream, b string, response bool, n int) []Message {
	var out []Message
	emit := func(m *Message) { out = append(out, *m) }
	if n <= 0 {
		n = len(b)
	}
	for i := 0; i < len(b); i += n {
		j := min(i+n, len(b))
		st.Feed([]byte(b[i:j]), j-i, response, emit)
	}
	return out
}

// TestRedisStream: annotated requests and replies, each a sequence read
// whole and in pieces of every size up to its length, give the same
// messages: one per RESP value, with its offset, length and fields.
func TestRedisStream(t *testing.T) {
	ok := func(off, n int64) Message {
		return Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, Offset: off, Length: n}
	}
	for _, tc := range []struct {
		name     string
		in       string
		response bool
		want     []Message
	}{
		{"requests, pipelined",
			"*3\r\n" + "$3\r\nSET\r\n" + "$4\r\nuser\r\n" + "$5\r\nalice\r\n" + // SET user alice: 4+9+10+11 = 34 bytes
				"*2\r\n" + "$3\r\nget\r\n" + "$4\r\nuser\r\n" + // get user (upper-cased): 4+9+10 = 23
				"*2\r\n" + "$4\r\nAUTH\r\n" + "$6\r\nsecret\r\n", // AUTH keeps no argument: 4+10+12 = 26
			false, []Message{
				{Protocol: span.L7Redis, Method: "SET", Path: "user", Offset: 0, Length: 34},
				{Protocol: span.L7Redis, Method: "GET", Path: "user", Offset: 34, Length: 23},
				{Protocol: span.L7Redis, Method: "AUTH", Offset: 57, Length: 26}}},
		{"replies of every kind",
			"+OK\r\n" + // status: 5
				"$5\r\nalice\r\n" + // bulk: 11
				"$-1\r\n" + // nil: 5
				"*3\r\n" + "$1\r\na\r\n" + "*1\r\n" + ":1\r\n" + "$0\r\n\r\n" + // nested array: 4+7+4+4+6 = 25
				"%1\r\n" + "+k\r\n" + "#t\r\n" + // RESP3 map: 4+4+4 = 12
				"*0\r\n" + // empty array: 4
				":42\r\n" + // integer: 5
				"|1\r\n" + "+ttl\r\n" + ":3\r\n" + "$1\r\nv\r\n", // RESP3 attribute, then its value: 4+6+4+7 = 21
			true, []Message{ok(0, 5), ok(5, 11), ok(16, 5), ok(21, 25), ok(46, 12), ok(58, 4), ok(62, 5), ok(67, 21)}},
		{"error replies",
			"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" + // 68
				"!21\r\nSYNTAX invalid syntax\r\n" + // blob error: 5+21+2 = 28
				"-LOADING Redis is loading\r\n", // server error: 27
			true, []Message{
				{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusClientError, Reason: "WRONGTYPE Operation against a key holding the wrong kind of value", Length: 68},
				{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusServerError, Reason: "SYNTAX invalid syntax", Offset: 68, Length: 28},
				{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusServerError, Reason: "LOADING Redis is loading", Offset: 96, Length: 27}}},
		{"garbage reply", "?what\r\n", true, nil},
		{"inline command", "PING\r\n", false, nil},
	} {
		for n := 0; n <= len(tc.in); n++ {
			got := redisFeed(Redis{}.NewStream(), tc.in, tc.response, n)
			if len(got) != len(tc.want) {
				t.Fatalf("%s, pieces of %d: %d messages, want %d: %+v", tc.name, n, len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("%s, pieces of %d, message %d:\ngot  %+v\nwant %+v", tc.name, n, i, got[i], tc.want[i])
				}
			}
		}
	}
}

// TestRedisStreamLost: bytes not captured are skipped inside a bulk
// string; where a line should be, the message ends with them (truncated)
// and the stream takes up again at a chunk that starts a value.
func TestRedisStreamLost(t *testing.T) {
	st := Redis{}.NewStream()
	var got []Message
	emit := func(m *Message) { got = append(got, *m) }
	big := "$100000\r\n" + strings.Repeat("x", 100) // 100009+2 bytes, 109 captured
	st.Feed([]byte(big), 100011, true, emit)
	st.Feed([]byte("+OK\r\n"), 5, true, emit)
	arr := "*3\r\n$1\r\na\r\n" // the rest of the array not captured
	st.Feed([]byte(arr), len(arr)+20, true, emit)
	st.Feed([]byte("$1\r\nb\r\n"), 7, true, emit) // mid-array? read as a reply: a chunk's start
	if len(got) != 4 {
		t.Fatalf("%d messages: %+v", len(got), got)
	}
	if got[0].Length != 100011 || !got[0].Truncated || got[1].Offset != 100011 || got[1].Length != 5 || got[1].Truncated {
		t.Errorf("bulk past the capture, then +OK: %+v %+v", got[0], got[1])
	}
	if got[2].Offset != 100016 || got[2].Length != int64(len(arr)+20) || !got[2].Truncated || got[3].Length != 7 {
		t.Errorf("array cut by the capture: %+v %+v", got[2], got[3])
	}
}

func FuzzRedisStream(f *testing.F) {
	for _, s := range []string{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n$5\r\nhello\r\n", "-ERR x\r\n:1\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "%1\r\n+k\r\n#t\r\n", "$-1\r\n!3\r\nERR\r\n"} {
		f.Add([]byte(s), false, uint8(3))
		f.Add([]byte(s), true, uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, response bool, n uint8) {
		// Pieces of any size give the messages the bytes give whole, each
		// within the bytes, in order.
		whole := redisFeed(Redis{}.NewStream(), string(b), response, 0)
		split := redisFeed(Redis{}.NewStream(), string(b), response, int(n))
		if n > 0 && len(whole) > 0 && whole[len(whole)-1].Offset+whole[len(whole)-1].Length == int64(len(b)) {
			// All of b read as values whole: so in pieces.
			if len(split) != len(whole) {
				t.Fatalf("pieces of %d: %d messages, whole %d", n, len(split), len(whole))
			}
			for i := range whole {
				if split[i] != whole[i] {
					t.Fatalf("pieces of %d, message %d: %+v, whole %+v", n, i, split[i], whole[i])
				}
			}
		}
		var end int64
		for _, m := range split {
			if m.Offset < end || m.Length <= 0 || m.Offset+m.Length > int64(len(b)) {
				t.Fatalf("message at %d+%d after %d in %d bytes", m.Offset, m.Length, end, len(b))
			}
			end = m.Offset + m.Length
		}
	})
}

func BenchmarkRedisStream(b *testing.B) {
	req := []byte("*3\r\n$3\r\nSET\r\n$8\r\nuser:100\r\n$5\r\nalice\r\n")
	resp := []byte("$5\r\nalice\r\n")
	st := Redis{}.NewStream()
	n := 0
	emit := func(*Message) { n++ }
	for i := 0; i < b.N; i++ {
		st.Feed(req, len(req), false, emit)
		st.Feed(resp, len(resp), true, emit)
	}
	if n != 2*b.N {
		b.Fatalf("%d messages", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}
