package l7

import (
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/zerotrace/zerotrace/pkg/l7/hpackdec"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// HTTP2 reads HTTP/2 and gRPC (HTTP/2 with content-type application/grpc):
// frames, header blocks through a per-direction HPACK decoder (the dynamic
// table lives as long as the connection), one exchange per stream. A
// request ends with its END_STREAM, a response with its own (gRPC: the
// trailers carrying grpc-status) or a RST_STREAM.
type HTTP2 struct{}

// H2Preface is the client connection preface.
const H2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types (RFC 9113 section 6).
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2PushPromise  = 0x5
	h2GoAway       = 0x7
	h2Continuation = 0x9

	h2FlagEndStream  = 0x1
	h2FlagEndHeaders = 0x4
	h2FlagPadded     = 0x8
	h2FlagPriority   = 0x20

	h2HeaderLen = 9
	// h2MaxPlausible bounds the frame length accepted when joining a
	// connection mid-way (the default SETTINGS_MAX_FRAME_SIZE).
	h2MaxPlausible = 16384
	// h2MaxBlock bounds the header block kept for HPACK.
	h2MaxBlock = 64 << 10
	// h2MaxStreams bounds the open streams tracked per connection.
	h2MaxStreams = 1024
)

func (HTTP2) Protocol() span.L7Protocol { return span.L7HTTP2 }

// Detect recognises the client preface, or a connection joined mid-way at
// a HEADERS or SETTINGS frame whose length fits the default frame size.
func (HTTP2) Detect(b []byte) bool {
	if len(b) >= 14 && string(b[:min(len(b), len(H2Preface))]) == H2Preface[:min(len(b), len(H2Preface))] {
		return true
	}
	return h2Plausible(b)
}

func h2Plausible(b []byte) bool {
	if len(b) < h2HeaderLen {
		return false
	}
	l, typ, fl, sid := h2FrameHeader(b)
	switch {
	case typ == h2Headers && sid != 0 && fl&h2FlagEndHeaders != 0 && l > 0 && l <= h2MaxPlausible:
	case typ == h2Settings && sid == 0 && l%6 == 0 && l <= 60 && fl&^1 == 0:
	default:
		return false
	}
	if rest := b[h2HeaderLen:]; len(rest) > l && len(rest)-l >= h2HeaderLen {
		l2, typ2, _, _ := h2FrameHeader(rest[l:])
		return typ2 <= h2Continuation && l2 <= h2MaxPlausible
	}
	return true
}

func h2FrameHeader(b []byte) (length int, typ, flags uint8, sid uint32) {
	return int(b[0])<<16 | int(b[1])<<8 | int(b[2]), b[3], b[4], binary.BigEndian.Uint32(b[5:9]) & 0x7fffffff
}

// Parse reads the head of a connection's first chunk: the preface is a
// request, a HEADERS frame is a request when it carries :method and a
// response when it carries :status, SETTINGS first is the server's.
func (HTTP2) Parse(b []byte, m *Message) error {
	*m = Message{Protocol: span.L7HTTP2, Version: "2"}
	if len(b) >= 14 && string(b[:min(len(b), len(H2Preface))]) == H2Preface[:min(len(b), len(H2Preface))] {
		if len(b) < len(H2Preface) {
			return ErrIncomplete
		}
		m.HeaderLen = len(H2Preface)
		return nil
	}
	if !h2Plausible(b) {
		return ErrNotMessage
	}
	l, typ, fl, sid := h2FrameHeader(b)
	m.HeaderLen = h2HeaderLen + l
	if typ == h2Settings {
		m.Response = true
		return nil
	}
	m.StreamID = sid
	if len(b) < h2HeaderLen+l {
		return ErrIncomplete
	}
	frag, ok := h2HeaderFragment(b[h2HeaderLen:h2HeaderLen+l], fl)
	if !ok {
		return ErrMalformed
	}
	var st h2Stream
	d := hpack.NewDecoder(4096, nil)
	d.SetEmitFunc(func(f hpack.HeaderField) {
		if f.Name == ":status" {
			m.Response = true
		}
		st.field(f.Name, f.Value, m.Response)
	})
	_, err := d.Write(frag)
	if m.Response {
		m.Status = st.status
	} else {
		m.Method, m.Path, m.Host, m.XRequestID, m.TraceID, m.ParentSpanID =
			st.req.Method, st.req.Path, st.req.Host, st.req.XRequestID, st.req.TraceID, st.req.ParentSpanID
	}
	if st.grpc {
		m.Protocol = span.L7GRPC
	}
	if err != nil {
		return ErrIncomplete // refers to dynamic entries sent before
	}
	return nil
}

// h2HeaderFragment strips padding and priority from a HEADERS payload.
func h2HeaderFragment(p []byte, flags uint8) ([]byte, bool) {
	if flags&h2FlagPadded != 0 {
		if len(p) < 1 || int(p[0]) > len(p)-1 {
			return nil, false
		}
		p = p[1 : len(p)-int(p[0])]
	}
	if flags&h2FlagPriority != 0 {
		if len(p) < 5 {
			return nil, false
		}
		p = p[5:]
	}
	return p, true
}

// NewStream returns the decoder of one connection.
func (HTTP2) NewStream() Stream {
	c := &h2Conn{streams: map[uint32]*h2Stream{}}
	for i := range c.dir {
		d := &c.dir[i]
		d.response, d.hlen, d.whole = i == 1, h2HeaderLen, true
		d.dec = hpackdec.New(4096, h2MaxBlock, h2MaxBlock)
	}
	return c
}

// h2Dir is one direction: its framer and the header block being gathered.
type h2Dir struct {
	framer
	typ, fl  uint8 // current frame
	sid      uint32
	block    []byte // header block awaiting CONTINUATION
	blockSid uint32
	blockFl  uint8
	blockOK  bool
	// dec's table starts anew (Reset) wherever it may be out of step with
	// the sender's: the framing lost and found again (sync), a block not
	// read whole or malformed (headerBlock). The sender's table then holds
	// entries this one lacks, and an index would name another entry:
	// another stream's path or x-request-id. Entries the sender adds
	// afterwards are the newest of its table and keep their indexes in the
	// new one; a reference to an older one leaves its field out and marks
	// its stream partial, as on a connection joined mid-way.
	dec *hpackdec.Decoder
}

// h2Stream is one exchange being read.
type h2Stream struct {
	id                   uint32
	req, resp            Message
	reqStart, respStart  int64
	reqEmitted, haveReq  bool
	haveResp             bool
	grpc                 bool
	grpcStatus           int
	status               int
	partial, truncated   bool
	respTrunc, reqTrunc  bool
	rstCode              int
	sawGRPCStatus, reset bool
}

func (s *h2Stream) field(name, value string, response bool) {
	if name == "content-type" {
		s.grpc = s.grpc || strings.HasPrefix(value, "application/grpc")
		return
	}
	if response {
		switch name {
		case ":status":
			s.status, _ = strconv.Atoi(value)
		case "grpc-status":
			if n, err := strconv.Atoi(value); err == nil {
				s.grpcStatus, s.sawGRPCStatus = n, true
			}
		case "grpc-message":
			s.resp.Reason = truncate(value, MaxPath)
		case "x-request-id":
			s.resp.XRequestID = value
		}
		return
	}
	switch name {
	case ":method":
		s.req.Method = value
	case ":path":
		s.req.Path = truncate(value, MaxPath)
	case ":authority":
		s.req.Host = value
	default:
		applyTraceHeader([]byte(name), []byte(value), &s.req)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// h2Conn is the decoder of one connection.
type h2Conn struct {
	dir     [2]h2Dir // 0: client to server, 1: server to client
	streams map[uint32]*h2Stream
	cur     *h2Stream // target of the HPACK emit function
	curResp bool
	onField func(name, value string)
	emit    func(*Message)
}

func (c *h2Conn) field(name, value string) {
	if c.cur != nil {
		c.cur.field(name, value, c.curResp)
	}
}

// Feed implements Stream.
func (c *h2Conn) Feed(data []byte, n int, response bool, emit func(*Message)) {
	c.emit = emit
	c.dir[dirIndex(response)].feed(data, n, c)
}

// sync picks up a direction at the client preface, a plausible HEADERS or
// SETTINGS frame, or the server's first bytes (its SETTINGS).
func (c *h2Conn) sync(f *framer, data []byte, base int64) bool {
	switch {
	case !f.response && base == 0 && len(data) > 0 && strings.HasPrefix(H2Preface, string(data[:min(len(data), len(H2Preface))])):
		f.skip = len(H2Preface)
	case h2Plausible(data) || (base == 0 && f.response && len(data) > 0 && (len(data) <= 3 || data[3] == h2Settings)):
		d := &c.dir[dirIndex(f.response)]
		d.block = nil
		if base > 0 { // found again after bytes not read: their blocks are not in the table
			d.dec.Reset()
		}
	default:
		return false
	}
	return true
}

// frame reads a frame header; a type not in use means the framing is lost.
// Header blocks and RST_STREAM payloads are kept.
func (c *h2Conn) frame(f *framer, hdr []byte) (int, bool) {
	d := &c.dir[dirIndex(f.response)]
	l, typ, fl, sid := h2FrameHeader(hdr)
	d.typ, d.fl, d.sid = typ, fl, sid
	d.keep = 0
	if typ == h2Headers || typ == h2Continuation || typ == h2PushPromise || typ == h2RSTStream {
		d.keep = h2MaxBlock
	}
	return l, typ <= 0x10
}

// Skippable tells the capture the rest of a DATA frame's payload
// (l7.Skipper); header blocks are read whole.
func (c *h2Conn) Skippable(response bool) int { return c.dir[dirIndex(response)].Skippable() }

func (c *h2Conn) end(f *framer) { c.endFrame(&c.dir[dirIndex(f.response)], f.response) }

// stream returns the stream sid, creating it for a request HEADERS (or a
// response of a stream whose request was not seen).
func (c *h2Conn) stream(sid uint32, create bool) *h2Stream {
	s := c.streams[sid]
	if s == nil && create && len(c.streams) < h2MaxStreams {
		s = &h2Stream{id: sid, reqStart: -1, respStart: -1}
		c.streams[sid] = s
	}
	return s
}

// endFrame acts on a frame whose payload has been read (or skipped).
func (c *h2Conn) endFrame(d *h2Dir, response bool) {
	size := d.size()
	// Streams the client opened (odd ids) are followed; server-pushed ones
	// only have their header blocks decoded to keep HPACK in step.
	follow := d.sid%2 == 1
	if !follow && d.typ != h2Headers && d.typ != h2Continuation {
		return
	}
	switch d.typ {
	case h2Data:
		s := c.stream(d.sid, false)
		if s == nil {
			return
		}
		c.account(s, d, response, size)
		if d.fl&h2FlagEndStream != 0 {
			c.endSide(s, response)
		}
	case h2Headers:
		var s *h2Stream
		if follow {
			s = c.stream(d.sid, true)
		}
		frag, ok := h2HeaderFragment(d.buf, d.fl)
		if s != nil {
			c.account(s, d, response, size)
		}
		d.block, d.blockSid, d.blockFl, d.blockOK = append(d.block[:0], frag...), d.sid, d.fl, ok && !d.lost
		if d.fl&h2FlagEndHeaders != 0 {
			c.headerBlock(d, s, response)
		}
	case h2PushPromise:
		// The promised request's headers enter the HPACK table: decode them
		// without keeping them.
		frag, ok := h2HeaderFragment(d.buf, d.fl&^h2FlagPriority)
		if ok && len(frag) >= 4 {
			frag = frag[4:]
		}
		d.block, d.blockSid, d.blockFl, d.blockOK = append(d.block[:0], frag...), 0, d.fl, ok && !d.lost
		if d.fl&h2FlagEndHeaders != 0 {
			c.headerBlock(d, nil, response)
		}
	case h2Continuation:
		var s *h2Stream
		if follow {
			s = c.stream(d.sid, false)
		}
		if s != nil {
			c.account(s, d, response, size)
		}
		if d.sid != d.blockSid && d.blockSid != 0 {
			d.blockOK = false
		}
		if len(d.block)+len(d.buf) <= h2MaxBlock {
			d.block = append(d.block, d.buf...)
		} else {
			d.blockOK = false
		}
		d.blockOK = d.blockOK && !d.lost
		if d.fl&h2FlagEndHeaders != 0 {
			c.headerBlock(d, s, response)
		}
	case h2RSTStream:
		s := c.stream(d.sid, false)
		if s == nil {
			return
		}
		if len(d.buf) >= 4 {
			s.rstCode = int(binary.BigEndian.Uint32(d.buf))
		}
		s.reset = true
		c.endSide(s, true)
	}
}

func (c *h2Conn) account(s *h2Stream, d *h2Dir, response bool, size int64) {
	if response {
		if s.respStart < 0 {
			s.respStart = d.start
		}
		s.resp.Length += size
		s.respTrunc = s.respTrunc || d.lost
		s.haveResp = true
		return
	}
	if s.reqStart < 0 {
		s.reqStart = d.start
	}
	s.req.Length += size
	s.reqTrunc = s.reqTrunc || d.lost
	s.haveReq = true
}

// headerBlock decodes a complete header block into stream s (nil: decode
// only to keep the table in step).
// A block not read whole is decoded as far as it was read (its kept bytes
// are its first ones: framer.gather), and the table starts anew after it, as
// after a malformed block.
func (c *h2Conn) headerBlock(d *h2Dir, s *h2Stream, response bool) {
	c.cur, c.curResp = s, response
	if c.onField == nil { // once: a method value per block is an allocation per block
		c.onField = c.field
	}
	complete, err := d.dec.Decode(d.block, c.onField)
	c.cur = nil
	if err != nil || !d.blockOK {
		d.dec.Reset()
	}
	if s == nil {
		return
	}
	if err != nil || !d.blockOK || !complete {
		s.partial = true
	}
	if d.blockFl&h2FlagEndStream != 0 {
		c.endSide(s, response)
	}
}

// endSide ends one direction of a stream: the request is emitted; the
// response completes the exchange.
func (c *h2Conn) endSide(s *h2Stream, response bool) {
	if !s.reqEmitted && s.haveReq {
		s.reqEmitted = true
		m := s.req
		m.Protocol, m.Version, m.StreamID = span.L7HTTP2, "2", s.id
		if s.grpc {
			m.Protocol = span.L7GRPC
		}
		m.Offset, m.Partial, m.Truncated = s.reqStart, s.partial || s.req.Method == "", s.reqTrunc
		c.emit(&m)
	}
	if !response {
		return
	}
	delete(c.streams, s.id)
	m := s.resp
	m.Response, m.Protocol, m.Version, m.StreamID = true, span.L7HTTP2, "2", s.id
	if s.grpc {
		m.Protocol = span.L7GRPC
	}
	m.Offset, m.Partial, m.Truncated = s.respStart, s.partial || !s.haveReq, s.respTrunc
	if m.Offset < 0 {
		m.Offset = c.dir[1].start
	}
	m.Status = s.status
	switch {
	case s.grpc && s.sawGRPCStatus:
		m.Status = s.grpcStatus
		m.RespStatus = GRPCStatus(s.grpcStatus)
	case s.status >= 500:
		m.RespStatus = span.StatusServerError
	case s.status >= 400:
		m.RespStatus = span.StatusClientError
	case s.status > 0:
		m.RespStatus = span.StatusOK
	}
	if s.reset && !s.sawGRPCStatus && s.status == 0 {
		m.Reason = "RST_STREAM " + h2ErrName(s.rstCode)
		m.RespStatus = span.StatusServerError
		if s.rstCode == 0x8 { // CANCEL: the client gave up
			m.RespStatus = span.StatusClientError
		}
	}
	c.emit(&m)
}

// GRPCStatus maps a gRPC status code: the caller's mistakes are client
// errors, the rest server errors.
func GRPCStatus(code int) span.ResponseStatus {
	switch code {
	case 0:
		return span.StatusOK
	case 1, 3, 5, 6, 7, 9, 11, 16: // CANCELLED, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNAUTHENTICATED
		return span.StatusClientError
	}
	return span.StatusServerError
}

func h2ErrName(code int) string {
	names := [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
		"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
		"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}
	if code >= 0 && code < len(names) {
		return names[code]
	}
	return strconv.Itoa(code)
}
