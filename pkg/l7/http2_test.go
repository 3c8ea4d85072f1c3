package l7

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/zerotrace/zerotrace/pkg/span"
)

func TestHTTP2Annotated(t *testing.T) {
	req := unhexDNS(`
		505249202a20485454502f322e300d0a0d0a534d0d0a0d0a // preface
		000000 04 00 00000000                            // SETTINGS, empty, stream 0
		00000f 01 05 00000001                            // HEADERS, 15 bytes, END_STREAM|END_HEADERS, stream 1
		82                                               // :method GET (static index 2)
		86                                               // :scheme http (static index 6)
		84                                               // :path / (static index 4)
		41 0a 64657461696c733a3830                       // :authority (static 1) "details:80", indexed into the table
		000001 01 05 00000003                            // HEADERS, 1 byte, stream 3
		be                                               // dynamic index 62: :authority details:80 ... incomplete request: no :method
	`)
	resp := unhexDNS(`
		000000 04 00 00000000                            // SETTINGS, empty
		000001 01 04 00000001                            // HEADERS, 1 byte, END_HEADERS, stream 1
		88                                               // :status 200 (static 8)
		000005 00 01 00000001                            // DATA, 5 bytes, END_STREAM, stream 1
		68656c6c6f                                       // "hello"
	`)
	var got []Message
	st := HTTP2{}.NewStream()
	emit := func(m *Message) { got = append(got, *m) }
	st.Feed(req, len(req), false, emit)
	st.Feed(resp, len(resp), true, emit)
	if len(got) != 3 {
		t.Fatalf("%d messages: %+v", len(got), got)
	}
	want := Message{Protocol: span.L7HTTP2, Version: "2", Method: "GET", Path: "/", Host: "details:80", StreamID: 1,
		Offset: 33, Length: 24}
	if got[0] != want {
		t.Errorf("request\n got %+v\nwant %+v", got[0], want)
	}
	// Stream 3 ends with its HEADERS: a request without :method is marked partial.
	if got[1].StreamID != 3 || got[1].Host != "details:80" || !got[1].Partial {
		t.Errorf("stream 3 %+v", got[1])
	}
	want = Message{Response: true, Protocol: span.L7HTTP2, Version: "2", Status: 200, RespStatus: span.StatusOK, StreamID: 1,
		Offset: 9, Length: 24}
	if got[2] != want {
		t.Errorf("response\n got %+v\nwant %+v", got[2], want)
	}
}

// h2Conv writes HTTP/2 conversations with the real framer and encoder.
type h2Conv struct {
	req, resp       bytes.Buffer
	fr, fw          *http2.Framer
	reqEnc, respEnc *hpack.Encoder
	rb, sb          bytes.Buffer
}

func newH2Conv() *h2Conv {
	c := &h2Conv{}
	c.req.WriteString(H2Preface)
	c.fr, c.fw = http2.NewFramer(&c.req, nil), http2.NewFramer(&c.resp, nil)
	c.reqEnc, c.respEnc = hpack.NewEncoder(&c.rb), hpack.NewEncoder(&c.sb)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
	c.fw.WriteSettings()
	c.fw.WriteSettingsAck()
	c.fr.WriteSettingsAck()
	return c
}

func (c *h2Conv) block(enc *hpack.Encoder, buf *bytes.Buffer, kv ...string) []byte {
	buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), buf.Bytes()...)
}

// grpcCall writes a unary gRPC call on stream id and its response.
func (c *h2Conv) grpcCall(id uint32, method, xrid string, code int, body int) {
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: c.block(c.reqEnc, &c.rb,
		":method", "POST", ":scheme", "http", ":path", method, ":authority", "reviews:9080",
		"content-type", "application/grpc", "te", "trailers", "x-request-id", xrid,
		"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")})
	c.fr.WriteData(id, true, make([]byte, 5+body))
	if code != 0 { // trailers-only
		c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: c.block(c.respEnc, &c.sb,
			":status", "200", "content-type", "application/grpc", "grpc-status", fmt.Sprint(code), "grpc-message", "no such thing")})
		return
	}
	c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: c.block(c.respEnc, &c.sb,
		":status", "200", "content-type", "application/grpc", "x-request-id", xrid)})
	c.fw.WriteData(id, false, make([]byte, 5+body))
	c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: c.block(c.respEnc, &c.sb,
		"grpc-status", "0")})
}

func feedSplit(st Stream, b []byte, response bool, at int, emit func(*Message)) {
	if at <= 0 || at >= len(b) {
		st.Feed(b, len(b), response, emit)
		return
	}
	st.Feed(b[:at], at, response, emit)
	st.Feed(b[at:], len(b)-at, response, emit)
}

func TestHTTP2GRPCConversation(t *testing.T) {
	c := newH2Conv()
	c.grpcCall(1, "/bookinfo.Reviews/Get", "rid-1", 0, 10)
	c.grpcCall(3, "/bookinfo.Reviews/Get", "rid-2", 0, 3000) // headers now indexed in the dynamic table
	c.grpcCall(5, "/bookinfo.Reviews/Missing", "rid-3", 5, 0)
	req, resp := c.req.Bytes(), c.resp.Bytes()
	check := func(t *testing.T, got []Message) {
		t.Helper()
		if len(got) != 6 {
			t.Fatalf("%d messages", len(got))
		}
		for i, m := range got {
			call := i / 2
			if m.Response != (i%2 == 1) || m.Protocol != span.L7GRPC || m.StreamID != uint32(2*call+1) || m.Partial || m.Truncated {
				t.Fatalf("message %d: %+v", i, m)
			}
			if !m.Response {
				wantPath := "/bookinfo.Reviews/Get"
				if call == 2 {
					wantPath = "/bookinfo.Reviews/Missing"
				}
				if m.Method != "POST" || m.Path != wantPath || m.Host != "reviews:9080" || m.XRequestID != fmt.Sprintf("rid-%d", call+1) ||
					m.TraceID.String() != "0af7651916cd43dd8448eb211c80319c" || m.ParentSpanID != 0xb7ad6b7169203331 {
					t.Errorf("request %d: %+v", call, m)
				}
				continue
			}
			wantStatus, wantRS := 0, span.StatusOK
			if call == 2 {
				wantStatus, wantRS = 5, span.StatusClientError
			}
			if m.Status != wantStatus || m.RespStatus != wantRS {
				t.Errorf("response %d: %+v", call, m)
			}
			if call == 2 && m.Reason != "no such thing" {
				t.Errorf("grpc-message %q", m.Reason)
			}
		}
		if got[0].Offset != int64(len(H2Preface)+9+6+9) {
			t.Errorf("first request at %d", got[0].Offset)
		}
		if got[3].Length < 3000 {
			t.Errorf("second response of %d bytes", got[3].Length)
		}
	}
	// Requests first, then responses, split at every byte of each side.
	for at := 0; at < len(req); at += 1 + at/64 {
		var got []Message
		emit := func(m *Message) { got = append(got, *m) }
		st := HTTP2{}.NewStream()
		feedSplit(st, req, false, at, emit)
		feedSplit(st, resp, true, at%len(resp), emit)
		// Requests come out in order as they end, then the responses.
		if len(got) != 6 {
			t.Fatalf("split at %d: %d messages: %+v", at, len(got), got)
		}
		var ordered []Message
		for i := 0; i < 3; i++ {
			ordered = append(ordered, got[i], got[3+i])
		}
		check(t, ordered)
	}
}

func TestHTTP2Truncated(t *testing.T) {
	c := newH2Conv()
	c.grpcCall(1, "/a.B/C", "r1", 0, 100000) // 100 kB messages in 16 kB frames
	c.grpcCall(3, "/a.B/D", "r2", 0, 1)
	req, resp := c.req.Bytes(), c.resp.Bytes()
	var got []Message
	emit := func(m *Message) { got = append(got, *m) }
	st := HTTP2{}.NewStream()
	// The capture keeps the first 1024 bytes of every 20000-byte write.
	for _, side := range []struct {
		b        []byte
		response bool
	}{{req, false}, {resp, true}} {
		for off := 0; off < len(side.b); off += 20000 {
			n := min(20000, len(side.b)-off)
			st.Feed(side.b[off:off+min(n, 1024)], n, side.response, emit)
		}
	}
	// Both exchanges, in the order they end: the first marked truncated
	// (its bodies lost), the second read whole after it.
	type brief struct {
		response  bool
		stream    uint32
		xrid      string
		path      string
		status    span.ResponseStatus
		truncated bool
	}
	want := []brief{
		{false, 1, "r1", "/a.B/C", span.StatusUnknown, true},
		{false, 3, "r2", "/a.B/D", span.StatusUnknown, false},
		{true, 1, "r1", "", span.StatusOK, true},
		{true, 3, "r2", "", span.StatusOK, false},
	}
	var have []brief
	for _, m := range got {
		have = append(have, brief{m.Response, m.StreamID, m.XRequestID, m.Path, m.RespStatus, m.Truncated})
	}
	if !slices.Equal(have, want) {
		t.Errorf("messages after lost bytes:\n got %+v\nwant %+v", have, want)
	}
}

func TestHTTP2MidConnection(t *testing.T) {
	c := newH2Conv()
	c.grpcCall(1, "/a.B/C", "r1", 0, 1)
	cut, cutResp := c.req.Len(), c.resp.Len()
	c.grpcCall(3, "/a.B/C", "r2", 0, 1)
	var got []Message
	emit := func(m *Message) { got = append(got, *m) }
	st := HTTP2{}.NewStream()
	req, resp := c.req.Bytes()[cut:], c.resp.Bytes()[cutResp:]
	if !(HTTP2{}).Detect(req) {
		t.Fatal("HEADERS mid-connection not detected")
	}
	st.Feed(req, len(req), false, emit)
	st.Feed(resp, len(resp), true, emit)
	if len(got) != 2 || got[0].StreamID != 3 || got[1].StreamID != 3 {
		t.Fatalf("%+v", got)
	}
	// Its headers refer to dynamic entries of the first call: marked, yet
	// what is in the static table or literal is read.
	if !got[0].Partial || got[0].Method != "POST" || got[1].RespStatus != span.StatusOK {
		t.Errorf("%+v", got)
	}
}

func TestHTTP2Detect(t *testing.T) {
	c := newH2Conv()
	c.grpcCall(1, "/a.B/C", "r1", 0, 1)
	for name, tc := range map[string]struct {
		b    []byte
		want bool
	}{
		"preface":      {[]byte(H2Preface), true},
		"server first": {c.resp.Bytes(), true},
		"http1":        {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		"tls":          {[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), false},
		"redis":        {[]byte("*1\r\n$4\r\nPING\r\n"), false},
		"mysql query":  {[]byte("\x09\x00\x00\x00\x03select 1"), false},
		"pg query":     {[]byte("Q\x00\x00\x00\x0dselect 1\x00"), false},
		"kafka":        {[]byte("\x00\x00\x00\x1f\x00\x03\x00\x09\x00\x00\x00\x01\x00\x05kgo-1"), false},
		"dns":          {dnsQuery, false},
	} {
		if got := (HTTP2{}).Detect(tc.b); got != tc.want {
			t.Errorf("%s: Detect %v", name, got)
		}
	}
	var m Message
	if err := (HTTP2{}).Parse(c.resp.Bytes(), &m); err != nil || !m.Response {
		t.Errorf("server's SETTINGS: %v %+v", err, m)
	}
	if err := (HTTP2{}).Parse(c.req.Bytes(), &m); err != nil || m.Response {
		t.Errorf("preface: %v %+v", err, m)
	}
}

func FuzzHTTP2(f *testing.F) {
	c := newH2Conv()
	c.grpcCall(1, "/a.B/C", "r1", 0, 10)
	c.grpcCall(3, "/a.B/C", "r2", 13, 0)
	f.Add(c.req.Bytes(), c.resp.Bytes(), uint16(40))
	f.Add([]byte(H2Preface+"\x00\x00\x01\x01\x05\x00\x00\x00\x01\xff"), []byte("\x00\x00\x00\x04\x00\x00\x00\x00\x00"), uint16(3))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint16) {
		st := HTTP2{}.NewStream()
		var fed [2]int64
		emit := func(m *Message) {
			i := 0
			if m.Response {
				i = 1
			}
			if m.Offset < 0 || m.Offset+m.Length > fed[i] || len(m.Path) > MaxPath {
				t.Fatalf("message %+v beyond the %d bytes fed", m, fed[i])
			}
		}
		at := int(split)
		for _, side := range []struct {
			b []byte
			r bool
		}{{req, false}, {resp, true}} {
			a := min(at, len(side.b))
			i := 0
			if side.r {
				i = 1
			}
			fed[i] += int64(a)
			st.Feed(side.b[:a], a, side.r, emit)
			fed[i] += int64(len(side.b) - a + 7)
			st.Feed(side.b[a:], len(side.b)-a+7, side.r, emit) // 7 bytes lost at the end
		}
	})
}

func BenchmarkHTTP2Stream(b *testing.B) {
	c := newH2Conv()
	c.grpcCall(1, "/a.B/C", "r1", 0, 10)
	start, startResp := c.req.Len(), c.resp.Len()
	c.grpcCall(3, "/a.B/C", "r2", 0, 10)
	// One call's bytes with every later header indexed; replayed with a new
	// stream id each time.
	req := append([]byte(nil), c.req.Bytes()[start:]...)
	resp := append([]byte(nil), c.resp.Bytes()[startResp:]...)
	st := HTTP2{}.NewStream()
	st.Feed(c.req.Bytes()[:start], start, false, func(*Message) {})
	st.Feed(c.resp.Bytes()[:startResp], startResp, true, func(*Message) {})
	n := 0
	emit := func(*Message) { n++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := uint32(2*i + 5)
		for _, buf := range [][]byte{req, resp} {
			for off := 0; off+9 <= len(buf); {
				l := int(buf[off])<<16 | int(buf[off+1])<<8 | int(buf[off+2])
				buf[off+5], buf[off+6], buf[off+7], buf[off+8] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
				off += 9 + l
			}
		}
		st.Feed(req, len(req), false, emit)
		st.Feed(resp, len(resp), true, emit)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// TestHTTP2TableAfterGap: header blocks the capture did not read leave the
// sender's HPACK table with entries this side's lacks. Requests on one
// connection, x-request-id first, every field indexed (Go's encoder): the
// block of stream 3 is lost in bytes not captured (framing lost, found
// again at stream 5), or read with a hole in it. Stream 5 refers to entries
// stream 3 added: before, its indexes named stream 1's entries (x-request-id
// rid-1, path /a) and it went out as stream 1's request; now what cannot be
// known is left out and the stream marked partial, never another entry.
// Stream 7's path, a new literal, is read (the table kept in step since the
// gap); its x-request-id, a new value under the name's entry from before
// the gap, is not.
func TestHTTP2TableAfterGap(t *testing.T) {
	for _, hole := range []bool{false, true} {
		c := newH2Conv()
		call := func(id uint32, path, xrid string) {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: c.block(c.reqEnc, &c.rb,
				"x-request-id", xrid, ":method", "GET", ":scheme", "http", ":path", path, ":authority", "reviews:9080")})
		}
		call(1, "/a", "rid-1")
		a := c.req.Len()
		call(3, "/b", "rid-2")
		b := c.req.Len()
		call(5, "/b", "rid-2")
		call(7, "/c", "rid-3")
		req := c.req.Bytes()
		var got []Message
		st := HTTP2{}.NewStream()
		emit := func(m *Message) { got = append(got, *m) }
		st.Feed(req[:a], a, false, emit)
		if hole {
			// Stream 3's HEADERS: its frame header and first block byte
			// captured, the rest of that write not; then the next write.
			st.Feed(req[a:a+10], b-a-3, false, emit)
			st.Feed(req[b-3:b], 3, false, emit)
		} else {
			st.Feed(nil, b-a, false, emit)
		}
		st.Feed(req[b:], len(req)-b, false, emit)
		for _, m := range got {
			t.Logf("hole %v: stream %d path %q x-request-id %q partial %v", hole, m.StreamID, m.Path, m.XRequestID, m.Partial)
			want := map[uint32][2]string{1: {"/a", "rid-1"}, 3: {"/b", "rid-2"}, 5: {"/b", "rid-2"}, 7: {"/c", "rid-3"}}[m.StreamID]
			if m.Path != "" && m.Path != want[0] || m.XRequestID != "" && m.XRequestID != want[1] {
				t.Errorf("hole %v: stream %d: path %q x-request-id %q, want %q %q or nothing", hole, m.StreamID, m.Path, m.XRequestID, want[0], want[1])
			}
			if (m.Path != want[0] || m.XRequestID != want[1]) && !m.Partial {
				t.Errorf("hole %v: stream %d: fields missing and not marked partial: %+v", hole, m.StreamID, m)
			}
		}
		if len(got) == 0 || got[0].StreamID != 1 || got[0].Path != "/a" || got[0].Partial {
			t.Errorf("hole %v: stream 1 before the gap: %+v", hole, got)
		}
		if last := got[len(got)-1]; last.StreamID != 7 || last.Path != "/c" || last.Method != "GET" {
			t.Errorf("hole %v: stream 7 after the gap: %+v", hole, last)
		}
	}
}
