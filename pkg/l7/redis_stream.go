package l7

import (
	"bytes"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// NewStream reads a Redis connection as two byte streams: a request or a
// reply ends where its RESP value ends, whatever reads cut it. Read one
// chunk at a time, a reply cut inside a line or between the elements of an
// array made a message of its first part and, of the rest, bogus replies
// (a chunk starting "$3\r\nfoo\r\n" is a reply) or none: every later
// reply of the connection answered the wrong request.
// The stream starts at a message in both directions (the session detects
// the protocol on one).
func (Redis) NewStream() Stream {
	return &redisConn{dir: [2]redisDir{{synced: true}, {synced: true}}}
}

type redisConn struct{ dir [2]redisDir }

// maxRedisLine bounds the bytes kept of a line cut across chunks: a
// length or count line is at most 21 bytes; of a longer (simple string or
// error) line the first bytes are kept (the reply's reason).
const maxRedisLine = 300

// redisDir is the state of one direction.
type redisDir struct {
	pos    int64 // real bytes consumed
	synced bool  // at a known place in the values: between them or inside one
	start  int64 // offset of the message being read
	left   int   // values still to read in the message (0: between messages)
	bulk   int   // bytes of a bulk string (with its CRLF) still to come
	line   []byte
	long   bool // the line went past maxRedisLine: the rest is skipped
	first  bool // the next line is the message's first
	arg    int  // request: index of the bulk string being read
	keep   []byte
	blob   bool // reply: the bulk string is a blob error, kept as the reason
	lost   bool // bytes of the message were not captured
	m      Message
}

// Feed consumes the next bytes of one direction.
func (c *redisConn) Feed(data []byte, n int, response bool, emit func(*Message)) {
	d := &c.dir[dirIndex(response)]
	base := d.pos
	d.pos += int64(n)
	if !d.synced {
		if !redisStarts(data, response) {
			return
		}
		d.synced, d.left = true, 0
	}
	for i := 0; i < n; {
		if d.left == 0 && d.bulk == 0 { // a message starts
			d.start, d.left, d.first, d.arg, d.lost, d.line, d.long = base+int64(i), 1, true, 0, false, d.line[:0], false
			d.m = Message{Protocol: span.L7Redis, Response: response, Offset: d.start}
		}
		if d.bulk > 0 {
			k := min(d.bulk, n-i)
			c := max(0, min(k, len(data)-i))
			if c > 0 {
				d.gather(data[i : i+c])
			}
			if c < k {
				d.lost = true
			}
			d.bulk -= k
			i += k
			if d.bulk == 0 {
				d.bulkEnd()
				d.ended(base+int64(i), emit)
			}
			continue
		}
		if i >= len(data) {
			// A line in bytes not captured: the message is taken to end
			// with them (as read whole); the next chunk that starts a
			// value starts the next one.
			d.lost = true
			d.left, d.bulk = 0, 0
			d.m.Length, d.m.Truncated = base+int64(n)-d.start, true
			emit(&d.m)
			d.synced = false
			return
		}
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			d.addLine(data[i:])
			i = len(data)
			continue
		}
		d.addLine(data[i : i+j+1])
		i += j + 1
		if !d.value() {
			d.left, d.bulk, d.synced = 0, 0, false
			return
		}
		d.ended(base+int64(i), emit)
	}
}

// Skippable is the rest of the bulk string being read in a direction when
// the message keeps nothing of it: a reply's value (not a blob error's
// text), a request's argument after its command and key. Its bytes are
// counted (the CRLF that ends it included), never read.
func (c *redisConn) Skippable(response bool) int {
	d := &c.dir[dirIndex(response)]
	if !d.synced || d.bulk == 0 || d.m.Response && d.blob || !d.m.Response && d.arg < 2 {
		return 0
	}
	return d.bulk
}

// Resync drops the message being read in a direction: the next chunk
// that starts a value starts the next one.
func (c *redisConn) Resync(response bool) {
	d := &c.dir[dirIndex(response)]
	d.synced, d.left, d.bulk, d.line, d.long = false, 0, 0, d.line[:0], false
}

// redisStarts reports whether a chunk of a direction not in sync may
// start a message there.
func redisStarts(b []byte, response bool) bool {
	if !response {
		return Redis{}.Detect(b)
	}
	return len(b) > 0 && bytes.IndexByte([]byte("+-:$*_,#(=!~>%|"), b[0]) >= 0
}

func (d *redisDir) addLine(b []byte) {
	if room := maxRedisLine - len(d.line); room < len(b) {
		b, d.long = b[:max(room, 0)], true
	}
	d.line = append(d.line, b...)
}

// value reads the line gathered (its CRLF included): false when it is not
// RESP.
func (d *redisDir) value() bool {
	line, long := d.line, d.long
	d.line, d.long = d.line[:0], false
	switch {
	case !long && (len(line) < 3 || line[len(line)-2] != '\r'):
		return false
	case !long:
		line = line[:len(line)-2]
	case line[0] != '+' && line[0] != '-':
		return false // only a simple string or an error may be that long
	}
	t, text := line[0], line[1:]
	first := d.first
	d.first = false
	d.left--
	if !d.m.Response {
		if first && t != '*' || !first && t != '$' {
			return false // inline commands are not read
		}
	}
	switch t {
	case '+', '-', ':', '_', ',', '#', '(':
		if first {
			fillReply(&d.m, t, text)
		}
		return true
	case '$', '=', '!':
		l, err := strconv.Atoi(string(text))
		if err != nil || l < -1 || l > 512<<20 {
			return false
		}
		if first {
			fillReply(&d.m, t, nil)
		}
		if l >= 0 {
			d.bulk = l + 2
			d.keep = d.keep[:0]
			d.blob = first && t == '!'
		}
		return true
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(string(text))
		if err != nil || n < -1 || n > 1<<24 || !d.m.Response && first && n < 1 {
			return false
		}
		if first && d.m.Response {
			fillReply(&d.m, t, nil)
		}
		switch {
		case n < 0:
		case t == '%':
			n *= 2
		case t == '|': // an attribute map, then the value it describes
			n = 2*n + 1
		}
		d.left += max(n, 0)
		return true
	}
	return false
}

// gather keeps what a message needs of a bulk string: a request's
// command and key, a reply's blob error.
func (d *redisDir) gather(b []byte) {
	if d.m.Response && !d.blob || !d.m.Response && d.arg > 1 {
		return
	}
	if room := MaxPath + 2 - len(d.keep); room > 0 {
		d.keep = append(d.keep, b[:min(room, len(b))]...)
	}
}

// bulkEnd acts on a bulk string read to its end.
func (d *redisDir) bulkEnd() {
	s := d.keep
	s = bytes.TrimSuffix(s, []byte("\r\n"))
	switch {
	case !d.m.Response && d.arg < 2:
		fill(&d.m, d.arg, string(s))
	case d.blob:
		fillReply(&d.m, '-', s)
		d.blob = false
	}
	d.arg++
	d.keep = d.keep[:0]
}

// ended emits the message when its last value has been read; end is the
// offset after it.
func (d *redisDir) ended(end int64, emit func(*Message)) {
	if d.left > 0 || d.bulk > 0 {
		return
	}
	d.m.Length, d.m.Truncated = end-d.start, d.lost
	emit(&d.m)
}
