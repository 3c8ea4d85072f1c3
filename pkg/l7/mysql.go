package l7

import (
	"encoding/binary"
	"strconv"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// MySQL reads the MySQL/MariaDB client protocol: 4-byte packet headers
// (24-bit length, sequence id), a command packet (sequence 0) from the
// client per request, and a response that ends with OK, ERR or the last
// packet of a result set. The stream keeps the connection's database (from
// the handshake, COM_INIT_DB and USE), its capabilities and its prepared
// statements (COM_STMT_EXECUTE reports the prepared text).
type MySQL struct{}

// MySQL commands (the first payload byte of a request).
const (
	myQuit        = 0x01
	myInitDB      = 0x02
	myQuery       = 0x03
	myPing        = 0x0e
	myStmtPrepare = 0x16
	myStmtExecute = 0x17
	myStmtSend    = 0x18
	myStmtClose   = 0x19
	myStmtReset   = 0x1a

	myCapConnectWithDB  = 1 << 3
	myCapSecureConn     = 1 << 15
	myCapPluginLenenc   = 1 << 21
	myCapDeprecateEOF   = 1 << 24
	myCapQueryAttrs     = 1 << 27
	myMaxPayload        = 0xffffff
	myKeep              = 4096 // payload bytes kept per packet
	myMaxStatements     = 256
	myMaxPendingCommand = 64
)

var myCommands = map[byte]string{
	0x00: "SLEEP", myQuit: "QUIT", myInitDB: "INIT_DB", myQuery: "QUERY", 0x04: "FIELD_LIST", 0x05: "CREATE_DB",
	0x06: "DROP_DB", 0x07: "REFRESH", 0x09: "STATISTICS", 0x0a: "PROCESS_INFO", 0x0c: "PROCESS_KILL", 0x0d: "DEBUG",
	myPing: "PING", 0x11: "CHANGE_USER", 0x12: "BINLOG_DUMP", myStmtPrepare: "PREPARE", myStmtExecute: "EXECUTE",
	myStmtSend: "SEND_LONG_DATA", myStmtClose: "CLOSE_STMT", myStmtReset: "RESET_STMT", 0x1b: "SET_OPTION",
	0x1c: "FETCH", 0x1f: "RESET_CONNECTION",
}

func (MySQL) Protocol() span.L7Protocol { return span.L7MySQL }

// Detect recognises the server greeting (sequence 0, protocol 10, a
// NUL-terminated version) or a command packet (sequence 0, a known command,
// a length that is the chunk's; a query's text printable).
func (MySQL) Detect(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	plen := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if b[3] != 0 || plen == 0 {
		return false
	}
	p := b[4:]
	if p[0] == 10 && plen >= 20 && plen <= 1024 && len(p) >= plen { // greeting
		for i, c := range p[1:min(len(p), 64)] {
			if c == 0 {
				return i > 0
			}
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
		return false
	}
	if _, ok := myCommands[p[0]]; !ok || p[0] == 0 || !(plen == len(p) || len(p) >= 512 && plen > len(p)) {
		return false
	}
	switch p[0] {
	case myQuery, myStmtPrepare, myInitDB:
		if plen < 2 {
			return false
		}
		for _, c := range p[1:min(len(p), 64)] {
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
				return false
			}
		}
	case myQuit, myPing, 0x09, 0x1f:
		return plen == 1
	case myStmtExecute, myStmtClose, myStmtReset:
		return plen >= 5
	}
	return true
}

// Parse reads one packet: the greeting is a response, a command a request.
func (MySQL) Parse(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7MySQL}
	if len(b) < 5 {
		return ErrNotMessage
	}
	plen := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	p := b[4:min(len(b), 4+plen)]
	m.HeaderLen = 4 + plen
	if b[3] != 0 {
		m.Response = true
		return nil
	}
	if p[0] == 10 && len(p) >= 20 {
		m.Response = true
		return nil
	}
	myRequest(p, m, nil)
	if len(b) < 4+plen {
		return ErrIncomplete
	}
	return nil
}

// myRequest fills a request's fields from a command payload.
func myRequest(p []byte, m *Message, c *myConn) {
	name, ok := myCommands[p[0]]
	if !ok {
		name = "0x" + strconv.FormatUint(uint64(p[0]), 16)
	}
	m.Method = name
	switch p[0] {
	case myQuery, myStmtPrepare:
		q := p[1:]
		if c != nil && c.caps&myCapQueryAttrs != 0 && p[0] == myQuery && len(q) >= 2 && q[0] == 0 && q[1] == 1 {
			q = q[2:] // no query attributes: parameter count 0, one parameter set
		}
		m.Path = NormalizeSQL(string(q))
		if v := SQLVerb(string(q)); v != "" {
			m.Method = v
		}
		if p[0] == myStmtPrepare {
			m.Method = "PREPARE " + m.Method
		}
	case myInitDB:
		m.Path = string(p[1:min(len(p), 1+MaxPath)])
	case myStmtExecute:
		if len(p) >= 5 && c != nil {
			if q, ok := c.stmts[binary.LittleEndian.Uint32(p[1:5])]; ok {
				m.Path = q
				if v := SQLVerb(q); v != "" {
					m.Method = "EXECUTE " + v
				}
			}
		}
	}
}

// NewStream returns the decoder of one connection.
func (MySQL) NewStream() Stream {
	c := &myConn{stmts: map[uint32]string{}}
	c.dir = [2]myDir{{framer: fromStart(0, 4, myKeep)}, {framer: fromStart(1, 4, myKeep)}}
	return c
}

// myDir is one direction of packets.
type myDir struct {
	framer
	seq  byte
	cont bool // the packet continues the previous one (payload of 2^24-1)
}

// myCmd is a command awaiting its response.
type myCmd struct {
	cmd      byte
	text     string // prepared text (COM_STMT_PREPARE)
	db       string // database after success (COM_INIT_DB, USE)
	state    int    // 0: first packet; 1: definitions to skip; 2: rows
	defs     int    // definition packets (and EOFs) left to skip
	rows     int64
	start    int64
	length   int64
	trunc    bool
	preparID uint32
}

type myConn struct {
	dir     [2]myDir
	caps    uint32 // client capabilities (from the handshake response)
	srvCaps uint32
	db      string
	stmts   map[uint32]string
	pending []*myCmd
	emit    func(*Message)
	// fresh: a command was sent since the server's last bytes; first: the
	// chunk the server's direction is reading is its first since then.
	fresh, first bool
}

// Skippable tells the capture the rest of a packet's payload past the
// head it keeps (l7.Skipper).
func (c *myConn) Skippable(response bool) int { return c.dir[dirIndex(response)].Skippable() }

// Feed implements Stream.
func (c *myConn) Feed(data []byte, n int, response bool, emit func(*Message)) {
	c.emit = emit
	if response {
		c.first, c.fresh = c.fresh, false
	}
	c.dir[dirIndex(response)].feed(data, n, c)
}

// sync picks up a direction at a packet it can start from: one plausible
// anywhere, or a result set's column count in the server's first chunk
// after the one command pending (whose response has not started), as after
// a gap (below) a result set's start is the next response's.
func (c *myConn) sync(f *framer, data []byte, _ int64) bool {
	if c.plausible(data, f.response) {
		return true
	}
	return f.response && c.first && len(c.pending) == 1 && c.pending[0].length == 0 && myColumnCount(data)
}

// myColumnCount reports whether b starts a result set's first packet:
// sequence 1, a column count (length-encoded, not 0), and at most the
// metadata-follows byte (MariaDB's cached metadata) after it.
func myColumnCount(b []byte) bool {
	if len(b) < 5 || b[3] != 1 {
		return false
	}
	plen := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	n, w, ok := lenenc(b[4:min(len(b), 4+plen)])
	return ok && n > 0 && b[4] != 0xfb && b[4] != 0xff && (plen == w || plen == w+1)
}

// gap ends the response in progress where the server's framing was lost
// in bytes not captured (the chunk's end): the result set's last packet
// (EOF, or OK with CLIENT_DEPRECATE_EOF) that ends it was likely among them
// (a client reading a large row gets the row's tail and that packet in one
// read, past the captured prefix), and a response left open would take
// the next command's. Truncated; exact when the response ended in that
// chunk. Only with one command pending and its response started: with
// more (a pipeline), where the next response starts is not known, and the
// response stays open as before.
func (c *myConn) gap(f *framer, end int64) {
	if !f.response || len(c.pending) != 1 {
		return
	}
	q := c.pending[0]
	if q.length == 0 {
		return
	}
	q.length, q.trunc = end-q.start, true
	c.dir[1].cont = false
	c.done(q, nil)
}

// frame reads a packet header: 24-bit length, sequence id.
func (c *myConn) frame(f *framer, hdr []byte) (int, bool) {
	c.dir[dirIndex(f.response)].seq = hdr[3]
	return int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16, true
}

func (c *myConn) end(f *framer) { c.packet(&c.dir[dirIndex(f.response)], f.response) }

// plausible reports whether b starts a packet a resynchronising direction
// can pick up from: a command from the client, a first response packet.
func (c *myConn) plausible(b []byte, response bool) bool {
	if !response {
		return MySQL{}.Detect(b)
	}
	return len(b) >= 5 && b[3] == 1 && (b[4] == 0x00 || b[4] == 0xff)
}

// packet acts on a packet whose payload has been read.
func (c *myConn) packet(d *myDir, response bool) {
	cont := d.cont
	d.cont = d.body == myMaxPayload
	size := d.size()
	p := d.buf
	if !response {
		c.clientPacket(d, p, size, cont)
		return
	}
	if len(c.pending) == 0 {
		c.serverIdle(p)
		return
	}
	q := c.pending[0]
	if q.state == 0 && q.length == 0 && (d.seq != 1 || cont) {
		return // a response starts at sequence 1; this ends the authentication
	}
	if q.length == 0 {
		q.start = d.start
	}
	q.length += size
	q.trunc = q.trunc || d.lost
	if cont || len(p) == 0 {
		return
	}
	switch q.state {
	case 0:
		switch {
		case p[0] == 0x00 && q.cmd == myStmtPrepare && len(p) >= 12:
			q.preparID = binary.LittleEndian.Uint32(p[1:5])
			cols, params := int(binary.LittleEndian.Uint16(p[5:7])), int(binary.LittleEndian.Uint16(p[7:9]))
			c.stmtPrepared(q)
			q.defs = cols + params
			if !c.deprecateEOF() {
				q.defs += b2i(cols > 0) + b2i(params > 0)
			}
			if q.defs == 0 {
				c.done(q, p)
				return
			}
			q.state = 1
		case p[0] == 0x00 || p[0] == 0xff || p[0] == 0xfe && len(p) < 9 || q.cmd != myQuery && q.cmd != myStmtExecute:
			c.done(q, p)
		default: // a result set: the column count, then the definitions
			n, _, ok := lenenc(p)
			if !ok || n == 0 || n > 1<<16 {
				c.done(q, p)
				return
			}
			q.defs = int(n)
			if !c.deprecateEOF() {
				q.defs++
			}
			q.state = 1
		}
	case 1:
		q.defs--
		if q.defs == 0 {
			if q.cmd == myStmtPrepare {
				c.done(q, nil)
				return
			}
			q.state = 2
		}
	case 2:
		if p[0] == 0xff || p[0] == 0xfe && len(p) < 9 {
			c.done(q, p)
			return
		}
		q.rows++
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *myConn) deprecateEOF() bool { return c.caps&c.srvCaps&myCapDeprecateEOF != 0 }

// serverIdle reads server packets outside any exchange: the greeting.
func (c *myConn) serverIdle(p []byte) {
	if len(p) < 20 || p[0] != 10 {
		return
	}
	// protocol 10, version NUL, thread id 4, auth data 8, filler 1, caps low 2, charset 1, status 2, caps high 2
	i := 1
	for i < len(p) && p[i] != 0 {
		i++
	}
	i += 1 + 4 + 8 + 1
	if i+7 <= len(p) {
		c.srvCaps = uint32(binary.LittleEndian.Uint16(p[i:])) | uint32(binary.LittleEndian.Uint16(p[i+5:]))<<16
	}
}

// clientPacket reads a client packet: a command (sequence 0) or the
// handshake response.
func (c *myConn) clientPacket(d *myDir, p []byte, size int64, cont bool) {
	if cont {
		if len(c.pending) > 0 {
			if q := c.pending[len(c.pending)-1]; q.length > 0 {
				q.length += size
			}
		}
		return
	}
	if len(p) == 0 {
		return
	}
	if d.seq == 1 && len(p) >= 32 && allZero(p[9:28]) { // MariaDB keeps extended capabilities in the last 4 filler bytes
		c.handshake(p)
		return
	}
	if d.seq != 0 {
		return // authentication exchange
	}
	m := Message{Protocol: span.L7MySQL, Offset: d.start, Length: size, Truncated: d.lost}
	myRequest(p, &m, c)
	m.Database = c.db
	switch p[0] {
	case myQuit, myStmtClose, myStmtSend:
		return // no response
	}
	q := &myCmd{cmd: p[0]}
	switch {
	case p[0] == myInitDB:
		q.db = string(p[1:])
	case p[0] == myQuery && m.Method == "USE":
		q.db = useDB(string(p[1:]))
	case p[0] == myStmtPrepare:
		q.text = m.Path
	}
	if len(c.pending) >= myMaxPendingCommand {
		c.pending = c.pending[1:]
	}
	c.pending = append(c.pending, q)
	c.fresh = true
	c.emit(&m)
}

func useDB(q string) string {
	q = q[min(len(q), 3):]
	for len(q) > 0 && (q[0] == ' ' || q[0] == '`') {
		q = q[1:]
	}
	end := 0
	for end < len(q) && q[end] != '`' && q[end] != ';' && q[end] != ' ' {
		end++
	}
	return q[:end]
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// handshake reads the client's capabilities and initial database.
func (c *myConn) handshake(p []byte) {
	c.caps = binary.LittleEndian.Uint32(p)
	i := 32
	for i < len(p) && p[i] != 0 { // user name
		i++
	}
	i++
	if i >= len(p) {
		return
	}
	switch {
	case c.caps&myCapPluginLenenc != 0:
		n, w, ok := lenenc(p[i:])
		if !ok {
			return
		}
		i += w + int(n)
	case c.caps&myCapSecureConn != 0:
		i += 1 + int(p[i])
	default:
		for i < len(p) && p[i] != 0 {
			i++
		}
		i++
	}
	if c.caps&myCapConnectWithDB != 0 && i < len(p) {
		end := i
		for end < len(p) && p[end] != 0 {
			end++
		}
		c.db = string(p[i:end])
	}
}

// stmtPrepared remembers a prepared statement's text by its id.
func (c *myConn) stmtPrepared(q *myCmd) {
	if len(c.stmts) >= myMaxStatements {
		for k := range c.stmts {
			delete(c.stmts, k)
			break
		}
	}
	c.stmts[q.preparID] = q.text
}

// done emits the response of the first pending command; p is its last
// packet (OK, ERR or EOF) when it tells the outcome.
func (c *myConn) done(q *myCmd, p []byte) {
	c.pending = c.pending[1:]
	m := Message{Response: true, Protocol: span.L7MySQL, Offset: q.start, Length: q.length, Truncated: q.trunc,
		RespStatus: span.StatusOK, Rows: q.rows}
	switch {
	case len(p) > 0 && p[0] == 0xff:
		m.Status, m.Reason, m.RespStatus = myError(p)
	case len(p) > 0 && p[0] == 0x00 && q.state == 0 && q.cmd != myStmtPrepare:
		if n, _, ok := lenenc(p[1:]); ok {
			m.Rows = int64(n)
		}
		if q.db != "" {
			c.db = q.db
		}
	}
	c.emit(&m)
}

// myError reads an ERR packet: code, SQLSTATE, message.
func myError(p []byte) (int, string, span.ResponseStatus) {
	if len(p) < 3 {
		return 0, "", span.StatusServerError
	}
	code := int(binary.LittleEndian.Uint16(p[1:3]))
	msg, state := p[3:], ""
	if len(msg) >= 6 && msg[0] == '#' {
		state, msg = string(msg[1:6]), msg[6:]
	}
	st := span.StatusClientError
	switch {
	case len(state) == 5 && (state[:2] == "08" || state[:2] == "53" || state[:2] == "57" || state[:2] == "58" || state[:2] == "XX"):
		st = span.StatusServerError
	case code == 1040 || code == 1053 || code == 1205 || code == 1213 || code == 1021 || code == 1037 || code == 1041:
		// too many connections, shutdown, lock wait timeout, deadlock, disk full, out of memory
		st = span.StatusServerError
	}
	reason := RedactSQLError(string(msg[:min(len(msg), MaxPath)]))
	if state != "" {
		reason = state + ": " + reason
	}
	return code, reason, st
}

// lenenc reads a length-encoded integer: value, width, ok.
func lenenc(b []byte) (uint64, int, bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), 1, true
	case c == 0xfc && len(b) >= 3:
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case c == 0xfd && len(b) >= 4:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case c == 0xfe && len(b) >= 9:
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, false
}
