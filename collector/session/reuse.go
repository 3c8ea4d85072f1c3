package session

// Reuse: a connection keeps the exchanges it emitted and the span it hands
// to emit, so that a request/response costs no allocation for either
// (docs/capture.md, "Where the collector's µs per span go").

// maxFree bounds the exchanges a connection keeps for reuse.
const maxFree = 4

// newPending returns an exchange to fill: one emitted before, or a new one.
func (c *Conn) newPending() *pending {
	if n := len(c.free); n > 0 {
		p := c.free[n-1]
		c.free = c.free[:n-1]
		return p
	}
	return &pending{}
}

// reuse keeps emitted exchange p for a later one, unless a message that
// goes on still points to it (c.cur: a request body still coming after its
// response ended it).
func (c *Conn) reuse(p *pending) {
	for _, in := range c.cur {
		if in != nil && in.p == p {
			return
		}
	}
	if len(c.free) < maxFree {
		c.free = append(c.free, p)
	}
}
