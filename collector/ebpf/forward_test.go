//go:build linux

package ebpf

import (
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/l4flight"
	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestForwardedRequests replays a proxy thread's syscall events (no BPF):
// the read that completed an inbound request and the connect right after
// it give the inbound request and the upstream call one context id; any
// other socket event in between, or too long a gap, gives none. The ground
// truth is the event order written here.
func TestForwardedRequests(t *testing.T) {
	const ms = int64(time.Millisecond)
	tlsRec := func(kind byte, n int) []byte { return []byte{kind, 3, 3, byte(n >> 8), byte(n)} }
	newCapture := func() *Capture {
		c := &Capture{conns: map[connKey]*session.Conn{}, flows: map[connKey]*l4flight.Flow{},
			reads: map[threadKey]lastRead{}, fwd: map[connKey]forwardCtx{}, ids: span.NewIDGenerator("n1", time.Unix(1, 0))}
		c.opt.Timeout = 10 * time.Second
		c.opt.TLSExclude = []string{"nginx"}
		return c
	}
	ev := func(sock uint64, dir uint8, n uint32, data []byte) *Event {
		return &Event{PID: 7, TID: 7, SockID: sock, Dir: dir, Len: n, L4: 6, Data: data, Comm: "nginx"}
	}
	const inbound, upstream, other = 1, 2, 3
	// An L4 server flow on inbound that has read a request (after the
	// handshake: ClientHello, ServerHello, the client's Finished+request).
	l4Inbound := func(c *Capture) *l4flight.Flow {
		var spans []span.Span
		f := l4flight.NewFlow(session.ConnMeta{Node: "n1", PID: 7}, l4flight.Config{}, func(s *span.Span) { spans = append(spans, *s) })
		f.SetRole(session.RoleServer)
		f.Feed(session.Chunk{Dir: session.Ingress, Len: 300, Data: tlsRec(0x16, 295)})
		f.Feed(session.Chunk{Dir: session.Egress, Len: 900, Data: tlsRec(0x16, 895)})
		f.Feed(session.Chunk{Dir: session.Ingress, Len: 200, Data: tlsRec(0x17, 195)})
		c.flows[connKey{7, inbound}] = f
		return f
	}
	t.Run("read then connect: the upstream call takes the L4 request's id", func(t *testing.T) {
		c := newCapture()
		f := l4Inbound(c)
		c.forwardNote(connKey{7, inbound}, ev(inbound, DirIngress, 200, tlsRec(0x17, 195)), 10*ms)
		c.forwardNote(connKey{7, upstream}, ev(upstream, DirConnected, 0, nil), 10*ms+50_000)
		p, ok := c.fwd[connKey{7, upstream}]
		if !ok || p.ctx == 0 || !p.l4 || p.ctx&flagBits != 0 {
			t.Fatalf("no forward noted: %+v %v", p, ok)
		}
		if got := f.Cause(99); got != p.ctx {
			t.Fatalf("inbound request's id %d, the call's %d", got, p.ctx)
		}
		// The plaintext call's request and response chunks carry it, the
		// next request's not.
		if got := c.forwardChunk(connKey{7, upstream}, ev(upstream, DirEgress, 100, []byte("GET / HTTP/1.1\r\n"))); got != p.ctx {
			t.Errorf("request chunk carries %d, want %d", got, p.ctx)
		}
		for range 2 {
			if got := c.forwardChunk(connKey{7, upstream}, ev(upstream, DirIngress, 100, []byte("HTTP/1.1 200 OK\r\n"))); got != p.ctx {
				t.Errorf("response chunk carries %d, want %d", got, p.ctx)
			}
		}
		if got := c.forwardChunk(connKey{7, upstream}, ev(upstream, DirEgress, 100, []byte("GET / HTTP/1.1\r\n"))); got != 0 {
			t.Errorf("the connection's next request carries %d, want 0", got)
		}
	})
	t.Run("session tickets written on the inbound socket in between; the kernel's context replaced", func(t *testing.T) {
		// A TLS 1.3 server read the client's Finished and the request in
		// one read, wrote its tickets, then connected. The kernel gave the
		// call a context (a hold the L4 handshake left): not evidence.
		c := newCapture()
		f := l4Inbound(c)
		c.forwardNote(connKey{7, inbound}, ev(inbound, DirIngress, 200, tlsRec(0x14, 1)), 10*ms)
		f.Feed(session.Chunk{Dir: session.Egress, Len: 500, Data: tlsRec(0x17, 495)})
		c.forwardNote(connKey{7, inbound}, ev(inbound, DirEgress, 500, tlsRec(0x17, 495)), 10*ms+1000)
		c.forwardNote(connKey{7, upstream}, ev(upstream, DirConnected, 0, nil), 10*ms+2000)
		p, ok := c.fwd[connKey{7, upstream}]
		if !ok || f.Cause(99) != p.ctx {
			t.Fatalf("no forward noted: %+v %v", p, ok)
		}
		e := ev(upstream, DirEgress, 100, []byte("GET / HTTP/1.1\r\n"))
		e.SyscallTraceID = 4242
		if got := c.forwardChunk(connKey{7, upstream}, e); got != p.ctx {
			t.Errorf("chunk carries %d, want %d", got, p.ctx)
		}
	})
	for _, tc := range []struct {
		name    string
		between *Event
		gap     int64
	}{
		{"a write on another socket in between", ev(other, DirEgress, 50, nil), 0},
		{"a close in between (a failed upstream: a retry)", ev(other, DirClose, 0, nil), 0},
		{"a read on another socket in between", ev(other, DirIngress, 50, nil), 0},
		{"an accept in between", ev(other, DirAccepted, 0, nil), 0},
		{"the connect long after the read (a timer)", nil, forwardGap + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture()
			f := l4Inbound(c)
			c.forwardNote(connKey{7, inbound}, ev(inbound, DirIngress, 200, tlsRec(0x17, 195)), 10*ms)
			if tc.between != nil {
				c.forwardNote(connKey{7, tc.between.SockID}, tc.between, 10*ms+1000)
			}
			c.forwardNote(connKey{7, upstream}, ev(upstream, DirConnected, 0, nil), 10*ms+2000+tc.gap)
			if p, ok := c.fwd[connKey{7, upstream}]; ok {
				t.Errorf("forward noted: %+v", p)
			}
			if got := f.Cause(99); got != 99 {
				t.Errorf("inbound request took an id before: %d", got)
			}
		})
	}
	// The thread went back to its event loop (epoll_wait) after the read:
	// the first socket event after it carries EventWaited (a proxy that
	// connects when a timer fires for a delayed request). A wait before
	// the read is every request's (the loop woke for it).
	waited := func(e *Event) *Event { e.Flags |= EventWaited; return e }
	for _, tc := range []struct {
		name    string
		between *Event
		connect *Event
		want    bool
	}{
		{"a wait before the read only: forwarded", nil, ev(upstream, DirConnected, 0, nil), true},
		{"the connect after a wait (a timer fired)", nil, waited(ev(upstream, DirConnected, 0, nil)), false},
		{"tickets written on the inbound socket after a wait, then the connect",
			waited(ev(inbound, DirEgress, 500, tlsRec(0x17, 495))), ev(upstream, DirConnected, 0, nil), false},
		{"a read of nothing on the inbound socket after a wait, then the connect",
			waited(ev(inbound, DirIngress, 0, nil)), ev(upstream, DirConnected, 0, nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture()
			f := l4Inbound(c)
			c.forwardNote(connKey{7, inbound}, waited(ev(inbound, DirIngress, 200, tlsRec(0x17, 195))), 10*ms)
			if tc.between != nil {
				c.forwardNote(connKey{7, inbound}, tc.between, 10*ms+1000)
			}
			c.forwardNote(connKey{7, upstream}, tc.connect, 10*ms+2000)
			p, ok := c.fwd[connKey{7, upstream}]
			if ok != tc.want {
				t.Fatalf("forward noted %v (%+v), want %v", ok, p, tc.want)
			}
			if got := f.Cause(99); (got == 99) == tc.want || (tc.want && got != p.ctx) {
				t.Errorf("inbound request's id %d, the call's %d (forwarded: %v)", got, p.ctx, tc.want)
			}
		})
	}
	t.Run("another thread's connect: none", func(t *testing.T) {
		c := newCapture()
		l4Inbound(c)
		c.forwardNote(connKey{7, inbound}, ev(inbound, DirIngress, 200, tlsRec(0x17, 195)), 10*ms)
		e := ev(upstream, DirConnected, 0, nil)
		e.TID = 8
		c.forwardNote(connKey{7, upstream}, e, 10*ms)
		if p, ok := c.fwd[connKey{7, upstream}]; ok {
			t.Errorf("forward noted: %+v", p)
		}
	})
	t.Run("a plaintext server request forwarded to an L4 call", func(t *testing.T) {
		c := newCapture()
		a := session.NewConn(session.ConnMeta{Node: "n1", PID: 7}, session.Config{}, func(*span.Span) {})
		a.SetRole(session.RoleServer)
		c.conns[connKey{7, inbound}] = a
		e := ev(inbound, DirIngress, 100, []byte("GET / HTTP/1.1\r\n"))
		e.SyscallTraceID = 555
		c.forwardNote(connKey{7, inbound}, e, 10*ms)
		c.forwardNote(connKey{7, upstream}, ev(upstream, DirConnected, 0, nil), 10*ms)
		var spans []span.Span
		b := l4flight.NewFlow(session.ConnMeta{Node: "n1", PID: 7}, l4flight.Config{}, func(s *span.Span) { spans = append(spans, *s) })
		c.forwardFlow(connKey{7, upstream}, b.Forward)
		b.SetRole(session.RoleClient)
		for i, ch := range []session.Chunk{
			{Dir: session.Egress, Len: 300, Data: tlsRec(0x16, 295)},  // ClientHello
			{Dir: session.Ingress, Len: 900, Data: tlsRec(0x16, 895)}, // ServerHello...
			{Dir: session.Egress, Len: 200, Data: tlsRec(0x14, 1)},    // Finished + request
			{Dir: session.Ingress, Len: 700, Data: tlsRec(0x17, 695)}, // response
			{Dir: session.Egress, Len: 200, Data: tlsRec(0x17, 195)},  // the next request
			{Dir: session.Ingress, Len: 700, Data: tlsRec(0x17, 695)},
		} {
			ch.StartNs, ch.EndNs = int64(i), int64(i)
			b.Feed(ch)
		}
		b.Close()
		if len(spans) != 2 || spans[0].SyscallTraceIDReq != 555 || spans[1].SyscallTraceIDReq != 0 {
			t.Fatalf("L4 calls' ids: %+v", ids(spans))
		}
		// A plaintext call of a plaintext request is the kernel's.
		c.forwardNote(connKey{7, inbound}, e, 20*ms)
		c.forwardNote(connKey{7, other}, ev(other, DirConnected, 0, nil), 20*ms)
		if got := c.forwardChunk(connKey{7, other}, ev(other, DirEgress, 100, []byte("GET / HTTP/1.1\r\n"))); got != 0 {
			t.Errorf("plaintext call of a plaintext request carries %d, want the kernel's 0", got)
		}
	})
}

func ids(spans []span.Span) [][2]uint64 {
	out := make([][2]uint64, len(spans))
	for i, s := range spans {
		out[i] = [2]uint64{s.SyscallTraceIDReq, s.SyscallTraceIDResp}
	}
	return out
}

// TestForwardedOnlyUnread: a process whose TLS is read (not excluded, or
// no process excluded: the default) is not followed, its calls keep the
// kernel's contexts; one whose TLS is not read (excluded by name, or TLS
// disabled) is.
func TestForwardedOnlyUnread(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabled bool
		exclude  []string
		followed bool
	}{
		{"another process excluded", false, []string{"envoy"}, false},
		{"none excluded", false, nil, false},
		{"this process excluded", false, []string{"envoy", "nginx"}, true},
		{"TLS disabled", true, nil, true},
	} {
		c := &Capture{conns: map[connKey]*session.Conn{}, flows: map[connKey]*l4flight.Flow{},
			reads: map[threadKey]lastRead{}, fwd: map[connKey]forwardCtx{}, ids: span.NewIDGenerator("n1", time.Unix(1, 0))}
		c.opt.TLSDisabled, c.opt.TLSExclude = tc.disabled, tc.exclude
		c.forwardNote(connKey{7, 1}, &Event{PID: 7, TID: 7, SockID: 1, Dir: DirIngress, Len: 10, L4: 6, Comm: "nginx", SyscallTraceID: 5}, 1)
		if got := len(c.reads) == 1; got != tc.followed {
			t.Errorf("%s: nginx's read followed %v, want %v: %+v", tc.name, got, tc.followed, c.reads)
		}
	}
}
