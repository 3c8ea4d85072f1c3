package l7

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Redis parses RESP2/RESP3: requests are arrays of bulk strings (the
// command, then its arguments); replies are any RESP value. Requests and
// replies pair in order (pipelining is FIFO).
type Redis struct{}

func (Redis) Protocol() span.L7Protocol { return span.L7Redis }

// Detect recognises a request: "*<n>\r\n$<len>\r\n<COMMAND>\r\n" with a
// command made of letters.
func (Redis) Detect(b []byte) bool {
	if len(b) < 8 || b[0] != '*' {
		return false
	}
	n, rest, ok := respInt(b[1:])
	if !ok || n < 1 || n > 1<<20 || len(rest) < 4 || rest[0] != '$' {
		return false
	}
	l, rest, ok := respInt(rest[1:])
	if !ok || l < 1 || l > 32 || len(rest) < l {
		return false
	}
	for _, c := range rest[:l] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '|') {
			return false
		}
	}
	return true
}

// respInt reads "<int>\r\n".
func respInt(b []byte) (int, []byte, bool) {
	i := bytes.IndexByte(b, '\r')
	if i <= 0 || i > 20 || i+1 >= len(b) || b[i+1] != '\n' {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(b[:i]))
	if err != nil {
		return 0, nil, false
	}
	return n, b[i+2:], true
}

// Parse reads a request when b is an array of bulk strings led by a command,
// else a reply. Use ParseDir when the direction is known.
func (r Redis) Parse(b []byte, m *Message) error {
	return r.ParseDir(b, !r.Detect(b), m)
}

// ParseDir reads a request or a reply.
func (Redis) ParseDir(b []byte, response bool, m *Message) error {
	*m = Message{Protocol: span.L7Redis, Response: response, BodyLen: 0}
	if len(b) == 0 {
		return ErrNotMessage
	}
	if !response {
		if b[0] != '*' {
			return ErrMalformed // inline commands are not parsed
		}
		n, rest, ok := respInt(b[1:])
		if !ok || n < 1 {
			return ErrMalformed
		}
		off := len(b) - len(rest)
		for i := 0; i < n; i++ {
			if off >= len(b) {
				m.HeaderLen = 0
				return ErrIncomplete
			}
			if b[off] != '$' {
				return ErrMalformed
			}
			l, rest, ok := respInt(b[off+1:])
			if !ok || l < 0 {
				if !bytes.Contains(b[off:], []byte("\r\n")) {
					return ErrIncomplete
				}
				return ErrMalformed
			}
			start := len(b) - len(rest)
			end := start + l
			if end > len(b) {
				if i < 2 {
					fill(m, i, string(b[start:]))
				}
				return ErrIncomplete
			}
			if i < 2 {
				fill(m, i, string(b[start:end]))
			}
			off = end + 2
		}
		if off > len(b) {
			return ErrIncomplete
		}
		m.HeaderLen = off
		return nil
	}
	n, err := respValue(b, 0, m, 0)
	if err != nil {
		return err
	}
	m.HeaderLen = n
	return nil
}

// fill keeps the command (i = 0) and its first argument, the key, but
// not the argument of AUTH ("AUTH password", "AUTH user password") nor a
// HELLO argument other than the protocol version ("HELLO 3 AUTH user
// password"): logins never reach a span.
func fill(m *Message, i int, s string) {
	if i == 0 {
		m.Method = strings.ToUpper(s)
		return
	}
	switch m.Method {
	case "AUTH":
		return
	case "HELLO":
		if _, err := strconv.Atoi(s); err != nil {
			return
		}
	}
	if len(s) > MaxPath {
		s = s[:MaxPath]
	}
	m.Path = s
}

// respValue returns the length of the RESP value at off; the first error
// reply sets the message's status.
func respValue(b []byte, off int, m *Message, depth int) (int, error) {
	if depth > 32 {
		return 0, ErrMalformed
	}
	if off >= len(b) {
		return 0, ErrIncomplete
	}
	t := b[off]
	line := b[off+1:]
	i := bytes.Index(line, []byte("\r\n"))
	if i < 0 {
		if depth == 0 {
			fillReply(m, t, line)
		}
		return 0, ErrIncomplete
	}
	head := 1 + i + 2
	if depth == 0 {
		fillReply(m, t, line[:i])
	}
	switch t {
	case '+', '-', ':', '_', ',', '#', '(':
		return head, nil
	case '$', '=', '!':
		l, err := strconv.Atoi(string(line[:i]))
		if err != nil || l < -1 {
			return 0, ErrMalformed
		}
		if l == -1 {
			return head, nil
		}
		total := head + l + 2
		if off+total > len(b) {
			m.BodyLen = total // the value runs past the captured bytes
			return total, nil
		}
		return total, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(string(line[:i]))
		if err != nil || n < -1 || n > 1<<24 {
			return 0, ErrMalformed
		}
		if t == '%' || t == '|' {
			n *= 2
		}
		pos := off + head
		for k := 0; k < n; k++ {
			l, err := respValue(b, pos, m, depth+1)
			if err != nil {
				return 0, err
			}
			pos += l
		}
		return pos - off, nil
	}
	return 0, ErrMalformed
}

func fillReply(m *Message, t byte, line []byte) {
	switch t {
	case '-', '!':
		msg := string(line)
		if len(msg) > 256 {
			msg = msg[:256]
		}
		m.Reason = msg
		code := msg
		if i := strings.IndexByte(msg, ' '); i > 0 {
			code = msg[:i]
		}
		switch code {
		case "ERR", "WRONGTYPE", "NOSCRIPT", "NOAUTH", "WRONGPASS", "NOPERM", "EXECABORT", "NOPROTO":
			m.RespStatus = span.StatusClientError
		default:
			m.RespStatus = span.StatusServerError
		}
	default:
		m.RespStatus = span.StatusOK
	}
}
