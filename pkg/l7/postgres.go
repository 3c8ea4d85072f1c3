package l7

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// PostgreSQL reads the PostgreSQL frontend/backend protocol v3. A request
// is a simple query ('Q') or an extended-protocol batch up to its Sync
// ('P' Parse, 'B' Bind, 'D', 'E' Execute, ..., 'S'); its response is
// everything the server sends up to ReadyForQuery ('Z'). The stream keeps
// the database from the startup message and the text of named statements
// (a Bind of a statement parsed earlier reports its text).
type PostgreSQL struct{}

const (
	pgProtocol3  = 196608
	pgSSLRequest = 80877103
	pgGSSRequest = 80877104
	pgCancel     = 80877102
	pgKeep       = 4096
	pgMaxStmts   = 256
	pgMaxPending = 64
)

func (PostgreSQL) Protocol() span.L7Protocol { return span.L7PostgreSQL }

// Detect recognises a startup message (protocol 3.0 with a "user"
// parameter), an SSL or GSS request, a simple query or Parse with printable
// text, and the server's authentication request or ReadyForQuery.
func (PostgreSQL) Detect(b []byte) bool {
	if pgStartup(b) {
		return true
	}
	if len(b) < 6 {
		return false
	}
	l := int(binary.BigEndian.Uint32(b[1:5]))
	switch b[0] {
	case 'Q', 'P':
		if l < 5 || l > 1<<24 || !(l+1 == len(b) || l+1 < len(b) && pgTyped(b[l+1:]) || len(b) >= 512 && l+1 > len(b)) {
			return false
		}
		body := b[5:min(len(b), 1+l)]
		if b[0] == 'P' { // statement name, then the query
			i := bytes.IndexByte(body, 0)
			if i < 0 {
				return false
			}
			body = body[i+1:]
		}
		for _, c := range body[:min(len(body), 64)] {
			if c == 0 {
				break
			}
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
				return false
			}
		}
		return len(body) > 1
	case 'R':
		return l >= 8 && l <= 2048 && len(b) >= 9 && binary.BigEndian.Uint32(b[5:9]) <= 12
	case 'Z':
		return l == 5 && (b[5] == 'I' || b[5] == 'T' || b[5] == 'E')
	}
	return false
}

// pgTyped reports whether b starts with a plausible typed message header.
func pgTyped(b []byte) bool {
	if len(b) < 5 {
		return len(b) > 0 && bytes.IndexByte([]byte("QPBDESCHXpdcfFRKZTN12tnIsAG"), b[0]) >= 0
	}
	l := binary.BigEndian.Uint32(b[1:5])
	return bytes.IndexByte([]byte("QPBDESCHXpdcfFRKZTN12tnIsAGWV"), b[0]) >= 0 && l >= 4 && l < 1<<24
}

func pgStartup(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	l, code := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	switch code {
	case pgSSLRequest, pgGSSRequest:
		return l == 8
	case pgCancel:
		return l == 16
	case pgProtocol3:
		return l >= 9 && l <= 10000 && (len(b) < 13 || bytes.Contains(b[8:min(len(b), int(l))], []byte("user\x00")))
	}
	return false
}

// Parse reads one message without connection state: the startup message
// and client queries are requests, the server's messages responses.
func (PostgreSQL) Parse(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7PostgreSQL}
	if pgStartup(b) {
		m.HeaderLen = int(binary.BigEndian.Uint32(b))
		return nil
	}
	if len(b) < 5 {
		return ErrNotMessage
	}
	l := int(binary.BigEndian.Uint32(b[1:5]))
	m.HeaderLen = 1 + l
	switch b[0] {
	case 'Q':
		q := pgCString(b[5:min(len(b), 1+l)])
		m.Method, m.Path = SQLVerb(q), NormalizeSQL(q)
	case 'P':
		body := b[5:min(len(b), 1+l)]
		if i := bytes.IndexByte(body, 0); i >= 0 {
			q := pgCString(body[i+1:])
			m.Method, m.Path = SQLVerb(q), NormalizeSQL(q)
		}
	case 'R', 'Z', 'T', 'D', 'C', 'E', 'N', 'S', 'K', '1', '2':
		m.Response = true
	default:
		return ErrNotMessage
	}
	if len(b) < 1+l {
		return ErrIncomplete
	}
	return nil
}

func pgCString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// NewStream returns the decoder of one connection.
func (PostgreSQL) NewStream() Stream {
	c := &pgConn{stmts: map[string]string{}}
	c.dir = [2]pgDir{{framer: fromStart(0, 4, pgKeep), startup: true}, {framer: fromStart(1, 5, pgKeep)}}
	return c
}

// pgDir is one direction: its framer and whether the client's next
// message is the startup message.
type pgDir struct {
	framer
	startup bool // the next client message has no type byte
	typ     byte
}

// pgBatch is an extended-protocol request being assembled.
type pgBatch struct {
	text          string
	start, length int64
	trunc         bool
}

// pgResp is a response being read.
type pgResp struct {
	start, length int64
	rows          int64
	tagRows       int64
	tagged        bool
	err           string
	state         string
	trunc         bool
}

type pgConn struct {
	dir       [2]pgDir
	db, user  string
	stmts     map[string]string
	batch     *pgBatch
	pending   int // requests awaiting ReadyForQuery
	resp      *pgResp
	sslAnswer bool // the server's one-byte answer to SSLRequest is next
	tls       bool // encrypted from here on: nothing more to read
	emit      func(*Message)
}

// Skippable tells the capture the rest of a message's body past the head
// it keeps (l7.Skipper): a large DataRow's values, a large query's text.
func (c *pgConn) Skippable(response bool) int { return c.dir[dirIndex(response)].Skippable() }

// Feed implements Stream.
func (c *pgConn) Feed(data []byte, n int, response bool, emit func(*Message)) {
	d := &c.dir[dirIndex(response)]
	c.emit = emit
	base := d.advance(n)
	if c.tls {
		return
	}
	if response && c.sslAnswer && len(data) > 0 {
		c.sslAnswer = false
		if data[0] == 'S' || data[0] == 'G' {
			c.tls = true
			return
		}
		data, n, base = data[1:], n-1, base+1
	}
	d.frames(data, n, base, c)
}

// sync picks up a direction at a typed message or the startup message.
func (c *pgConn) sync(f *framer, data []byte, _ int64) bool {
	if !pgTyped(data) && !(!f.response && pgStartup(data)) {
		return false
	}
	c.dir[dirIndex(f.response)].setStartup(!f.response && pgStartup(data))
	return true
}

// setStartup says whether the client's next message is the startup
// message, whose header is its length alone.
func (d *pgDir) setStartup(v bool) {
	d.startup, d.hlen = v, 5
	if v {
		d.hlen = 4
	}
}

func (c *pgConn) frame(f *framer, hdr []byte) (int, bool) {
	d := &c.dir[dirIndex(f.response)]
	var l int
	if d.startup {
		d.typ, l = 0, int(binary.BigEndian.Uint32(hdr[:4]))-4
	} else {
		d.typ, l = hdr[0], int(binary.BigEndian.Uint32(hdr[1:5]))-4
	}
	return l, l >= 0 && l <= 1<<30
}

func (c *pgConn) end(f *framer) { c.message(&c.dir[dirIndex(f.response)], f.response) }

// message acts on a message whose body has been read.
func (c *pgConn) message(d *pgDir, response bool) {
	size := d.size()
	if response {
		c.server(d, size)
		return
	}
	if d.startup {
		c.startup(d)
		return
	}
	b := d.buf
	switch d.typ {
	case 'Q':
		q := pgCString(b)
		c.request(q, d.start, size, d.lost)
	case 'P', 'B', 'D', 'E', 'C', 'H', 'F':
		if c.batch == nil {
			c.batch = &pgBatch{start: d.start}
		}
		c.batch.length += size
		c.batch.trunc = c.batch.trunc || d.lost
		switch d.typ {
		case 'P': // statement name, query
			if i := bytes.IndexByte(b, 0); i >= 0 {
				q := pgCString(b[i+1:])
				if c.batch.text == "" {
					c.batch.text = q
				}
				if name := string(b[:i]); name != "" {
					if len(c.stmts) >= pgMaxStmts {
						for k := range c.stmts {
							delete(c.stmts, k)
							break
						}
					}
					c.stmts[name] = q
				}
			}
		case 'B': // portal, statement name
			if i := bytes.IndexByte(b, 0); i >= 0 && c.batch.text == "" {
				c.batch.text = c.stmts[pgCString(b[i+1:])]
			}
		}
	case 'S':
		bt := c.batch
		if bt == nil {
			bt = &pgBatch{start: d.start}
		}
		c.batch = nil
		c.request(bt.text, bt.start, bt.length+size, bt.trunc)
	}
}

// startup reads the startup message (or an SSL/GSS/cancel request).
func (c *pgConn) startup(d *pgDir) {
	b := d.buf
	if len(b) < 4 {
		return
	}
	switch binary.BigEndian.Uint32(b) {
	case pgSSLRequest, pgGSSRequest:
		c.sslAnswer = true
		return // the startup message follows
	case pgCancel:
		d.setStartup(false)
		return
	}
	d.setStartup(false)
	kv := bytes.Split(b[4:], []byte{0})
	for i := 0; i+1 < len(kv); i += 2 {
		switch string(kv[i]) {
		case "database":
			c.db = string(kv[i+1])
		case "user":
			c.user = string(kv[i+1])
		}
	}
	if c.db == "" {
		c.db = c.user
	}
}

func (c *pgConn) request(q string, start, length int64, trunc bool) {
	m := Message{Protocol: span.L7PostgreSQL, Method: SQLVerb(q), Path: NormalizeSQL(q), Database: c.db,
		Offset: start, Length: length, Truncated: trunc}
	if c.pending < pgMaxPending {
		c.pending++
	}
	c.emit(&m)
}

// server reads a server message: within an exchange it counts rows, reads
// tags and errors, and ReadyForQuery ends the response.
func (c *pgConn) server(d *pgDir, size int64) {
	if c.pending == 0 {
		return // startup, authentication, asynchronous messages
	}
	switch d.typ {
	case 'S', 'A', 'N':
		if c.resp == nil {
			return // asynchronous: not part of a response
		}
	}
	r := c.resp
	if r == nil {
		r = &pgResp{start: d.start}
		c.resp = r
	}
	r.length += size
	r.trunc = r.trunc || d.lost
	b := d.buf
	switch d.typ {
	case 'D':
		r.rows++
	case 'C': // command tag: "SELECT 3", "INSERT 0 1", "UPDATE 5"
		tag := pgCString(b)
		if i := bytes.LastIndexByte([]byte(tag), ' '); i >= 0 {
			if n, err := strconv.ParseInt(tag[i+1:], 10, 64); err == nil {
				r.tagRows, r.tagged = n, true
			}
		}
	case 'E':
		if r.err == "" {
			r.state, r.err = pgError(b)
		}
	case 'Z':
		c.endResponse(r)
	}
}

// gap ends the response in progress where the server's framing was lost
// in bytes not captured (the chunk's end): the ReadyForQuery that ends it
// was likely among them (a client reading a large row gets the row's tail,
// CommandComplete and ReadyForQuery in one read, past the captured
// prefix), and a response left open would run into the next query's.
// Truncated; exact when the response ended in that chunk. Only with one
// query pending: with more (a pipeline), where the next response starts
// is not known, and the response stays open as before.
func (c *pgConn) gap(f *framer, end int64) {
	r := c.resp
	if !f.response || r == nil || c.pending != 1 {
		return
	}
	r.length, r.trunc = end-r.start, true
	c.endResponse(r)
}

// endResponse emits the response r, which ends the oldest pending query's
// exchange.
func (c *pgConn) endResponse(r *pgResp) {
	c.resp = nil
	c.pending--
	m := Message{Response: true, Protocol: span.L7PostgreSQL, Offset: r.start, Length: r.length, Truncated: r.trunc,
		RespStatus: span.StatusOK, Rows: r.rows}
	if r.tagged {
		m.Rows = r.tagRows
	}
	if r.err != "" || r.state != "" {
		m.Reason = r.state + ": " + r.err
		m.RespStatus = span.StatusClientError
		if len(r.state) == 5 {
			switch r.state[:2] {
			case "08", "53", "57", "58", "XX":
				m.RespStatus = span.StatusServerError
			}
		}
	}
	c.emit(&m)
}

// pgError reads an ErrorResponse: its SQLSTATE and message.
func pgError(b []byte) (state, msg string) {
	for len(b) > 1 && b[0] != 0 {
		f := b[0]
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			end = len(b) - 1
		}
		v := string(b[1 : 1+end])
		switch f {
		case 'C':
			state = v
		case 'M':
			msg = RedactSQLError(v[:min(len(v), MaxPath)])
		}
		b = b[min(len(b), 2+end):]
	}
	return state, msg
}
