package spangen

// causalState replays the collector's request-context rule
// (bpf/socket/causality.h, docs/assembly.md "Syscall context") so that
// generated spans carry the syscall ids real capture gives them.
type causalState struct {
	socks   map[uint64]*sockCtx
	threads map[uint64]*threadCtx
}

type sockCtx struct {
	ctx, thread uint64
	open        bool
}

type threadCtx struct {
	id        uint64
	open      int
	ambiguous bool
}

func newCausalState() causalState {
	return causalState{socks: map[uint64]*sockCtx{}, threads: map[uint64]*threadCtx{}}
}

// message returns the context id of a message a thread moves on a socket.
func (c *causalState) message(thread, sock uint64, server, egress bool, fresh func() uint64) uint64 {
	if server {
		s := c.socks[sock]
		if s == nil {
			s = &sockCtx{}
			c.socks[sock] = s
		}
		if egress {
			if s.open {
				s.open = false
				c.release(s.thread)
			}
			return s.ctx
		}
		if s.open {
			return s.ctx
		}
		s.ctx, s.thread, s.open = fresh(), thread, true
		t := c.threads[thread]
		if t == nil {
			t = &threadCtx{}
			c.threads[thread] = t
		}
		t.open++
		t.ambiguous = t.ambiguous || t.open > 1
		t.id = s.ctx
		return s.ctx
	}
	if t := c.threads[thread]; t != nil && t.open == 1 && !t.ambiguous {
		return t.id
	}
	return 0
}

func (c *causalState) release(thread uint64) {
	t := c.threads[thread]
	if t == nil {
		return
	}
	if t.open > 0 {
		t.open--
	}
	if t.open == 0 {
		t.id, t.ambiguous = 0, false
	}
}

// closeAll closes every socket, releasing the requests they held open (a
// request that timed out holds its thread until its socket closes).
func (c *causalState) closeAll() {
	for _, s := range c.socks {
		if s.open {
			c.release(s.thread)
		}
	}
	clear(c.socks)
}
