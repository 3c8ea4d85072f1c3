package session

import "github.com/zerotrace/zerotrace/pkg/l7"

// holdOrDetect starts a stream decoder on a connection's first bytes, and
// holds a short first chunk that no protocol claims until the next one of
// its direction. It reports whether it consumed ch.
func (c *Conn) holdOrDetect(ch Chunk) (Chunk, bool) {
	d := ch.Dir
	if c.stream == nil && c.parser == nil && !c.cfg.UDP {
		if h := c.held; h != nil && h.Dir == d {
			// A server that reads a length prefix apart from the rest
			// (Kafka): detect on the two together.
			c.held = nil
			if c.detectStream(append(h.Data, ch.Data...), d) {
				c.feedStream(*h)
				c.feedStream(ch)
				return ch, true
			}
			// An HTTP/1 head read in pieces shorter than its method: the
			// two go on together (holdPart).
			if j, ok := c.joinPart(h, ch); ok && http1Start(j.Data) {
				ch = j
			} else {
				c.Dropped++
			}
		}
		if !c.detectStream(ch.Data, d) && len(ch.Data) == ch.Len && ch.Len > 0 && ch.Len < 16 && l7.Detect(ch.Data) == nil {
			h := ch
			h.Data = append([]byte(nil), ch.Data...)
			c.held = &h
			return ch, true
		}
	}
	return ch, false
}

// http1Start reports whether b begins an HTTP/1 head, whole or not.
func http1Start(b []byte) bool {
	var m l7.Message
	err := l7.HTTP1{}.Parse(b, &m)
	return err == nil || err == l7.ErrIncomplete
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
