package session

import (
	"net/netip"
	"time"

	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/redact"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Dir is the direction of a chunk seen from the observed endpoint.
type Dir uint8

const (
	Egress  Dir = iota // sent by the observed endpoint
	Ingress            // received by it
)

// Chunk is one captured piece of a connection's byte stream.
type Chunk struct {
	Dir            Dir
	StartNs, EndNs int64
	TCPSeq         uint32 // of the chunk's first byte
	Data           []byte // captured bytes from Skip on (may be shorter than Len-Skip); not retained
	Len            int    // real length
	// Skip: the chunk's first bytes are the end of a body whose range
	// Config.Body told, not captured; Data begins where the body ends (the
	// capture read a syscall crossing the range's end from there, so that
	// the next message's header is read: bpf/socket/bodies.h).
	Skip           int
	TID            uint32
	SyscallTraceID uint64
}

// ConnMeta is what is known of the connection and its process.
type ConnMeta struct {
	Node        string
	Source      span.SignalSource
	NetNS       uint64
	SocketID    uint64
	PID         uint32
	Comm        string
	ProcessName string
	Cmdline     string
	ContainerID string
	Namespace   string
	Pod         string
	Service     string
	L4          span.L4Protocol
	LocalIP     netip.Addr
	LocalPort   uint16
	RemoteIP    netip.Addr
	RemotePort  uint16
}

// Config tunes a Conn.
type Config struct {
	Timeout    time.Duration // a request without response for this long ends as timeout (default 10 s)
	MaxPending int           // requests awaiting a response (default 64)
	UDP        bool          // a datagram socket: one message per chunk, UDP protocols
	IDs        *span.IDGenerator
	// Redact removes secrets from what spans keep of URLs (default:
	// redact.Default(), the sensitive keys).
	Redact *redact.Redactor
	// Body, when set, is told the rest of a message whose length its head
	// gave, in direction d: the TCP sequence numbers from start (the byte
	// after the chunk the head came in) to end (the byte after the
	// message). The capture then sends those bytes' chunks without payload
	// (bpf/socket/bodies.h): the session counts them by length only.
	Body func(d Dir, start, end uint32)
}

type pending struct {
	req       l7.Message
	startNs   int64
	reqEndNs  int64
	seq       uint32
	tid       uint32
	sys       uint64
	reqBytes  int64
	resp      *l7.Message // nil, or &respMsg
	respMsg   l7.Message  // in the same allocation as the request's
	respSeq   uint32
	respTID   uint32
	respSys   uint64
	respEndNs int64
	respBytes int64
	flags     span.Flags
}

// inflight is a message whose remaining bytes are still coming.
type inflight struct {
	remaining int // bytes left when the length is known
	chunked   bool
	tail      [4]byte // chunked: the body's last bytes so far, for a last chunk cut over reads (lastChunk)
	untilEOF  bool
	p         *pending // the exchange it belongs to
	response  bool
}

// chunkRec is what a stream message needs of the chunk it started in.
type chunkRec struct {
	off     int64 // stream offset of the chunk's first byte
	n       int
	startNs int64
	seq     uint32
	tid     uint32
	sys     uint64
}

// maxRecent bounds the chunks remembered per direction: a message that
// started further back takes the oldest one's facts.
const maxRecent = 32

// Conn is the session of one connection. Not safe for concurrent use.
type Conn struct {
	meta      ConnMeta
	cfg       Config
	emit      func(*span.Span)
	client    int               // 1: the observed endpoint sent the first request; 2: it received it; 0: unknown
	parser    l7.Parser         // the connection's protocol, once known
	msg       l7.Message        // the message being parsed (Feed), here so that it is not allocated per message
	stream    l7.Stream         // the connection's decoder, for protocols that need one
	fed       [2]int64          // real bytes seen per direction (stream protocols)
	recent    [2][]chunkRec     // per direction: the last maxRecent chunks (remember)
	oldest    [2]int            // index of the oldest in recent, once full
	next      [2]int64          // per direction: stream offset after the last message decoded (where the next starts)
	skipTo    [2]int64          // per direction: stream offset where the last range told to Body ends (skipStream)
	onMsg     func(*l7.Message) // the stream's emit (feedStream), told the chunk's direction and end below
	msgDir    Dir
	msgEnd    int64
	held      [2]*Chunk // per direction: first bytes kept to detect together with the next (holdOrDetect)
	began     [2]bool   // per direction: a chunk was seen before the protocol was known
	part      [2]*Chunk // per direction: an HTTP/1 head not whole yet, joined to the next chunk (holdPart)
	queue     []*pending
	cur       [2]*inflight
	lastNs    int64
	tls       span.Flags // span.FlagTLS*: the connection's plaintext comes from a TLS library (SetTLS)
	Dropped   int        // chunks that started no known message
	Placeless int        // stream messages whose first chunk was forgotten: no syscall context (streamMessage)
	free      []*pending // emitted exchanges for reuse (newPending)
	out       span.Span  // the span being emitted: emit gets &out
}

// Role is who the observed endpoint is on a connection.
type Role int

const (
	RoleUnknown Role = iota // decided by who sends the first request
	RoleClient
	RoleServer
)

// SetRole fixes the observed endpoint's role (known from connect or
// accept), so that spans of a connection seen mid-way get the right side.
func (c *Conn) SetRole(r Role) {
	switch r {
	case RoleClient:
		c.client = 1
	case RoleServer:
		c.client = 2
	}
}

// Role is the observed endpoint's role as far as it is known (SetRole,
// or who sent the first request).
func (c *Conn) Role() Role {
	switch c.client {
	case 1:
		return RoleClient
	case 2:
		return RoleServer
	}
	return RoleUnknown
}

// SetTLS marks the connection's spans with f (span.FlagTLSOpenSSL,
// span.FlagTLSGo): its bytes are the plaintext of a TLS library's calls.
func (c *Conn) SetTLS(f span.Flags) { c.tls = f }

// TLS returns what SetTLS set (0: not a TLS library's plaintext).
func (c *Conn) TLS() span.Flags { return c.tls }

// NewConn starts a session; emit receives each finished span. The span is
// the connection's own and is reused for the next one: emit copies what it
// keeps (no allocation per span).
func NewConn(meta ConnMeta, cfg Config, emit func(*span.Span)) *Conn {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 64
	}
	if cfg.IDs == nil {
		cfg.IDs = span.NewIDGenerator(meta.Node, time.Now())
	}
	if cfg.Redact == nil {
		cfg.Redact = redact.Default()
	}
	return &Conn{meta: meta, cfg: cfg, emit: emit}
}

// Feed consumes one chunk. A chunk with Skip is the body's end, counted
// by length, then the bytes from there on, as two chunks of one syscall.
func (c *Conn) Feed(ch Chunk) {
	if ch.Skip > 0 && ch.Skip < ch.Len {
		tail := ch
		tail.Data, tail.Len, tail.Skip = nil, ch.Skip, 0
		c.feed(tail)
		ch.TCPSeq += uint32(ch.Skip)
		ch.Len -= ch.Skip
		ch.Skip = 0
	}
	c.feed(ch)
}

func (c *Conn) feed(ch Chunk) {
	c.lastNs = max(c.lastNs, ch.EndNs)
	ch, held := c.holdOrDetect(ch)
	if held {
		return
	}
	if c.stream != nil {
		c.feedStream(ch)
		return
	}
	if p := c.part[ch.Dir]; p != nil {
		c.part[ch.Dir] = nil
		if j, ok := c.joinPart(p, ch); ok {
			ch = j
		} else {
			// The head's rest is lost: the message is what was held, so
			// that a response still answers its own request.
			c.parseMessages(*p, 0, false)
		}
	}
	off, done := c.continueMessage(ch)
	if !done {
		c.parseMessages(ch, off, true)
	}
}

// continueMessage extends the message that goes on in ch's direction. It
// returns the offset in the chunk where the next message starts, or done
// when the chunk belongs to the current message to its end.
func (c *Conn) continueMessage(ch Chunk) (off int, done bool) {
	d := ch.Dir
	if cur := c.cur[d]; cur != nil && (cur.chunked || cur.untilEOF) && startsMessage(ch.Data) {
		// A chunked body whose last chunk was not captured (it sat in a
		// later iovec) ends where the next message starts.
		c.finish(d)
	}
	if cur := c.cur[d]; cur != nil {
		c.extend(cur, ch)
		switch {
		case cur.chunked:
			if cur.lastChunk(ch.Data) && len(ch.Data) == ch.Len {
				c.finish(d)
			}
			return 0, true
		case cur.untilEOF:
			return 0, true
		}
		if cur.remaining > ch.Len {
			cur.remaining -= ch.Len
			return 0, true
		}
		off = cur.remaining
		c.finish(d)
	}
	return off, false
}

// parseMessages parses the messages that start in ch from off (the offset
// in the real stream of this chunk) on; the last one may go on in later
// chunks (c.cur). hold: an HTTP/1 head not whole in ch may wait for the
// next chunk (holdPart).
func (c *Conn) parseMessages(ch Chunk, off int, hold bool) {
	d := ch.Dir
	for off < len(ch.Data) {
		b := ch.Data[off:]
		m := &c.msg
		*m = l7.Message{}
		err := c.parse(b, d, m)
		if err != nil && err != l7.ErrIncomplete {
			c.Dropped++
			return
		}
		if m.Response && !m.NoBody && m.StreamID == 0 {
			// A response to HEAD has no body, whatever its Content-Length
			// says.
			if pe := c.firstUnanswered(); pe != nil && pe.req.Method == "HEAD" {
				m.NoBody = true
			}
		}
		if err == l7.ErrIncomplete && hold && c.holdPart(ch, off) {
			return
		}
		total := m.Total()
		if err == l7.ErrIncomplete {
			// The head runs past the captured bytes: assume the message ends
			// with this chunk.
			total = ch.Len - off
			m.Chunked, m.BodyLen = false, 0
		}
		pe := c.pair(m, ch, off)
		// On the stack: most messages end within their chunk, and only one
		// that goes on is kept (c.cur, below).
		in := inflight{p: pe, response: m.Response}
		left := ch.Len - off
		switch {
		case total >= 0 && total <= left:
			c.account(&in, total)
			if m.Response {
				c.complete(pe)
			}
			off += total
			continue
		case total >= 0:
			in.remaining = total - left
			c.account(&in, left)
			if c.cfg.Body != nil && !c.cfg.UDP {
				c.cfg.Body(d, ch.TCPSeq+uint32(ch.Len), ch.TCPSeq+uint32(off+total))
			}
			if total-left > 0 && len(ch.Data) < ch.Len {
				pe.flags |= span.FlagTruncated
			}
		case m.Chunked:
			in.chunked = true
			c.account(&in, left)
			if in.lastChunk(b) && len(ch.Data) == ch.Len {
				if m.Response {
					c.complete(pe)
				}
				return
			}
		default:
			in.untilEOF = true
			c.account(&in, left)
		}
		kept := in
		c.cur[d] = &kept
		return
	}
}

// pair queues a request as pending, or gives a response to the request it
// answers (by stream id, else the first unanswered one; a pending of its
// own flagged FlagNoRequest when there is none). m starts at off in ch.
func (c *Conn) pair(m *l7.Message, ch Chunk, off int) *pending {
	var pe *pending
	if !m.Response {
		if c.client == 0 {
			c.client = 1 + int(ch.Dir)
		}
		pe = c.newPending()
		*pe = pending{req: *m, startNs: ch.StartNs, reqEndNs: ch.EndNs, seq: ch.TCPSeq + uint32(off),
			tid: ch.TID, sys: ch.SyscallTraceID}
		c.enqueue(pe)
	} else {
		pe = c.firstUnanswered()
		if m.StreamID != 0 {
			pe = c.byStream(m.StreamID)
		}
		if pe == nil {
			pe = c.newPending()
			*pe = pending{startNs: ch.StartNs, flags: span.FlagNoRequest, req: l7.Message{Protocol: m.Protocol}}
			c.queue = append(c.queue, pe)
		}
		pe.respMsg = *m
		pe.resp = &pe.respMsg
		pe.respSeq = ch.TCPSeq + uint32(off)
		pe.respTID = ch.TID
		pe.respSys = ch.SyscallTraceID
		pe.respEndNs = ch.EndNs
	}
	return pe
}

// enqueue adds a request; one that arrives while another is unanswered
// shares the connection with it (pipelining, streams): both are marked
// multiplexed, since the thread context of the connection is theirs
// together (collector/causality).
func (c *Conn) enqueue(pe *pending) {
	if len(c.queue) >= c.cfg.MaxPending {
		c.expire(c.popFront(), span.StatusTimeout)
	}
	for _, q := range c.queue {
		if q.resp == nil {
			q.flags |= span.FlagMultiplexed
			pe.flags |= span.FlagMultiplexed
		}
	}
	c.queue = append(c.queue, pe)
}

// lastChunk reports whether b, the next bytes of a chunked body, ends it
// with the last chunk, also when a read cut "0\r\n\r\n" (the body's last
// bytes before b are kept in in.tail).
func (in *inflight) lastChunk(b []byte) bool {
	if len(b) >= 5 {
		copy(in.tail[:], b[len(b)-4:])
		return l7.ChunkedEnd(b)
	}
	var j [9]byte
	n := copy(j[:], in.tail[:])
	n += copy(j[n:], b)
	copy(in.tail[:], j[n-4:n])
	return l7.ChunkedEnd(j[:n])
}

func (c *Conn) account(in *inflight, n int) {
	if in.response {
		in.p.respBytes += int64(n)
	} else {
		in.p.reqBytes += int64(n)
	}
}

func (c *Conn) extend(in *inflight, ch Chunk) {
	n := ch.Len
	if !in.chunked && !in.untilEOF && in.remaining < n {
		n = in.remaining
	}
	c.account(in, n)
	if in.response {
		in.p.respEndNs = ch.EndNs
	} else {
		in.p.reqEndNs = ch.EndNs
	}
}

func (c *Conn) finish(d Dir) {
	in := c.cur[d]
	c.cur[d] = nil
	if in != nil && in.response {
		c.complete(in.p)
	}
}

// byStream finds the unanswered request with the response's id.
func (c *Conn) byStream(id uint32) *pending {
	for _, p := range c.queue {
		if p.resp == nil && p.req.StreamID == id {
			return p
		}
	}
	return nil
}

func (c *Conn) firstUnanswered() *pending {
	for _, p := range c.queue {
		if p.resp == nil {
			return p
		}
	}
	return nil
}

// popFront removes the oldest exchange from the queue. It moves the rest
// down (at most MaxPending) rather than slicing past it, so the queue's
// memory serves the connection's next requests instead of being
// reallocated every few.
func (c *Conn) popFront() *pending {
	q := c.queue[0]
	n := copy(c.queue, c.queue[1:])
	c.queue[n] = nil
	c.queue = c.queue[:n]
	return q
}

// complete emits the exchange; for protocols that pair in order, every
// earlier unanswered exchange ends too (its response will not come).
func (c *Conn) complete(p *pending) {
	if p.req.StreamID != 0 || (p.resp != nil && p.resp.StreamID != 0) {
		for i, q := range c.queue {
			if q == p {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
		c.emitSpan(p, 0)
		return
	}
	for len(c.queue) > 0 {
		q := c.popFront()
		if q.resp == nil {
			c.expire(q, span.StatusTimeout)
		} else {
			c.emitSpan(q, 0)
		}
		if q == p {
			return
		}
	}
}

func (c *Conn) expire(p *pending, st span.ResponseStatus) { c.emitSpan(p, st) }

// Tick times out requests without response older than the timeout.
func (c *Conn) Tick(nowNs int64) {
	for len(c.queue) > 0 && c.queue[0].resp == nil && nowNs-c.queue[0].startNs > int64(c.cfg.Timeout) {
		c.expire(c.popFront(), span.StatusTimeout)
	}
}

// Idle reports the end of the last chunk seen.
func (c *Conn) Idle() int64 { return c.lastNs }

// Close flushes: a response read until the close completes; requests
// without response end as timeouts.
func (c *Conn) Close(nowNs int64) {
	for d, p := range c.part {
		if p != nil { // its rest never came: the message is what was held
			c.part[d] = nil
			c.parseMessages(*p, 0, false)
		}
	}
	for d := range c.cur {
		if in := c.cur[d]; in != nil && in.response {
			c.finish(Dir(d))
		}
	}
	for _, q := range c.queue {
		if q.resp != nil {
			c.emitSpan(q, 0)
		} else {
			c.expire(q, span.StatusTimeout)
		}
	}
	c.queue = nil
}

func statusOf(code int) span.ResponseStatus {
	switch {
	case code >= 500:
		return span.StatusServerError
	case code >= 400:
		return span.StatusClientError
	case code >= 100:
		return span.StatusOK
	}
	return span.StatusUnknown
}

func (c *Conn) emitSpan(p *pending, forced span.ResponseStatus) {
	m := c.meta
	resource, domain := c.stored(&p.req)
	s := &c.out
	*s = span.Span{
		SpanID: c.cfg.IDs.Next(), Node: m.Node, SignalSource: m.Source, NetNS: m.NetNS, SocketID: m.SocketID,
		PID: m.PID, ProcessName: m.ProcessName, Comm: m.Comm, Cmdline: m.Cmdline, ContainerID: m.ContainerID,
		Namespace: m.Namespace, Pod: m.Pod, Service: m.Service, L4: m.L4,
		StartNs: p.startNs, EndNs: p.respEndNs,
		ReqTID: p.tid, RespTID: p.respTID, ReqTCPSeq: p.seq, RespTCPSeq: p.respSeq,
		SyscallTraceIDReq: p.sys, SyscallTraceIDResp: p.respSys,
		L7Protocol: p.req.Protocol, L7Version: p.req.Version, RequestType: p.req.Method,
		RequestDomain: domain, RequestResource: resource, Endpoint: endpointOf(&p.req, resource),
		XRequestIDReq: p.req.XRequestID, TraceID: p.req.TraceID, ParentSpanID: p.req.ParentSpanID,
		RequestBytes: p.reqBytes, ResponseBytes: p.respBytes, Flags: p.flags, StreamID: p.req.StreamID,
	}
	if s.EndNs == 0 {
		s.EndNs = max(p.reqEndNs, c.lastNs)
	}
	if p.resp != nil {
		s.ResponseCode = int32(p.resp.Status)
		s.ResponseStatus = statusOf(p.resp.Status)
		if p.resp.RespStatus != 0 {
			s.ResponseStatus = p.resp.RespStatus
		}
		s.XRequestIDResp = p.resp.XRequestID
		s.ResultCount = p.resp.Rows
		if p.resp.Answers > 0 {
			s.ResultCount = int64(p.resp.Answers)
		}
		if s.L7Version == "" {
			s.L7Version = p.resp.Version
		}
		if s.ResponseStatus.IsError() {
			s.ResponseException = p.resp.Reason
		}
	}
	if forced != 0 {
		s.ResponseStatus = forced
	}
	if p.resp != nil && p.tid != 0 && p.respTID != 0 && p.tid != p.respTID {
		s.Flags |= span.FlagReqTIDMismatch
	}
	s.Flags |= c.tls
	if m.LocalIP.Is4() || m.RemoteIP.Is4() {
		s.IPVersion = 4
	} else if m.LocalIP.IsValid() {
		s.IPVersion = 6
	}
	if c.client == 2 { // the observed endpoint received the request: server
		s.TapSide = span.TapServerProcess
		s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort = m.RemoteIP, m.RemotePort, m.LocalIP, m.LocalPort
	} else {
		s.TapSide = span.TapClientProcess
		s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort = m.LocalIP, m.LocalPort, m.RemoteIP, m.RemotePort
	}
	if m.Source == span.SourcePacket {
		s.TapSide = span.TapUnknown // the packet capture sets its own tap side
	}
	c.emit(s)
	c.reuse(p)
}

// parse reads the message starting in b with the connection's protocol, told
// the direction when the protocol needs it; a connection's first message
// picks the protocol.
func (c *Conn) parse(b []byte, d Dir, m *l7.Message) error {
	if c.parser != nil {
		var err error
		if dp, ok := c.parser.(l7.DirParser); ok && c.client != 0 {
			// c.client-1 is the direction requests travel in.
			err = dp.ParseDir(b, int(d) != c.client-1, m)
		} else {
			err = c.parser.Parse(b, m)
		}
		if err == nil || err == l7.ErrIncomplete {
			return err
		}
	}
	p := l7.Detect(b)
	if c.cfg.UDP {
		p = l7.DetectUDP(b)
	}
	if p == nil {
		return l7.ErrNotMessage
	}
	c.parser = p
	return p.Parse(b, m)
}

// startsMessage reports whether b begins with a complete message head.
func startsMessage(b []byte) bool {
	p := l7.Detect(b)
	if p == nil {
		return false
	}
	var m l7.Message
	err := p.Parse(b, &m)
	return err == nil || err == l7.ErrIncomplete
}
