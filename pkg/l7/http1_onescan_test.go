package l7

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// parseTwoScans is Parse as it was before the one scan (its end searched first, then its lines): the reference the one scan is checked against.
func parseTwoScans(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7HTTP1, BodyLen: -1}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	complete := end >= 0
	head := b
	if complete {
		head = b[:end+2]
		m.HeaderLen = end + 4
	}
	nl := indexCRLF(head)
	if nl < 0 {
		if !complete && startLinePrefix(b, m) { // as Parse since the two scans
			return ErrIncomplete
		}
		return ErrMalformed
	}
	line := head[:nl]
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
	rest := head[nl+2:]
	for len(rest) > 0 {
		i := indexCRLF(rest)
		var h []byte
		if i < 0 {
			h, rest = rest, nil
			if complete {
				return ErrMalformed
			}
			break // a header cut by the capture: ignore it
		}
		h, rest = rest[:i], rest[i+2:]
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

// sameParse fails unless Parse and parseTwoScans agree on b: the error and,
// when it is nil or ErrIncomplete, every field of the message (after any
// other error the session reads nothing of it: collector/session's parse
// and parseMessages).
func sameParse(t *testing.T, b []byte) (Message, error) {
	t.Helper()
	var got, want Message
	gerr, werr := HTTP1{}.Parse(b, &got), parseTwoScans(b, &want)
	if !errors.Is(gerr, werr) || (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: error %v, two scans %v", b, gerr, werr)
	}
	if (gerr == nil || gerr == ErrIncomplete) && got != want {
		t.Fatalf("%q:\n one scan  %+v\n two scans %+v", b, got, want)
	}
	return got, gerr
}

// TestHTTP1OneScan: the head's end found while its lines are read, on heads
// whose end, start line or lines are where a search ahead and a line scan
// could disagree; each annotated with what Parse makes of it, and the same
// as the two scans made.
func TestHTTP1OneScan(t *testing.T) {
	for _, c := range []struct {
		in      string
		err     error
		headLen int // when err is nil
		note    string
	}{
		{"GET / HTTP/1.1\r\n\r\n", nil, 18, "the end right after the start line"},
		{"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", nil, 18, "a second head after it: not read"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil, 38, "a body after the end"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\r\n\r\n", nil, 38, "a body of CRLFs"},
		{"GET / HTTP/1.1\r\nHost: a\r\n", ErrIncomplete, 0, "no end yet"},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", ErrIncomplete, 0, "the end cut before its LF"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX-Cut", ErrIncomplete, 0, "a header cut by the capture"},
		{"GET / HTTP/1.1\r\nHost: a\n\nX: b\r\n\r\n", nil, 33, "bare LFs are no end"},
		{"GET / HTTP/1.1\r\nBad header\r\n\r\n", ErrMalformed, 0, "a line without a colon"},
		{"GET / HTTP/1.1\r\nBad header\r\n", ErrMalformed, 0, "a line without a colon, no end yet"},
		{"GET / HTTP/1.1\r\n\r\nBad header\r\n", nil, 18, "a line without a colon after the end: body"},
		{"\r\n\r\n", ErrMalformed, 0, "an empty start line is no end"},
		{"\r\nGET / HTTP/1.1\r\n\r\n", ErrMalformed, 0, "an empty start line"},
		{"GET / HTTP/1.1", ErrIncomplete, 0, "a start line cut"},
		{"", ErrMalformed, 0, "nothing"},
		{"GET / HTTP/1.1\r\n\r\r\n\r\n", ErrMalformed, 0, "a CR alone on a line: no colon"},
	} {
		m, err := sameParse(t, []byte(c.in))
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s (%q): error %v, want %v", c.note, c.in, err, c.err)
			continue
		}
		if err == nil && m.HeaderLen != c.headLen {
			t.Errorf("%s (%q): head length %d, want %d", c.note, c.in, m.HeaderLen, c.headLen)
		}
	}
}

// FuzzHTTP1OneScan: Parse and the two scans agree on any bytes.
func FuzzHTTP1OneScan(f *testing.F) {
	for _, s := range []string{"GET /a HTTP/1.1\r\nHost: h\r\nX-Request-ID: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\n\nX: b\r\n\r\n", "\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameParse(t, b) })
}
