package session

import (
	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// detectStream starts the connection's decoder when b, its first bytes in
// direction d, are of a protocol that needs one; the first message also
// tells the roles when connect/accept did not.
func (c *Conn) detectStream(b []byte, d Dir) bool {
	p := l7.Detect(b)
	sp, ok := p.(l7.StreamParser)
	if !ok {
		return false
	}
	if c.client == 0 {
		var m l7.Message
		if err := sp.Parse(b, &m); err != nil && err != l7.ErrIncomplete {
			return false
		}
		if m.Response { // requests travel the other way
			c.client = 2 - int(d)
		} else {
			c.client = 1 + int(d)
		}
	}
	c.parser, c.stream = p, sp.NewStream()
	return true
}

// feedStream hands a chunk to the connection's decoder.
func (c *Conn) feedStream(ch Chunk) {
	d := ch.Dir
	r := chunkRec{off: c.fed[d], n: ch.Len, startNs: ch.StartNs, seq: ch.TCPSeq, tid: ch.TID, sys: ch.SyscallTraceID}
	c.remember(d, r)
	c.fed[d] += int64(ch.Len)
	response := int(d) != c.client-1
	if c.onMsg == nil { // once: a closure per chunk is an allocation per chunk
		c.onMsg = func(m *l7.Message) { c.streamMessage(m, c.msgDir, c.msgEnd) }
	}
	c.msgDir, c.msgEnd = d, ch.EndNs
	c.stream.Feed(ch.Data, ch.Len, response, c.onMsg)
	c.skipStream(ch, response)
}

// skipStream tells the capture (Config.Body) the stream range after ch
// that the decoder will count without reading (l7.Skipper: a Redis value's
// payload), so that the syscalls wholly inside it go without their bytes,
// as an HTTP/1 body of known length's do.
func (c *Conn) skipStream(ch Chunk, response bool) {
	if c.cfg.Body == nil || c.cfg.UDP {
		return
	}
	sk, ok := c.stream.(l7.Skipper)
	if !ok {
		return
	}
	// Told once per value: the chunks inside the range that come before
	// the capture takes it (the ring is read every 10 ms) do not tell it
	// again.
	d := ch.Dir
	if n := sk.Skippable(response); n > 0 && c.fed[d]+int64(n) != c.skipTo[d] {
		c.skipTo[d] = c.fed[d] + int64(n)
		end := ch.TCPSeq + uint32(ch.Len)
		c.cfg.Body(d, end, end+uint32(n))
	}
}

// remember adds a chunk to the last maxRecent of direction d, a ring
// whose oldest is at c.oldest[d] once full. The oldest chunk goes, unless
// the message being read may have started in it (a message in more pieces
// than maxRecent): the next one then. That message starts after the last
// one decoded in d, and after what d had sent when the other side's last
// message left nothing unanswered (a response starts after its request; a
// request after the last response).
func (c *Conn) remember(d Dir, r chunkRec) {
	rs := c.recent[d]
	if len(rs) < maxRecent {
		c.recent[d] = append(rs, r)
		return
	}
	h := c.oldest[d]
	next := (h + 1) % maxRecent
	if rs[next].off > c.next[d] {
		rs[next] = rs[h] // kept: the next oldest goes instead
	}
	rs[h] = r
	c.oldest[d] = next
}

// chunkAt returns the remembered chunk holding stream offset off.
func (c *Conn) chunkAt(d Dir, off int64) chunkRec {
	rs, h := c.recent[d], c.oldest[d]
	for k := len(rs) - 1; k >= 0; k-- {
		if r := rs[(h+k)%len(rs)]; r.off <= off {
			return r
		}
	}
	if len(rs) > 0 {
		return rs[h]
	}
	return chunkRec{}
}

// streamMessage turns a decoded message into (half) an exchange.
func (c *Conn) streamMessage(m *l7.Message, d Dir, endNs int64) {
	c.next[d] = max(c.next[d], m.Offset+m.Length)
	r := c.chunkAt(d, m.Offset)
	seq := r.seq
	if r.off <= m.Offset {
		seq += uint32(m.Offset - r.off)
	}
	if m.Offset < r.off || m.Offset >= r.off+int64(r.n) {
		// The chunk the message began in is forgotten (a message in more
		// pieces than maxRecent): its syscall is unknown, and the span
		// keeps none rather than another chunk's, which would link it to
		// whatever request that syscall's thread held. It starts at the
		// nearest chunk remembered.
		r.sys = 0
		c.Placeless++
	}
	var fl span.Flags
	if m.Partial {
		fl |= span.FlagPartial
	}
	if m.Truncated {
		fl |= span.FlagTruncated
	}
	if !m.Response {
		pe := c.newPending()
		*pe = pending{req: *m, startNs: r.startNs, reqEndNs: endNs, seq: seq, tid: r.tid, sys: r.sys,
			reqBytes: m.Length, flags: fl}
		c.enqueue(pe)
		if c.firstUnanswered() == pe { // its response starts after what the server sent so far
			c.next[1-d] = max(c.next[1-d], c.fed[1-d])
		}
		return
	}
	pe := c.firstUnanswered()
	if m.StreamID != 0 {
		pe = c.byStream(m.StreamID)
	}
	if pe == nil {
		pe = c.newPending()
		*pe = pending{startNs: r.startNs, flags: span.FlagNoRequest,
			req: l7.Message{Protocol: m.Protocol, StreamID: m.StreamID, Version: m.Version}}
		c.queue = append(c.queue, pe)
	}
	pe.respMsg = *m
	pe.resp = &pe.respMsg
	pe.respSeq, pe.respTID, pe.respSys, pe.respEndNs, pe.respBytes = seq, r.tid, r.sys, endNs, m.Length
	pe.flags |= fl
	c.complete(pe)
	if c.firstUnanswered() == nil { // the next request starts after what the client sent so far
		c.next[1-d] = max(c.next[1-d], c.fed[1-d])
	}
}
