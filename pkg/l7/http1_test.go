package l7

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func TestHTTP1Parse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Message
		err  error
	}{
		{"request with host and x-request-id",
			"GET /reviews/0?u=1 HTTP/1.1\r\n" + // request line
				"Host: reviews:9080\r\n" +
				"X-Request-ID: 7f1c\r\n" +
				"Authorization: Bearer secret\r\n" + // never read into the message
				"\r\n",
			Message{Method: "GET", Path: "/reviews/0?u=1", Version: "1.1", Host: "reviews:9080", XRequestID: "7f1c",
				KeepAlive: true, HeaderLen: 101, BodyLen: 0}, nil}, // 29+20+20+30+2
		{"post with content-length",
			"POST /api HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello world",
			Message{Method: "POST", Path: "/api", Version: "1.0", HeaderLen: 42, BodyLen: 11}, nil}, // 20+20+2
		{"response 503 with reason",
			"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nX-Request-ID: abc\r\n\r\n",
			Message{Response: true, Version: "1.1", Status: 503, Reason: "Service Unavailable", XRequestID: "abc",
				KeepAlive: true, HeaderLen: 74, BodyLen: 0}, nil},
		{"chunked response",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			Message{Response: true, Version: "1.1", Status: 200, Reason: "OK", KeepAlive: true, HeaderLen: 47, BodyLen: -1, Chunked: true}, nil},
		{"204 has no body",
			"HTTP/1.1 204 No Content\r\n\r\n",
			Message{Response: true, Version: "1.1", Status: 204, Reason: "No Content", KeepAlive: true, HeaderLen: 27, BodyLen: -1, NoBody: true}, nil},
		{"connection close",
			"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
			Message{Response: true, Version: "1.1", Status: 200, Reason: "OK", HeaderLen: 38, BodyLen: -1}, nil},
		{"head cut by the capture",
			"GET /a HTTP/1.1\r\nHost: x\r\nUser-Ag",
			Message{Method: "GET", Path: "/a", Version: "1.1", Host: "x", KeepAlive: true, BodyLen: 0}, ErrIncomplete},
		// A read into a small buffer, or a head written in pieces: the
		// start line itself not whole yet.
		{"status line cut before its CRLF", "HTTP/1.1 200 OK\r", // 16 bytes: a 16-byte read
			Message{Response: true, BodyLen: -1}, ErrIncomplete},
		{"status line's first 8 bytes", "HTTP/1.1", Message{Response: true, BodyLen: -1}, ErrIncomplete},
		{"a prefix of HTTP/1.", "HTT", Message{BodyLen: -1}, ErrIncomplete}, // also of no method: response not yet known
		{"request line cut in its path", "GET /reviews/0?u", Message{Method: "GET", BodyLen: -1}, ErrIncomplete},
		{"a prefix of a method", "DELE", Message{BodyLen: -1}, ErrIncomplete},
		{"no CRLF, not a start line", "ontent-Length: 5", Message{}, ErrMalformed}, // the middle of a head
		{"no CRLF, a body's bytes", "hello", Message{}, ErrMalformed},
		{"no CRLF, a method without its space", "GETX /", Message{}, ErrMalformed},
		{"no CRLF, HTTP/2's version", "HTTP/2 200", Message{}, ErrMalformed},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", Message{}, ErrMalformed},
		{"bad request line", "GET /a\r\n\r\n", Message{}, ErrMalformed},
		{"header without colon", "GET / HTTP/1.1\r\nbroken\r\n\r\n", Message{}, ErrMalformed},
		{"negative length", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", Message{}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := HTTP1{}.Parse([]byte(tc.in), &m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err == ErrMalformed {
				return
			}
			tc.want.Protocol = span.L7HTTP1
			if m != tc.want {
				t.Fatalf("got  %+v\nwant %+v", m, tc.want)
			}
		})
	}
}

func TestTraceHeaders(t *testing.T) {
	for name, h := range map[string]string{
		"traceparent":   "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"b3 single":     "b3: 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
		"b3 multi":      "X-B3-TraceId: 4bf92f3577b34da6a3ce929d0e0e4736\r\nX-B3-SpanId: 00f067aa0ba902b7",
		"uber-trace-id": "uber-trace-id: 4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
	} {
		var m Message
		if err := (HTTP1{}).Parse([]byte("GET / HTTP/1.1\r\n"+h+"\r\n\r\n"), &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.TraceID.String() != "4bf92f3577b34da6a3ce929d0e0e4736" || m.ParentSpanID != 0x00f067aa0ba902b7 {
			t.Errorf("%s: trace %s parent %x", name, m.TraceID, m.ParentSpanID)
		}
	}
}

func TestDetect(t *testing.T) {
	for in, want := range map[string]bool{"GET / HTTP/1.1\r\n": true, "HTTP/1.1 200 OK\r\n": true,
		"\x16\x03\x01": false, "*3\r\n$3\r\nSET": false, "GETTER": false} {
		if got := (HTTP1{}).Detect([]byte(in)); got != want {
			t.Errorf("HTTP1 Detect(%q) = %v", in, got)
		}
	}
	if !IsRedacted("Cookie") || !IsRedacted("authorization") || IsRedacted("host") {
		t.Error("IsRedacted")
	}
}

func FuzzHTTP(f *testing.F) {
	for _, s := range []string{"GET /a HTTP/1.1\r\nHost: h\r\nX-Request-ID: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		err := HTTP1{}.Parse(b, &m)
		if err == nil && (m.HeaderLen <= 0 || m.HeaderLen > len(b)) {
			t.Fatalf("head length %d of %d bytes", m.HeaderLen, len(b))
		}
		if len(m.Path) > MaxPath {
			t.Fatalf("path of %d bytes", len(m.Path))
		}
	})
}

func BenchmarkHTTP1Parse(b *testing.B) {
	req := []byte("GET /reviews/0 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: curl/8\r\nAccept: */*\r\nX-Request-ID: 7f1c2a\r\n\r\n")
	var m Message
	for i := 0; i < b.N; i++ {
		if err := (HTTP1{}).Parse(req, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkHTTP1ParseResponse parses the bench's nginx response head (the
// other half of each HTTP/1 span the collector makes under nginx + wrk).
func BenchmarkHTTP1ParseResponse(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Sun, 06 Dec 2026 13:30:00 GMT\r\nContent-Type: text/plain\r\n" +
		"Content-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
	var m Message
	for i := 0; i < b.N; i++ {
		if err := (HTTP1{}).Parse(resp, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestIndexCRLF checks indexCRLF against bytes.Index on every string of up
// to 8 bytes over '\r', '\n' and 'a' (bare CRs and LFs, CRLFs at either end).
func TestIndexCRLF(t *testing.T) {
	alpha := []byte("\r\na")
	var b []byte
	var walk func(n int)
	walk = func(n int) {
		if got, want := indexCRLF(b), bytes.Index(b, []byte("\r\n")); got != want {
			t.Fatalf("indexCRLF(%q) = %d, bytes.Index %d", b, got, want)
		}
		if n == 0 {
			return
		}
		for _, c := range alpha {
			b = append(b, c)
			walk(n - 1)
			b = b[:len(b)-1]
		}
	}
	walk(8)
}

// TestHTTP1SkippedHeaders: headers whose first letter no read header has
// (Server, Date, Accept) are skipped, those that do are still read, in
// either case.
func TestHTTP1SkippedHeaders(t *testing.T) {
	var m Message
	head := "HTTP/1.1 200 OK\r\nServer: x\r\nDate: y\r\nAccept: z\r\nCONTENT-LENGTH: 2\r\nconnection: close\r\nX-REQUEST-ID: r1\r\n\r\nok"
	if err := (HTTP1{}).Parse([]byte(head), &m); err != nil {
		t.Fatal(err)
	}
	if m.BodyLen != 2 || m.KeepAlive || m.XRequestID != "r1" {
		t.Fatalf("body %d keep-alive %v x-request-id %q", m.BodyLen, m.KeepAlive, m.XRequestID)
	}
	if err := (HTTP1{}).Parse([]byte("HTTP/1.1 200 OK\r\nServer x\r\n\r\n"), &m); err != ErrMalformed {
		t.Fatalf("a skipped header without a colon: %v, want ErrMalformed", err)
	}
}

// TestReadHeaderCoversParsedNames: every header name Parse or
// applyTraceHeader compares (each asciiEqualFold(name, "…") in http1.go,
// read from the source so a name added there is checked here) starts with a
// byte readHeader lets through, in either case; otherwise the header would
// be skipped unread.
func TestReadHeaderCoversParsedNames(t *testing.T) {
	src, err := os.ReadFile("http1.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`asciiEqualFold\(name, "([^"]+)"\)`).FindAllSubmatch(src, -1)
	if len(names) < 10 {
		t.Fatalf("found %d header names in http1.go, want the ten or more it compares", len(names))
	}
	for _, n := range names {
		name := string(n[1])
		lo, up := strings.ToLower(name[:1])[0], strings.ToUpper(name[:1])[0]
		if !readHeader[lo] || !readHeader[up] {
			t.Errorf("header %q is compared but readHeader skips names starting with %q/%q", name, lo, up)
		}
	}
}
