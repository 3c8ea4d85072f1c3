package session

import "github.com/zerotrace/zerotrace/pkg/l7"

// holdOrDetect starts a stream decoder on a connection's first bytes, and
// holds first bytes that no protocol claims yet until the next chunk of
// their direction: detection runs on the chunks together. It reports
// whether it consumed ch.
//
// A protocol is told by a whole message (MySQL, Kafka, PostgreSQL's
// queries) or its first bytes (HTTP/1's method, HTTP/2's preface): a
// first message read or written in pieces (a reader's small buffer, a
// length prefix read apart) is detected once its pieces add up to it. A
// direction's first chunk may start a hold (up to maxHeld bytes), a later
// one only when short (16 bytes) as before: of a connection joined
// mid-way, any chunk may start a message, and one that does is not
// joined to held bytes that start none. Pieces join only when they follow
// each other in the stream (joinPart).
func (c *Conn) holdOrDetect(ch Chunk) (Chunk, bool) {
	d := ch.Dir
	if c.stream != nil || c.parser != nil || c.cfg.UDP {
		return ch, false
	}
	first := !c.began[d]
	c.began[d] = true
	if h := c.held[d]; h != nil {
		c.held[d] = nil
		j, ok := c.joinPart(h, ch)
		switch {
		case !ok:
			c.Dropped++
		case c.detectStream(j.Data, d):
			c.heldOther(d)
			c.feedStream(j)
			return ch, true
		case c.detectMessage(j.Data):
			c.heldOther(d)
			return j, false
		case len(j.Data) < maxHeld && len(ch.Data) == ch.Len && l7.Detect(ch.Data) == nil:
			c.held[d] = &j
			return ch, true
		default:
			c.Dropped++
		}
		first = false
	}
	if c.detectStream(ch.Data, d) || c.detectMessage(ch.Data) {
		c.heldOther(d)
		return ch, false
	}
	if len(ch.Data) == ch.Len && ch.Len > 0 && (ch.Len < 16 || first && ch.Len < maxHeld) {
		h := ch
		h.Data = append([]byte(nil), ch.Data...)
		c.held[d] = &h
		return ch, true
	}
	return ch, false
}

// detectMessage sets the connection's protocol when b, first bytes, start
// a message of a protocol parsed message by message (HTTP/1).
func (c *Conn) detectMessage(b []byte) bool {
	c.parser = l7.Detect(b)
	return c.parser != nil
}

// maxHeld bounds the first bytes of a direction held to detect their
// protocol: Kafka and MySQL tell a message from 512 bytes of it.
const maxHeld = 512

// heldOther feeds, once chunks of direction d told the protocol, what is
// held of the other direction: it came first.
func (c *Conn) heldOther(d Dir) {
	if h := c.held[1-d]; h != nil {
		c.held[1-d] = nil
		if c.parser != nil {
			c.Feed(*h)
		}
	}
}

// maxPart bounds the bytes of an HTTP/1 head held for its next chunk
// (holdPart): a head not whole in this many is taken as it is.
const maxPart = 8192

// holdPart keeps the HTTP/1 head that starts at off in ch and is not whole
// there, to be parsed with the next chunk of its direction (joinPart), and
// reports whether it did. A reader's small buffer, or a peer that writes a
// head in pieces, splits a head over several reads; taken alone, its first
// read made a message of a cut start line (no status, or a request without
// its method) and the reads after it none, so that the connection's next
// response answered this message's request. Only bytes captured whole are
// held: a capture cut short cannot be continued.
func (c *Conn) holdPart(ch Chunk, off int) bool {
	if _, ok := c.parser.(l7.HTTP1); !ok || c.cfg.UDP || len(ch.Data) != ch.Len || ch.Len-off > maxPart {
		return false
	}
	p := ch
	p.Data = append([]byte(nil), ch.Data[off:]...)
	p.Len = len(p.Data)
	p.TCPSeq = ch.TCPSeq + uint32(off)
	c.part[ch.Dir] = &p
	return true
}

// joinPart returns held head p followed by ch, the next chunk of its
// direction: the message starts with p (its time, sequence, thread and
// syscall) and ends with ch. A chunk that does not follow p in the stream
// (an event lost between them) is not joined: ok false. TLS plaintext is
// not numbered by its own bytes (its sequence is the records'), so it is
// joined in order.
func (c *Conn) joinPart(p *Chunk, ch Chunk) (Chunk, bool) {
	if c.tls == 0 && p.TCPSeq != 0 && ch.TCPSeq != 0 && ch.TCPSeq != p.TCPSeq+uint32(p.Len) {
		return ch, false
	}
	j := *p
	j.Data = append(p.Data, ch.Data...)
	j.Len = p.Len + ch.Len
	j.EndNs = ch.EndNs
	return j, true
}
