package l7

import (
	"errors"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func TestRedis(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		response bool
		want     Message
		err      error
	}{
		{"SET request",
			"*3\r\n" + // array of 3
				"$3\r\nSET\r\n" + // command
				"$4\r\nuser\r\n" + // key
				"$5\r\nalice\r\n", // value
			false, Message{Protocol: span.L7Redis, Method: "SET", Path: "user", HeaderLen: 34}, nil}, // 4+9+10+11
		{"lower-case command", "*2\r\n$3\r\nget\r\n$1\r\nk\r\n", false,
			Message{Protocol: span.L7Redis, Method: "GET", Path: "k", HeaderLen: 20}, nil},
		{"request cut by the capture", "*3\r\n$3\r\nSET\r\n$4\r\nuser\r\n$100000\r\nxx", false,
			Message{Protocol: span.L7Redis, Method: "SET", Path: "user"}, ErrIncomplete},
		{"status reply", "+OK\r\n", true, Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, HeaderLen: 5}, nil},
		{"error reply", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", true,
			Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusClientError,
				Reason: "WRONGTYPE Operation against a key holding the wrong kind of value", HeaderLen: 68}, nil},
		{"server error", "-LOADING Redis is loading the dataset in memory\r\n", true,
			Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusServerError,
				Reason: "LOADING Redis is loading the dataset in memory", HeaderLen: 49}, nil},
		{"bulk reply", "$5\r\nalice\r\n", true, Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, HeaderLen: 11}, nil},
		{"nil reply", "$-1\r\n", true, Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, HeaderLen: 5}, nil},
		{"bulk past the capture", "$100000\r\nxxxx", true,
			Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, HeaderLen: 100011, BodyLen: 100011}, nil},
		{"array reply", "*2\r\n$1\r\na\r\n:42\r\n", true, Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, HeaderLen: 16}, nil},
		{"resp3 map", "%1\r\n+k\r\n#t\r\n", true, Message{Protocol: span.L7Redis, Response: true, RespStatus: span.StatusOK, HeaderLen: 12}, nil},
		{"garbage reply", "?what\r\n", true, Message{}, ErrMalformed},
		{"inline request", "PING\r\n", false, Message{}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := Redis{}.ParseDir([]byte(tc.in), tc.response, &m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err == ErrMalformed {
				return
			}
			if m != tc.want {
				t.Fatalf("got  %+v\nwant %+v", m, tc.want)
			}
		})
	}
	// Detection does not take HTTP, TLS or replies for Redis requests, nor the reverse.
	for in, want := range map[string]bool{"*1\r\n$4\r\nPING\r\n": true, "*2\r\n$1\r\na\r\n:1\r\n": true,
		"GET / HTTP/1.1\r\n": false, "+OK\r\n": false, "\x16\x03\x01\x02\x00": false, "*1\r\n$4\r\n\x00\x01\x02\x03\r\n": false} {
		if got := (Redis{}).Detect([]byte(in)); got != want {
			t.Errorf("Redis Detect(%q) = %v", in, got)
		}
	}
	if p := Detect([]byte("*1\r\n$4\r\nPING\r\n")); p == nil || p.Protocol() != span.L7Redis {
		t.Errorf("registry detects %v", p)
	}
	if p := Detect([]byte("GET / HTTP/1.1\r\n\r\n")); p == nil || p.Protocol() != span.L7HTTP1 {
		t.Errorf("registry detects %v for HTTP", p)
	}
}

func FuzzRedis(f *testing.F) {
	for _, s := range []string{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n", "-ERR x\r\n", "*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "%1\r\n+k\r\n#t\r\n", "$-1\r\n"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, response bool) {
		var m Message
		if err := (Redis{}).ParseDir(b, response, &m); err == nil && m.HeaderLen <= 0 {
			t.Fatalf("message of %d bytes", m.HeaderLen)
		}
		Redis{}.Detect(b)
	})
}

func BenchmarkRedisParse(b *testing.B) {
	req := []byte("*3\r\n$3\r\nSET\r\n$8\r\nuser:100\r\n$5\r\nalice\r\n")
	var m Message
	for i := 0; i < b.N; i++ {
		if err := (Redis{}).ParseDir(req, false, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
