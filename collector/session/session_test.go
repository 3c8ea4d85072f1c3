package session

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/span"
)

type rec struct{ spans []span.Span }

func (r *rec) emit(s *span.Span) { r.spans = append(r.spans, *s) }

func newConn(r *rec) *Conn {
	return NewConn(ConnMeta{Node: "n", Source: span.SourceEBPF, PID: 7, ProcessName: "curl",
		LocalIP: netip.MustParseAddr("10.0.0.1"), LocalPort: 40000, RemoteIP: netip.MustParseAddr("10.0.0.2"), RemotePort: 80},
		Config{Timeout: time.Second}, r.emit)
}

func chunk(d Dir, t int64, seq uint32, s string) Chunk {
	return Chunk{Dir: d, StartNs: t, EndNs: t, TCPSeq: seq, Data: []byte(s), Len: len(s), TID: 9, SyscallTraceID: uint64(t)}
}

func TestKeepAliveClient(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.Feed(chunk(Egress, 100, 1000, "GET /a/1 HTTP/1.1\r\nHost: h\r\nX-Request-ID: r1\r\n\r\n"))
	c.Feed(chunk(Ingress, 200, 5000, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-ID: r1\r\n\r\nok"))
	c.Feed(chunk(Egress, 300, 1049, "GET /b HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 400, 5055, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	if len(r.spans) != 2 {
		t.Fatalf("%d spans", len(r.spans))
	}
	a, b := r.spans[0], r.spans[1]
	if a.TapSide != span.TapClientProcess || a.RequestResource != "/a/1" || a.Endpoint != "/a/{id}" || a.ResponseCode != 200 ||
		a.ReqTCPSeq != 1000 || a.RespTCPSeq != 5000 || a.StartNs != 100 || a.EndNs != 200 || a.XRequestIDReq != "r1" ||
		a.XRequestIDResp != "r1" || a.RequestDomain != "h" || a.ClientPort != 40000 || a.ServerPort != 80 || a.SyscallTraceIDReq != 100 || a.SyscallTraceIDResp != 200 {
		t.Errorf("first span %+v", a)
	}
	if b.ResponseStatus != span.StatusClientError || b.ReqTCPSeq != 1049 || b.RespTCPSeq != 5055 {
		t.Errorf("second span %+v", b)
	}
}

func TestServerPipelinedAndBigBody(t *testing.T) {
	var r rec
	c := newConn(&r)
	// Two pipelined requests in one read: the second's seq is offset.
	two := "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"
	c.Feed(chunk(Ingress, 10, 100, two))
	// First response: 100 000-byte body, the capture holds only the head and 10 bytes.
	head := "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
	big := Chunk{Dir: Egress, StartNs: 20, EndNs: 20, TCPSeq: 900, Data: []byte(head + "0123456789"), Len: len(head) + 65536}
	c.Feed(big)
	c.Feed(Chunk{Dir: Egress, StartNs: 30, EndNs: 30, TCPSeq: 900 + uint32(big.Len), Data: []byte("xxxx"), Len: 100000 - 65536})
	c.Feed(chunk(Egress, 40, 900+uint32(len(head))+100000, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"))
	if len(r.spans) != 2 {
		t.Fatalf("%d spans: %+v", len(r.spans), r.spans)
	}
	s1, s2 := r.spans[0], r.spans[1]
	if s1.TapSide != span.TapServerProcess || s1.ReqTCPSeq != 100 || s1.EndNs != 30 || s1.ResponseBytes != int64(len(head))+100000 ||
		s1.ClientPort != 80 || s1.ServerPort != 40000 || !s1.Flags.Has(span.FlagTruncated) {
		t.Errorf("big response span %+v", s1)
	}
	if s2.ReqTCPSeq != 100+19 || s2.RequestResource != "/2" || s2.ResponseStatus != span.StatusServerError || s2.ResponseException != "Oops" ||
		s2.RespTCPSeq != 900+uint32(len(head))+100000 {
		t.Errorf("pipelined span %+v", s2)
	}
	if !s1.Flags.Has(span.FlagMultiplexed) || !s2.Flags.Has(span.FlagMultiplexed) {
		t.Errorf("pipelined requests not marked multiplexed: %v %v", s1.Flags, s2.Flags)
	}
}

// Requests one after the other on a keep-alive connection are not multiplexed.
func TestSequentialNotMultiplexed(t *testing.T) {
	var r rec
	c := newConn(&r)
	for i, seq := range []uint32{100, 200} {
		c.Feed(chunk(Ingress, int64(10+i*10), seq, "GET /x HTTP/1.1\r\n\r\n"))
		c.Feed(chunk(Egress, int64(15+i*10), seq+1000, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	}
	if len(r.spans) != 2 || r.spans[0].Flags.Has(span.FlagMultiplexed) || r.spans[1].Flags.Has(span.FlagMultiplexed) {
		t.Errorf("spans %+v", r.spans)
	}
}

func TestChunkedTimeoutAndClose(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.Feed(chunk(Egress, 0, 1, "GET /c HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 5, 10, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"))
	c.Feed(chunk(Ingress, 9, 60, "0\r\n\r\n"))
	if len(r.spans) != 1 || r.spans[0].EndNs != 9 {
		t.Fatalf("chunked: %+v", r.spans)
	}
	c.Feed(chunk(Egress, 20, 2, "GET /slow HTTP/1.1\r\n\r\n"))
	c.Tick(20 + int64(500*time.Millisecond))
	if len(r.spans) != 1 {
		t.Fatal("timed out too early")
	}
	c.Tick(20 + int64(2*time.Second))
	if len(r.spans) != 2 || r.spans[1].ResponseStatus != span.StatusTimeout || r.spans[1].RequestResource != "/slow" {
		t.Fatalf("timeout: %+v", r.spans)
	}
	c.Feed(chunk(Egress, 30, 3, "GET /closed HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 31, 70, "HTTP/1.0 200 OK\r\n\r\nbody until close"))
	c.Feed(chunk(Ingress, 32, 99, "more body"))
	c.Close(40)
	if len(r.spans) != 3 || r.spans[2].ResponseCode != 200 || r.spans[2].EndNs != 32 {
		t.Fatalf("close: %+v", r.spans)
	}
}

func TestNoRequestAndGarbage(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.Feed(chunk(Ingress, 1, 1, "\x16\x03\x01 tls hello"))
	c.Feed(chunk(Ingress, 2, 1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	if c.Dropped != 1 || len(r.spans) != 1 || !r.spans[0].Flags.Has(span.FlagNoRequest) {
		t.Fatalf("dropped %d, spans %+v", c.Dropped, r.spans)
	}
}

// Secrets in Authorization, Proxy-Authorization, Cookie and Set-Cookie never
// reach a span.
func TestRedaction(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.Feed(chunk(Egress, 1, 1, "GET /me HTTP/1.1\r\nAuthorization: Bearer SECRET1\r\nCookie: s=SECRET2\r\nProxy-Authorization: Basic SECRET3\r\n\r\n"))
	c.Feed(chunk(Ingress, 2, 1, "HTTP/1.1 200 OK\r\nSet-Cookie: s=SECRET4\r\nContent-Length: 0\r\n\r\n"))
	if len(r.spans) != 1 {
		t.Fatal("no span")
	}
	s := r.spans[0]
	all := strings.Join([]string{s.RequestResource, s.RequestDomain, s.Endpoint, s.ResponseException, s.XRequestIDReq,
		s.XRequestIDResp, s.Cmdline, s.RequestType, s.L7Version}, "|")
	if strings.Contains(all, "SECRET") {
		t.Fatalf("a secret leaked into the span: %s", all)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{"/reviews/0": "/reviews/{id}", "/a/b?x=1": "/a/b",
		"/u/550e8400-e29b-41d4-a716-446655440000": "/u/{id}", "/h/deadbeefcafe0123456": "/h/{id}", "/static/app.js": "/static/app.js", "": ""} {
		if got := Endpoint(in); got != want {
			t.Errorf("Endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEndpointAsSplitJoin: Endpoint, which allocates only when a segment
// is an id, gives what splitting at "/", replacing the id segments and
// joining again gives, on table and random paths.
func TestEndpointAsSplitJoin(t *testing.T) {
	ref := func(path string) string {
		if i := strings.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return ""
		}
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if isID(s) {
				segs[i] = "{id}"
			}
		}
		return strings.Join(segs, "/")
	}
	paths := []string{"/", "//", "0", "/0", "0/", "/0/", "a//0", "/reviews/0/x", "/12/34", "deadbeef", "/a/b/", "/-/x", "?q", "/x#f/0", "/é/0"}
	rnd := rand.New(rand.NewPCG(5, 6))
	alphabet := "/0a-z?#"
	for range 20000 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		paths = append(paths, string(b))
	}
	for _, p := range paths {
		if got, want := Endpoint(p), ref(p); got != want {
			t.Fatalf("Endpoint(%q) = %q, splitting and joining gives %q", p, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Endpoint("/static/app.js") }); n != 0 {
		t.Errorf("Endpoint of a path without ids: %v allocations, want 0", n)
	}
}

func FuzzSession(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), uint16(3))
	f.Add([]byte("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint16(100))
	f.Fuzz(func(t *testing.T, req, resp []byte, extra uint16) {
		var r rec
		c := newConn(&r)
		c.Feed(Chunk{Dir: Egress, StartNs: 1, EndNs: 1, Data: req, Len: len(req) + int(extra)})
		c.Feed(Chunk{Dir: Ingress, StartNs: 2, EndNs: 2, Data: resp, Len: len(resp)})
		c.Feed(Chunk{Dir: Ingress, StartNs: 3, EndNs: 3, Data: resp, Len: len(resp) + int(extra)})
		c.Tick(int64(time.Hour))
		c.Close(int64(time.Hour))
		for _, s := range r.spans {
			if s.EndNs < s.StartNs && s.ResponseStatus != span.StatusTimeout {
				t.Fatalf("span ends before it starts: %+v", s)
			}
		}
	})
}

func BenchmarkSessionExchange(b *testing.B) {
	var n int
	c := NewConn(ConnMeta{Node: "n"}, Config{}, func(*span.Span) { n++ })
	req := []byte("GET /reviews/0 HTTP/1.1\r\nHost: reviews\r\nX-Request-ID: abc\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	for i := 0; i < b.N; i++ {
		c.Feed(Chunk{Dir: Egress, StartNs: int64(i), EndNs: int64(i), Data: req, Len: len(req)})
		c.Feed(Chunk{Dir: Ingress, StartNs: int64(i), EndNs: int64(i), Data: resp, Len: len(resp)})
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "exchanges/s")
}

func TestRoleFromLifecycle(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.SetRole(RoleServer)
	// Mid-way: the response comes first, then a request/response: still s-p.
	c.Feed(chunk(Egress, 1, 1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	c.Feed(chunk(Ingress, 2, 5, "GET /x HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Egress, 3, 40, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	if len(r.spans) != 2 || r.spans[0].TapSide != span.TapServerProcess || r.spans[1].TapSide != span.TapServerProcess {
		t.Fatalf("%+v", r.spans)
	}
}

// rng is a stream range told to Config.Body.
type rng struct {
	d          Dir
	start, end uint32
}

// toldConn is a Conn of meta whose ranges told to Config.Body are kept in
// told.
func toldConn(r *rec, meta ConnMeta, told *[]rng) *Conn {
	return NewConn(meta, Config{Timeout: time.Second, Body: func(d Dir, start, end uint32) { *told = append(*told, rng{d, start, end}) }}, r.emit)
}

// A message whose length its head gives and whose rest comes in later
// chunks: the session tells the capture the rest's stream range (Body), and
// counts the payload-less continuation chunks the capture then sends by
// length. A POST whose body follows its head (the request side) and a
// response whose body crosses into the next response's chunk: that chunk
// captured from its start, and from the body's end (Skip: the capture read
// it from the range's end), with the same spans.
func TestBodyByLength(t *testing.T) {
	for _, fromEnd := range []bool{false, true} {
		bodyByLength(t, fromEnd)
	}
}

func bodyByLength(t *testing.T, fromEnd bool) {
	var r rec
	var told []rng
	c := toldConn(&r, ConnMeta{Node: "n", Source: span.SourceEBPF, PID: 7, ProcessName: "srv",
		LocalIP: netip.MustParseAddr("10.0.0.2"), LocalPort: 80, RemoteIP: netip.MustParseAddr("10.0.0.1"), RemotePort: 40000}, &told)
	// POST head (51 bytes) read alone at seq 1000; its 5000-byte body in
	// two reads the capture sends without payload.
	post := "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n"
	c.Feed(chunk(Ingress, 10, 1000, post))
	c.Feed(Chunk{Dir: Ingress, StartNs: 20, EndNs: 20, TCPSeq: 1000 + uint32(len(post)), Len: 4000})
	c.Feed(Chunk{Dir: Ingress, StartNs: 30, EndNs: 30, TCPSeq: 1000 + uint32(len(post)) + 4000, Len: 1000})
	// Response: head + 10 of 20 000 body bytes, two payload-less chunks,
	// then one crossing into the second response (it carries its payload).
	head := "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"
	c.Feed(chunk(Egress, 40, 9000, head+"0123456789"))
	first := 9000 + uint32(len(head)) + 10
	c.Feed(Chunk{Dir: Egress, StartNs: 50, EndNs: 50, TCPSeq: first, Len: 9990})
	c.Feed(Chunk{Dir: Egress, StartNs: 60, EndNs: 60, TCPSeq: first + 9990, Len: 9000})
	c.Feed(chunk(Ingress, 70, 1000+uint32(len(post))+5000, "GET /next HTTP/1.1\r\n\r\n"))
	resp := "HTTP/1.1 204 No Content\r\n\r\n"
	if fromEnd {
		c.Feed(Chunk{Dir: Egress, StartNs: 80, EndNs: 80, TCPSeq: first + 9990 + 9000, Data: []byte(resp), Len: 1000 + len(resp), Skip: 1000})
	} else {
		c.Feed(chunk(Egress, 80, first+9990+9000, strings.Repeat("z", 1000)+resp))
	}
	want := []rng{
		{Ingress, 1000 + uint32(len(post)), 1000 + uint32(len(post)) + 5000},
		{Egress, 9000 + uint32(len(head)) + 10, 9000 + uint32(len(head)) + 20000},
	}
	if len(told) != len(want) || told[0] != want[0] || told[1] != want[1] {
		t.Errorf("body ranges told %+v, want %+v", told, want)
	}
	if len(r.spans) != 2 {
		t.Fatalf("%d spans: %+v", len(r.spans), r.spans)
	}
	up, next := r.spans[0], r.spans[1]
	if up.RequestResource != "/up" || up.RequestBytes != int64(len(post))+5000 || up.ResponseBytes != int64(len(head))+20000 ||
		up.ResponseCode != 200 || up.EndNs != 80 || up.StartNs != 10 {
		t.Errorf("from the body's end %v: POST span %+v", fromEnd, up)
	}
	if next.RequestResource != "/next" || next.ResponseCode != 204 || next.RespTCPSeq != first+9990+9000+1000 || next.ResponseBytes != int64(len(resp)) {
		t.Errorf("from the body's end %v: next span %+v", fromEnd, next)
	}
}

// A response to HEAD carries Content-Length but no body: the next response
// on the connection is parsed, not counted as that body.
func TestHeadResponseHasNoBody(t *testing.T) {
	var r rec
	var told int
	c := NewConn(ConnMeta{Node: "n", Source: span.SourceEBPF, PID: 7, ProcessName: "curl",
		LocalIP: netip.MustParseAddr("10.0.0.1"), LocalPort: 40000, RemoteIP: netip.MustParseAddr("10.0.0.2"), RemotePort: 80},
		Config{Timeout: time.Second, Body: func(Dir, uint32, uint32) { told++ }}, r.emit)
	c.Feed(chunk(Egress, 10, 1000, "HEAD /h HTTP/1.1\r\n\r\n"))
	head := "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
	c.Feed(chunk(Ingress, 20, 5000, head))
	c.Feed(chunk(Egress, 30, 1020, "GET /g HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 40, 5000+uint32(len(head)), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	if len(r.spans) != 2 || r.spans[0].RequestType != "HEAD" || r.spans[0].ResponseBytes != int64(len(head)) ||
		r.spans[1].RequestResource != "/g" || r.spans[1].ResponseCode != 404 {
		t.Fatalf("spans %+v", r.spans)
	}
	if told != 0 {
		t.Errorf("a HEAD response's Content-Length was told as a body (%d)", told)
	}
}

// Exchanges are reused once emitted (no allocation per span), but not one
// that a message still going on points to: a request body still coming
// after an early response ended its exchange. Here an unsolicited
// response follows, whose exchange must not be the emitted one, else the
// request body's rest would be counted in it.
func TestReuseSkipsExchangeStillFed(t *testing.T) {
	var r rec
	c := newConn(&r)
	head := "POST /up HTTP/1.1\r\nContent-Length: 20\r\n\r\n"
	c.Feed(chunk(Egress, 10, 1, head+"12345"))
	c.Feed(chunk(Ingress, 20, 500, "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n"))
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
	c.Feed(chunk(Ingress, 30, 600, resp+"ab"))
	c.Feed(chunk(Egress, 40, 1+uint32(len(head))+5, "678901234567890"))
	c.Feed(chunk(Ingress, 50, 600+uint32(len(resp))+2, "cdefghij"))
	if len(r.spans) != 2 {
		t.Fatalf("%d spans: %+v", len(r.spans), r.spans)
	}
	a, b := r.spans[0], r.spans[1]
	if a.ResponseCode != 413 || a.RequestResource != "/up" || a.RequestBytes != int64(len(head)+5) {
		t.Errorf("early response's span: %+v", a)
	}
	if !b.Flags.Has(span.FlagNoRequest) || b.RequestBytes != 0 || b.ResponseBytes != int64(len(resp)+10) ||
		b.ResponseCode != 200 || b.RequestResource != "" || b.EndNs != 50 {
		t.Errorf("unsolicited response's span: %+v", b)
	}
}

// TestEmitReusesSpan: the span handed to emit is the connection's own,
// and a copy taken in emit stays as it was after the next span.
func TestEmitReusesSpan(t *testing.T) {
	var ptrs []*span.Span
	var r rec
	c := NewConn(ConnMeta{Node: "n"}, Config{}, func(s *span.Span) { ptrs = append(ptrs, s); r.emit(s) })
	for i, p := range []string{"/a", "/b"} {
		c.Feed(chunk(Egress, int64(10*i+1), 1, "GET "+p+" HTTP/1.1\r\n\r\n"))
		c.Feed(chunk(Ingress, int64(10*i+2), 9, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	}
	if len(ptrs) != 2 || ptrs[0] != ptrs[1] {
		t.Fatalf("spans not reused: %p", ptrs)
	}
	if r.spans[0].RequestResource != "/a" || r.spans[1].RequestResource != "/b" {
		t.Errorf("copies: %q %q", r.spans[0].RequestResource, r.spans[1].RequestResource)
	}
}

// pieces feeds s as consecutive chunks of at most n bytes in direction d,
// from time t and sequence seq on (one time step per chunk).
func pieces(c *Conn, d Dir, t int64, seq uint32, s string, n int) {
	for i := 0; i < len(s); i += n {
		j := min(i+n, len(s))
		c.Feed(chunk(d, t+int64(i), seq+uint32(i), s[i:j]))
	}
}

// TestHeadInPieces: a head split over several reads (a client reading into
// a small buffer, a peer writing its head in pieces) is parsed whole, so
// each response answers its own request. Before, a first read that cut the
// status line made a message of its own, and the connection's next
// response answered the first request: /a got /b's 201 and /b none.
func TestHeadInPieces(t *testing.T) {
	const (
		reqA  = "GET /a HTTP/1.1\r\nHost: h\r\nX-Request-ID: qa\r\n\r\n"
		respA = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-ID: ra\r\n\r\nhello"
		reqB  = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
		respB = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
	)
	for _, n := range []int{1, 3, 8, 16, 17, 24, 40, 64} {
		for _, client := range []bool{true, false} {
			var r rec
			c := newConn(&r)
			// The observed endpoint's reads come in pieces of n bytes: the
			// responses at a client, the requests at a server.
			out, in := Egress, Ingress
			if !client {
				out, in = Ingress, Egress
			}
			feed := func(d Dir, t int64, seq uint32, s string) {
				if d == Ingress {
					pieces(c, d, t, seq, s, n)
				} else {
					c.Feed(chunk(d, t, seq, s))
				}
			}
			feed(out, 100, 1000, reqA)
			feed(in, 200, 5000, respA)
			feed(out, 400, 1000+uint32(len(reqA)), reqB)
			feed(in, 500, 5000+uint32(len(respA)), respB)
			if len(r.spans) != 2 || c.Dropped != 0 {
				t.Fatalf("n=%d client=%v: %d spans, %d chunks dropped: %+v", n, client, len(r.spans), c.Dropped, r.spans)
			}
			a, b := r.spans[0], r.spans[1]
			// The end of the exchange is its last piece's (the response's
			// at a client; at a server the response is one write).
			endA := int64(200)
			if client {
				endA = 200 + int64(len(respA)-1)/int64(n)*int64(n)
			}
			if a.RequestResource != "/a" || a.ResponseCode != 200 || a.XRequestIDReq != "qa" || a.XRequestIDResp != "ra" ||
				a.ReqTCPSeq != 1000 || a.RespTCPSeq != 5000 || a.StartNs != 100 || a.EndNs != endA || a.ResponseBytes != int64(len(respA)) {
				t.Errorf("n=%d client=%v: first span %+v", n, client, a)
			}
			if b.RequestResource != "/b" || b.ResponseCode != 201 || b.ReqTCPSeq != 1000+uint32(len(reqA)) || b.StartNs != 400 {
				t.Errorf("n=%d client=%v: second span %+v", n, client, b)
			}
		}
	}
}

// TestHeadInPiecesGap: a head's piece that does not follow the held one in
// the stream (an event lost between them) is not joined to it: the held
// bytes are a message as they are (a response of unknown status here), so
// no response answers a request it does not belong to.
func TestHeadInPiecesGap(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.Feed(chunk(Egress, 100, 1000, "GET /a HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 200, 5000, "HTTP/1.1 2"))
	c.Feed(chunk(Ingress, 210, 5020, "ength: 0\r\n\r\n")) // 5010..5020 lost
	c.Feed(chunk(Egress, 300, 1019, "GET /b HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 400, 5032, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	c.Close(500)
	if len(r.spans) != 2 {
		t.Fatalf("%d spans: %+v", len(r.spans), r.spans)
	}
	if a := r.spans[0]; a.RequestResource != "/a" || a.ResponseCode != 0 || a.RespTCPSeq != 5000 {
		t.Errorf("/a: want answered by the response at 5000 of unknown status: %+v", a)
	}
	if b := r.spans[1]; b.RequestResource != "/b" || b.ResponseCode != 404 {
		t.Errorf("/b: %+v", b)
	}
	if c.Dropped != 1 {
		t.Errorf("%d chunks dropped, want 1 (the piece after the gap)", c.Dropped)
	}
}

// TestHeadInPiecesTLS: TLS plaintext is joined in order, whatever its
// chunks' sequence numbers (the records', not the plaintext's).
func TestHeadInPiecesTLS(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.SetTLS(span.FlagTLSOpenSSL)
	c.Feed(chunk(Egress, 100, 1000, "GET /a HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 200, 5000, "HTTP/1.1 200 OK\r"))
	c.Feed(chunk(Ingress, 210, 5000, "\nContent-Length: 2\r\n\r\nok")) // the same record's plaintext
	c.Feed(chunk(Egress, 300, 1100, "GET /b HTTP/1.1\r\n\r\n"))
	c.Feed(chunk(Ingress, 400, 5100, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	if len(r.spans) != 2 || r.spans[0].ResponseCode != 200 || r.spans[0].EndNs != 210 || r.spans[1].ResponseCode != 404 {
		t.Fatalf("spans %+v", r.spans)
	}
}

// FuzzHeadInPieces: a well-formed response (a whole head whose length
// covers the rest) read in pieces of any size gives the spans it gives read
// whole: the same requests answered, with the same status, byte count and
// response X-Request-ID, and the exchange after it answered by its own.
func FuzzHeadInPieces(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-ID: ra\r\n\r\nhello"), uint8(16))
	f.Add([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), uint8(1))
	f.Add([]byte("HTTP/1.0 204 No Content\r\nServer: x\r\n\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, resp []byte, n uint8) {
		var m l7.Message
		if (l7.HTTP1{}).Parse(resp, &m) != nil || m.Chunked || m.Total() != len(resp) || len(resp) > maxPart || n == 0 {
			return
		}
		type got struct {
			res  string
			code int32
			n    int64
			xrid string
		}
		run := func(piece int) []got {
			var r rec
			c := newConn(&r)
			c.Feed(chunk(Egress, 100, 1000, "GET /a HTTP/1.1\r\n\r\n"))
			pieces(c, Ingress, 200, 5000, string(resp), piece)
			c.Feed(chunk(Egress, 100000, 1019, "GET /b HTTP/1.1\r\n\r\n"))
			c.Feed(chunk(Ingress, 100001, 5000+uint32(len(resp)), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
			c.Close(100002)
			var out []got
			for _, s := range r.spans {
				out = append(out, got{s.RequestResource, s.ResponseCode, s.ResponseBytes, s.XRequestIDResp})
			}
			return out
		}
		whole, split := run(len(resp)), run(int(n))
		if len(whole) != 2 || whole[1] != (got{"/b", 404, 45, ""}) {
			t.Fatalf("read whole: %+v", whole)
		}
		if len(split) != len(whole) || split[0] != whole[0] || split[1] != whole[1] {
			t.Fatalf("read in pieces of %d: %+v, read whole: %+v", n, split, whole)
		}
	})
}
