package l7

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// HTTP1 parses HTTP/1.0 and 1.1 heads.
type HTTP1 struct{}

func (HTTP1) Protocol() span.L7Protocol { return span.L7HTTP1 }

var methods = [][]byte{[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("DELETE "), []byte("HEAD "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE ")}

// Detect: a request line starting with a known method, or a status line.
func (HTTP1) Detect(b []byte) bool {
	if bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return true
	}
	for _, m := range methods {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}

// startLinePrefix reports whether b, which holds no CRLF, can begin an
// HTTP/1 head: "HTTP/1." or a request method and its space, or a prefix of
// either. It marks m a response once b holds "HTTP/", a request of its
// method once b holds the method and its space.
func startLinePrefix(b []byte, m *Message) bool {
	if len(b) == 0 {
		return false
	}
	const status = "HTTP/1."
	if bytes.HasPrefix(b, []byte(status)) || (len(b) < len(status) && bytes.HasPrefix([]byte(status), b)) {
		m.Response = len(b) >= len("HTTP/")
		return true
	}
	for _, meth := range methods {
		if bytes.HasPrefix(b, meth) {
			m.Method = intern(meth[:len(meth)-1])
			return true
		}
		if len(b) < len(meth) && bytes.HasPrefix(meth, b) {
			return true
		}
	}
	return false
}

// Redacted header values never leave the collector.
var redacted = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true}

// IsRedacted reports whether a header's value must not be stored.
func IsRedacted(name string) bool { return redacted[strings.ToLower(name)] }

// Parse reads a request or response head from b.
//
// The head is scanned once, line by line: its end is the first empty line
// after the start line, which is where the first "\r\n\r\n" of b is (no
// search for it ahead of the lines).
func (HTTP1) Parse(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7HTTP1, BodyLen: -1}
	nl := indexCRLF(b)
	if nl < 0 {
		// No whole start line yet: a head still coming when b can begin
		// one (a read into a small buffer, a head written in pieces),
		// anything else is not a message.
		if !startLinePrefix(b, m) {
			return ErrMalformed
		}
		return ErrIncomplete
	}
	line := b[:nl]
	if bytes.HasPrefix(line, []byte("HTTP/1.")) {
		// HTTP/1.1 200 OK
		m.Response = true
		if len(line) < 12 || line[8] != ' ' {
			return ErrMalformed
		}
		m.Version = intern(line[5:8])
		code, err := strconv.Atoi(string(line[9:12]))
		if err != nil || code < 100 || code > 999 {
			return ErrMalformed
		}
		m.Status = code
		if len(line) > 13 {
			m.Reason = intern(line[13:])
		}
		m.NoBody = code < 200 || code == 204 || code == 304
	} else {
		sp1 := bytes.IndexByte(line, ' ')
		sp2 := bytes.LastIndexByte(line, ' ')
		if sp1 <= 0 || sp2 <= sp1 || !bytes.HasPrefix(line[sp2+1:], []byte("HTTP/1.")) || len(line) != sp2+9 {
			return ErrMalformed
		}
		m.Method = intern(line[:sp1])
		path := line[sp1+1 : sp2]
		if len(path) > MaxPath {
			path = path[:MaxPath]
		}
		m.Path = string(path)
		m.Version = intern(line[sp2+6:])
		m.BodyLen = 0 // a request without Content-Length or chunked has no body
	}
	m.KeepAlive = m.Version == "1.1"
	complete := false
	for off := nl + 2; ; {
		i := indexCRLF(b[off:])
		if i < 0 {
			break // a header cut by the capture: ignore it
		}
		h := b[off : off+i]
		off += i + 2
		if i == 0 { // the empty line: the head's end
			complete = true
			m.HeaderLen = off
			break
		}
		c := bytes.IndexByte(h, ':')
		if c <= 0 {
			return ErrMalformed
		}
		name := h[:c]
		if !readHeader[name[0]] {
			continue // Server, Date, Content-Type, …: nothing read from them
		}
		val := bytes.TrimSpace(h[c+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 0 {
				return ErrMalformed
			}
			m.BodyLen = n
		case asciiEqualFold(name, "transfer-encoding"):
			if bytes.Contains(bytes.ToLower(val), []byte("chunked")) {
				m.Chunked = true
			}
		case asciiEqualFold(name, "host"):
			m.Host = intern(val)
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(val, "close") {
				m.KeepAlive = false
			} else if asciiEqualFold(val, "keep-alive") {
				m.KeepAlive = true
			}
		default:
			applyTraceHeader(name, val, m)
		}
	}
	if m.Chunked {
		m.BodyLen = -1
	}
	if !complete {
		return ErrIncomplete
	}
	return nil
}

// indexCRLF is bytes.Index(b, "\r\n"): a search for '\n' (IndexByte,
// a bare '\n' skipped) costs about half of the two-byte search on the short
// lines of a head.
func indexCRLF(b []byte) int {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		if j := off + i; j > 0 && b[j-1] == '\r' {
			return j - 1
		}
		off += i + 1
	}
}

// readHeader holds the first bytes, either case, of the headers Parse and
// applyTraceHeader read (content-length, connection, transfer-encoding,
// traceparent, host, x-request-id, x-b3-*, b3, uber-trace-id): a header
// starting otherwise is skipped without comparing its name ten times.
var readHeader = func() (t [256]bool) {
	for _, c := range "cthxbu" {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

// applyTraceHeader reads the headers that correlate spans: X-Request-ID and
// the W3C, B3 and Jaeger trace contexts (HTTP/1 and HTTP/2 alike).
func applyTraceHeader(name, val []byte, m *Message) {
	switch {
	case asciiEqualFold(name, "x-request-id"):
		m.XRequestID = string(val)
	case asciiEqualFold(name, "traceparent"):
		// 00-<32 hex trace id>-<16 hex parent id>-<flags>
		if len(val) >= 55 && val[2] == '-' && val[35] == '-' {
			if t, ok := span.ParseTraceID(string(val[3:35])); ok {
				m.TraceID = t
				m.ParentSpanID = parseHex64(val[36:52])
			}
		}
	case asciiEqualFold(name, "x-b3-traceid"):
		if t, ok := span.ParseTraceID(string(val)); ok {
			m.TraceID = t
		}
	case asciiEqualFold(name, "x-b3-spanid"):
		m.ParentSpanID = parseHex64(val)
	case asciiEqualFold(name, "b3"):
		// b3: <trace id>-<span id>[-<sampled>[-<parent>]]
		if parts := bytes.Split(val, []byte("-")); len(parts) >= 2 {
			if t, ok := span.ParseTraceID(string(parts[0])); ok {
				m.TraceID = t
				m.ParentSpanID = parseHex64(parts[1])
			}
		}
	case asciiEqualFold(name, "uber-trace-id"):
		// {trace-id}:{span-id}:{parent-span-id}:{flags}
		if parts := bytes.Split(val, []byte(":")); len(parts) == 4 {
			tid := string(parts[0])
			if len(tid) < 32 && len(tid) > 16 {
				tid = strings.Repeat("0", 32-len(tid)) + tid
			} else if len(tid) < 16 {
				tid = strings.Repeat("0", 16-len(tid)) + tid
			}
			if t, ok := span.ParseTraceID(tid); ok {
				m.TraceID = t
				m.ParentSpanID = parseHex64(parts[1])
			}
		}
	}
}

func parseHex64(b []byte) uint64 {
	if len(b) == 0 || len(b) > 16 {
		return 0
	}
	var buf [8]byte
	src := make([]byte, 16)
	copy(src[16-len(b):], b)
	for i := 0; i < 16-len(b); i++ {
		src[i] = '0'
	}
	if _, err := hex.Decode(buf[:], src); err != nil {
		return 0
	}
	var v uint64
	for _, c := range buf {
		v = v<<8 | uint64(c)
	}
	return v
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// ChunkedEnd reports whether b (the tail of a chunked body) ends with the
// last chunk.
func ChunkedEnd(b []byte) bool {
	return bytes.HasSuffix(b, []byte("0\r\n\r\n"))
}
