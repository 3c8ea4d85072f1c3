package session

import (
	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Unread tells the session that bytes moved in direction d at ns, from TCP
// sequence number seq, without their content: a TLS library's read whose
// call the capture did not see (a Go goroutine already blocked inside
// crypto/tls's Read when its probes were attached: docs/tls-go.md), so only
// its ciphertext syscall came. On a connection that pairs in order, when d
// is the direction of responses, they are the response of the oldest
// unanswered request sent before ns (or the rest of the response in
// flight): that request ends at ns with its response unread (status
// unknown, FlagTruncated) instead of taking the next response, and with it
// every later request on the connection. Of the stream protocols, those
// whose decoder can drop what it was reading and wait for a chunk that
// starts a message (l7.Resyncer: Redis) are treated alike; the others
// (their decoder cannot skip bytes), requests missed and reads with no
// request waiting change nothing.
func (c *Conn) Unread(d Dir, ns int64, seq uint32) {
	if c.client == 0 || Dir(c.client-1) == d {
		return
	}
	if c.stream != nil {
		r, ok := c.stream.(l7.Resyncer)
		if !ok {
			return
		}
		r.Resync(true)
	} else if cur := c.cur[d]; cur != nil {
		if cur.response {
			cur.p.respEndNs = max(cur.p.respEndNs, ns)
			cur.p.flags |= span.FlagTruncated
			c.finish(d)
		}
		return
	}
	p := c.firstUnanswered()
	if p == nil || p.startNs > ns || p.req.StreamID != 0 {
		return
	}
	p.respEndNs, p.respSeq = ns, seq
	p.flags |= span.FlagTruncated
	for len(c.queue) > 0 {
		q := c.popFront()
		if q == p {
			c.emitSpan(q, 0)
			return
		}
		if q.resp == nil {
			c.expire(q, span.StatusTimeout)
		} else {
			c.emitSpan(q, 0)
		}
	}
}
