package session

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/zerotrace/zerotrace/internal/kafkawire"
	"github.com/zerotrace/zerotrace/pkg/l7"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// A write is what one side of a connection wrote in one call: client
// true for the client's bytes.
type write struct {
	client bool
	b      []byte
}

// conversation is a connection's writes in the order they happened.
type conversation []write

func (cv conversation) req(b ...[]byte) conversation {
	return append(cv, write{true, bytes.Join(b, nil)})
}

func (cv conversation) resp(b ...[]byte) conversation {
	return append(cv, write{false, bytes.Join(b, nil)})
}

// reads says how the observed endpoint's reads (or a peer's writes) cut a
// conversation: the size of each piece in turn (cycled; 0: whole), and
// whether a piece may run over into the next write of its direction (a
// read that returns the end of one message and the start of the next).
type reads struct {
	sizes  []int
	across bool
}

// play feeds cv to a session observed at the client (or at the server),
// each write's pieces as chunks, and returns the spans. Every piece of
// write k has time and syscall id of its first byte's write, every byte
// its sequence number, so that the same conversation read in pieces gives
// the same spans as read whole when the session pairs and parses alike.
func play(cv conversation, atClient bool, r reads) []span.Span {
	spans, _ := playPlaced(cv, atClient, r)
	return spans
}

// playPlaced is play that also returns the session's Placeless count.
func playPlaced(cv conversation, atClient bool, r reads) ([]span.Span, int) {
	var rc rec
	c := newConn(&rc)
	if atClient {
		c.SetRole(RoleClient)
	} else {
		c.SetRole(RoleServer)
	}
	seq := [2]uint32{1000, 900000}
	k := 0 // index in r.sizes
	for i := 0; i < len(cv); {
		// A turn: the writes of one direction until the other speaks.
		j := i
		var turn []byte
		var owner []int // write index of each byte
		for ; j < len(cv) && cv[j].client == cv[i].client; j++ {
			turn = append(turn, cv[j].b...)
			for range cv[j].b {
				owner = append(owner, j)
			}
		}
		d := Egress
		if cv[i].client != atClient {
			d = Ingress
		}
		for off := 0; off < len(turn); {
			n := len(turn) - off
			if len(r.sizes) > 0 && r.sizes[k%len(r.sizes)] > 0 {
				n = min(n, r.sizes[k%len(r.sizes)])
			}
			k++
			if !r.across {
				w := owner[off]
				end := off
				for end < len(turn) && owner[end] == w {
					end++
				}
				n = min(n, end-off)
			}
			if len(r.sizes) == 0 { // whole writes
				w := owner[off]
				n = 0
				for off+n < len(turn) && owner[off+n] == w {
					n++
				}
			}
			w := owner[off]
			t0, t1 := int64(100*(w+1)), int64(100*(owner[off+n-1]+1))
			c.Feed(Chunk{Dir: d, StartNs: t0, EndNs: t1, TCPSeq: seq[d], Data: turn[off : off+n : off+n], Len: n,
				TID: uint32(10 + d), SyscallTraceID: uint64(w + 1)})
			seq[d] += uint32(n)
			off += n
		}
		i = j
	}
	c.Close(int64(100 * (len(cv) + 1)))
	for i := range rc.spans {
		rc.spans[i].SpanID = 0
	}
	return rc.spans, c.Placeless
}

// timeless is what of a span does not depend on which read a message
// started in: compared when pieces run over writes (a message starting
// inside a read takes the read's time).
func timeless(s span.Span) span.Span {
	s.StartNs, s.EndNs, s.SyscallTraceIDReq, s.SyscallTraceIDResp = 0, 0, 0, 0
	return s
}

// samePieces reports how cv read in pieces r differs from cv read whole
// at the observed endpoint (client or server): "" when it gives the same
// spans.
func samePieces(cv conversation, atClient bool, r reads) string {
	whole := play(cv, atClient, reads{})
	split, lost := playPlaced(cv, atClient, r)
	if len(split) != len(whole) {
		return fmt.Sprintf("%d spans, %d read whole:\n%s\nwhole:\n%s", len(split), len(whole), spansText(split), spansText(whole))
	}
	// A message in more pieces than the session remembers (maxRecent:
	// small pieces, a long message, or the first request after a login,
	// which the decoder does not pass on) has its first chunk forgotten
	// (Placeless): it starts at a later chunk's time, with no syscall
	// context, never another chunk's; its sequence number and all else
	// stay right. Read across writes, a message starting inside a read
	// takes the read's time and syscall.
	placeless := lost > 0 || len(r.sizes) > 0 && slices.Min(r.sizes) < 3
	for i := range whole {
		w, s := whole[i], split[i]
		if placeless && !r.across && (s.SyscallTraceIDReq != w.SyscallTraceIDReq && s.SyscallTraceIDReq != 0 ||
			s.SyscallTraceIDResp != w.SyscallTraceIDResp && s.SyscallTraceIDResp != 0) {
			return fmt.Sprintf("span %d carries another chunk's syscall:\n%s\nread whole:\n%s", i, spansText(split[i:i+1]), spansText(whole[i:i+1]))
		}
		if placeless || r.across {
			w, s = timeless(w), timeless(s)
		}
		if w != s {
			return fmt.Sprintf("span %d:\n%s\nread whole:\n%s", i, spansText(split[i:i+1]), spansText(whole[i:i+1]))
		}
	}
	return ""
}

func spansText(ss []span.Span) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s %q %q code %d %s %q rows %d bytes %d/%d seq %d/%d t %d-%d sys %d/%d stream %d flags %v\n",
			s.L7Protocol, s.RequestType, s.RequestResource, s.ResponseCode, s.ResponseStatus, s.ResponseException,
			s.ResultCount, s.RequestBytes, s.ResponseBytes, s.ReqTCPSeq, s.RespTCPSeq, s.StartNs, s.EndNs,
			s.SyscallTraceIDReq, s.SyscallTraceIDResp, s.StreamID, s.Flags)
	}
	return b.String()
}

// pieceSizes are the read sizes of the table tests.
var pieceSizes = [][]int{{1}, {2}, {3}, {5}, {8}, {16}, {64}, {1, 7}, {4, 1}, {13, 2, 29}}

// checkPieces reads cv in every way of pieceSizes, at both ends.
func checkPieces(t *testing.T, cv conversation) {
	t.Helper()
	whole := play(cv, true, reads{})
	if len(whole) == 0 {
		t.Fatal("no spans read whole")
	}
	var fails []string
	for _, sizes := range pieceSizes {
		for _, across := range []bool{false, true} {
			for _, atClient := range []bool{true, false} {
				if diff := samePieces(cv, atClient, reads{sizes, across}); diff != "" {
					fails = append(fails, fmt.Sprintf("pieces %v (across writes %v, at client %v): %s", sizes, across, atClient, diff))
				}
			}
		}
	}
	if len(fails) > 0 {
		t.Errorf("%d of %d ways differ; the first: %s", len(fails), 4*len(pieceSizes), fails[0])
		for _, f := range fails {
			t.Log(f[:strings.IndexByte(f, 0x3a)])
		}
	}
}

// fuzzReads turns fuzz bytes into read sizes (1..64).
func fuzzReads(cuts []byte, across bool) reads {
	r := reads{across: across, sizes: []int{1}}
	if len(cuts) > 0 {
		r.sizes = r.sizes[:0]
		for _, b := range cuts {
			r.sizes = append(r.sizes, 1+int(b%64))
		}
	}
	return r
}

// --- Redis ---

func resp(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func redisConversation() conversation {
	big := strings.Repeat("v", 300)
	return conversation{}.
		req(resp("PING")).resp([]byte("+PONG\r\n")).
		req(resp("SET", "k1", big)).resp([]byte("+OK\r\n")).
		req(resp("GET", "k1")).resp(fmt.Appendf(nil, "$%d\r\n%s\r\n", len(big), big)).
		req(resp("GET", "missing")).resp([]byte("$-1\r\n")).
		req(resp("LRANGE", "list", "0", "-1")).resp([]byte("*3\r\n$1\r\na\r\n$2\r\nbb\r\n:3\r\n")).
		req(resp("INCR", "counter")).resp([]byte(":42\r\n")).
		req(resp("HGET", "k1", "f")).resp([]byte("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")).
		// Pipelined: three requests in one write, their replies in one.
		req(resp("GET", "a"), resp("GET", "bb"), resp("GET", "ccc")).
		resp([]byte("$1\r\nA\r\n$2\r\nBB\r\n$3\r\nCCC\r\n")).
		req(resp("HGETALL", "h")).resp([]byte("*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n*1\r\n$-1\r\n"))
}

// TestRedisInPieces: Redis requests and replies read (or written) in
// pieces of any size give the spans they give whole.
func TestRedisInPieces(t *testing.T) { checkPieces(t, redisConversation()) }

// FuzzRedisInPieces: a well-formed reply (one whole RESP value, as the
// decoder reads it whole), read in
// pieces of any sizes, answers its own request as read whole, and the
// exchange after it is answered by its own reply.
func FuzzRedisInPieces(f *testing.F) {
	f.Add([]byte("$5\r\nhello\r\n"), []byte{1}, false)
	f.Add([]byte("*2\r\n$1\r\na\r\n*1\r\n:1\r\n"), []byte{3, 0}, true)
	f.Add([]byte("-ERR unknown command\r\n"), []byte{7}, false)
	f.Add([]byte("%1\r\n+k\r\n$-1\r\n"), []byte{2, 5}, true)
	f.Fuzz(func(t *testing.T, reply, cuts []byte, across bool) {
		var got []l7.Message
		(l7.Redis{}).NewStream().Feed(reply, len(reply), true, func(m *l7.Message) { got = append(got, *m) })
		if len(got) != 1 || got[0].Length != int64(len(reply)) || got[0].Truncated {
			return // not one whole RESP value
		}
		cv := conversation{}.req(resp("GET", "a")).resp(reply).req(resp("GET", "b")).resp([]byte("$1\r\nB\r\n"))
		if diff := samePieces(cv, true, fuzzReads(cuts, across)); diff != "" {
			t.Fatal(diff)
		}
	})
}

// --- PostgreSQL ---

func pgMsg(typ byte, body ...[]byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	for _, x := range body {
		b = append(b, x...)
	}
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

func cstr(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = append(append(b, s...), 0)
	}
	return b
}

func pgConv() conversation {
	startup := binary.BigEndian.AppendUint32(nil, 0)
	startup = binary.BigEndian.AppendUint32(startup, 3<<16)
	startup = append(startup, cstr("user", "postgres", "database", "shop", "")...)
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	ready := pgMsg('Z', []byte("I"))
	row := func(v string) []byte {
		return pgMsg('D', []byte{0, 1}, binary.BigEndian.AppendUint32(nil, uint32(len(v))), []byte(v))
	}
	return conversation{}.
		req(startup).
		resp(pgMsg('R', []byte{0, 0, 0, 0}), pgMsg('S', cstr("server_version", "15.8")), pgMsg('K', make([]byte, 8)), ready).
		req(pgMsg('Q', cstr("SELECT title FROM books WHERE id > 1"))).
		resp(pgMsg('T', []byte{0, 1}), row("Dune"), row("Emma"), row(strings.Repeat("x", 200)), pgMsg('C', cstr("SELECT 3")), ready).
		req(pgMsg('Q', cstr("UPDATE books SET title = 'Ulysses' WHERE id = 3"))).
		resp(pgMsg('C', cstr("UPDATE 1")), ready).
		req(pgMsg('P', cstr("s1", "SELECT title FROM books WHERE id = $1", ""), []byte{0, 0}), pgMsg('B', cstr("", "s1"), make([]byte, 6)),
			pgMsg('D', []byte("P\x00")), pgMsg('E', []byte{0, 0, 0, 0, 0}), pgMsg('S')).
		resp(pgMsg('1'), pgMsg('2'), pgMsg('T', []byte{0, 1}), row("Dune"), pgMsg('C', cstr("SELECT 1")), ready).
		req(pgMsg('Q', cstr("SELECT nope FROM missing"))).
		resp(pgMsg('E', []byte("SERROR\x00C42P01\x00Mrelation \"missing\" does not exist\x00\x00")), ready).
		req(pgMsg('Q', cstr("SELECT 2"))).
		resp(pgMsg('T', []byte{0, 1}), row("2"), pgMsg('C', cstr("SELECT 1")), ready)
}

// TestPostgreSQLInPieces: a PostgreSQL session (startup, simple and
// extended queries, an error) read in pieces gives the spans it gives
// read whole.
func TestPostgreSQLInPieces(t *testing.T) { checkPieces(t, pgConv()) }

// FuzzPostgreSQLInPieces: the session in pieces of any sizes, with a query
// of any text, gives the spans it gives whole.
func FuzzPostgreSQLInPieces(f *testing.F) {
	f.Add("SELECT 1", []byte{1}, false)
	f.Add("INSERT INTO t VALUES ('Q\x00\x00\x00\x05')", []byte{4, 1, 9}, true)
	f.Fuzz(func(t *testing.T, q string, cuts []byte, across bool) {
		if strings.IndexByte(q, 0) >= 0 || len(q) > 4096 {
			return
		}
		cv := append(pgConv(), pgConv()[2:4]...)
		cv[len(cv)-2] = write{true, pgMsg('Q', cstr(q))}
		if diff := samePieces(cv, true, fuzzReads(cuts, across)); diff != "" {
			t.Fatal(diff)
		}
	})
}

// --- MySQL ---

func myPkt(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

func myConv() conversation {
	greeting := myPkt(0, append(append([]byte{10}, cstr("11.4.5-MariaDB")...),
		5, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0xfe, 0xf7, 0x2d, 0x02, 0x00, 0xff, 0x81, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)...)
	hs := []byte{0x0e, 0xa2, 0xaf, 0x00, 0, 0, 0, 1, 0x2d}
	hs = append(hs, make([]byte, 19)...)
	hs = append(hs, 7, 0, 0, 0)
	hs = append(hs, cstr("root")...)
	hs = append(hs, 0)
	hs = append(hs, cstr("shop", "mysql_native_password")...)
	def := myPkt(2, append([]byte{3, 'd', 'e', 'f'}, make([]byte, 20)...)...)
	eof := func(seq byte) []byte { return myPkt(seq, 0xfe, 0, 0, 2, 0) }
	q := func(text string) []byte { return myPkt(0, append([]byte{3}, text...)...) }
	ok := func(rows byte) []byte { return myPkt(1, 0, rows, 0, 2, 0, 0, 0) }
	return conversation{}.
		resp(greeting).req(myPkt(1, hs...)).resp(myPkt(2, 0, 0, 0, 2, 0, 0, 0)).
		req(q("SELECT title FROM books WHERE id > 1")).
		resp(myPkt(1, 1), def, eof(3), myPkt(4, 4, 'D', 'u', 'n', 'e'), myPkt(5, append([]byte{250}, strings.Repeat("e", 250)...)...), eof(6)).
		req(q("INSERT INTO books VALUES (1, 'Hamlet'), (2, 'Dune')")).resp(ok(2)).
		req(q("SELECT nope FROM missing")).
		resp(myPkt(1, append([]byte{0xff, 0x7a, 0x04, '#', '4', '2', 'S', '0', '2'}, "Table 'shop.missing' doesn't exist"...)...)).
		req(q("USE archive")).resp(ok(0)).
		req(myPkt(0, 14)).resp(ok(0)). // COM_PING
		req(q("DELETE FROM books")).resp(ok(7))
}

// TestMySQLInPieces: a MySQL session (greeting, login, queries, an error)
// read in pieces gives the spans it gives read whole.
func TestMySQLInPieces(t *testing.T) { checkPieces(t, myConv()) }

// FuzzMySQLInPieces: the session in pieces of any sizes, with a query of
// any text, gives the spans it gives whole.
func FuzzMySQLInPieces(f *testing.F) {
	f.Add("SELECT 1", []byte{1}, false)
	f.Add("SELECT '\x05\x00\x00\x00\x03'", []byte{3, 250}, true)
	f.Fuzz(func(t *testing.T, q string, cuts []byte, across bool) {
		if len(q) > 4096 {
			return
		}
		cv := myConv()
		cv[len(cv)-2] = write{true, myPkt(0, append([]byte{3}, q...)...)}
		if diff := samePieces(cv, true, fuzzReads(cuts, across)); diff != "" {
			t.Fatal(diff)
		}
	})
}

// --- Kafka ---

func kafkaConv(topic string) conversation {
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.Version = 3
	prod := func(v int16) (*kmsg.ProduceRequest, *kmsg.ProduceResponse) {
		p := kmsg.NewPtrProduceRequest()
		p.Version, p.Acks = v, -1
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = topic
		p.Topics = append(p.Topics, pt)
		r := kmsg.NewPtrProduceResponse()
		r.Version = v
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.ErrorCode = 6
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return p, r
	}
	p9, r9 := prod(9)
	p7, r7 := prod(7)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fetch.Topics = append(fetch.Topics, ft)
	fetchr := kmsg.NewPtrFetchResponse()
	fetchr.Version = 11
	return conversation{}.
		req(kafkawire.Request(av, 0)).resp(kafkawire.Response(avr, 0)).
		req(kafkawire.Request(p9, 1)).resp(kafkawire.Response(r9, 1)).
		// Pipelined, answered in order in one write.
		req(kafkawire.Request(fetch, 2), kafkawire.Request(p7, 3)).resp(kafkawire.Response(fetchr, 2), kafkawire.Response(r7, 3))
}

// TestKafkaInPieces: a Kafka session read in pieces gives the spans it
// gives read whole.
func TestKafkaInPieces(t *testing.T) { checkPieces(t, kafkaConv("orders")) }

// FuzzKafkaInPieces: the session in pieces of any sizes, with a topic of
// any name, gives the spans it gives whole.
func FuzzKafkaInPieces(f *testing.F) {
	f.Add("orders", []byte{1}, false)
	f.Add("t", []byte{4, 2}, true)
	f.Fuzz(func(t *testing.T, topic string, cuts []byte, across bool) {
		if len(topic) > 255 {
			return
		}
		if diff := samePieces(kafkaConv(topic), true, fuzzReads(cuts, across)); diff != "" {
			t.Fatal(diff)
		}
	})
}

// --- HTTP/2, gRPC ---

func h2Conv(path string) conversation {
	var cb, sb, hb bytes.Buffer
	cf, sf := http2.NewFramer(&cb, nil), http2.NewFramer(&sb, nil)
	ce, se := hpack.NewEncoder(&hb), hpack.NewEncoder(&hb)
	block := func(enc *hpack.Encoder, kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	take := func(b *bytes.Buffer) []byte {
		out := append([]byte(nil), b.Bytes()...)
		b.Reset()
		return out
	}
	var cv conversation
	cb.WriteString(l7.H2Preface)
	cf.WriteSettings()
	cv = cv.req(take(&cb))
	sf.WriteSettings()
	sf.WriteSettingsAck()
	cv = cv.resp(take(&sb))
	cf.WriteSettingsAck()
	call := func(id uint32, method string, code int) {
		cf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(ce,
			":method", "POST", ":scheme", "http", ":path", method, ":authority", "reviews:9080",
			"content-type", "application/grpc", "x-request-id", fmt.Sprint("rid-", id))})
		cf.WriteData(id, true, make([]byte, 5+int(id)))
		cv = cv.req(take(&cb))
		if code != 0 {
			sf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: block(se,
				":status", "200", "content-type", "application/grpc", "grpc-status", fmt.Sprint(code), "grpc-message", "no such thing")})
		} else {
			sf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, BlockFragment: block(se,
				":status", "200", "content-type", "application/grpc", "x-request-id", fmt.Sprint("rid-", id))})
			sf.WriteData(id, false, make([]byte, 5+100*int(id)))
			sf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: block(se, "grpc-status", "0")})
		}
		cv = cv.resp(take(&sb))
	}
	call(1, path, 0)
	call(3, "/bookinfo.Reviews/Get", 0)
	call(5, "/bookinfo.Reviews/Missing", 5)
	call(7, path, 0)
	return cv
}

// TestHTTP2InPieces: a gRPC connection read in pieces gives the spans it
// gives read whole.
func TestHTTP2InPieces(t *testing.T) { checkPieces(t, h2Conv("/bookinfo.Reviews/List")) }

// FuzzHTTP2InPieces: the connection in pieces of any sizes, with a path
// of any text, gives the spans it gives whole.
func FuzzHTTP2InPieces(f *testing.F) {
	f.Add("/a", []byte{1}, false)
	f.Add("/bookinfo.Reviews/List", []byte{9, 0, 3}, true)
	f.Fuzz(func(t *testing.T, path string, cuts []byte, across bool) {
		if len(path) > 1024 {
			return
		}
		if diff := samePieces(h2Conv(path), true, fuzzReads(cuts, across)); diff != "" {
			t.Fatal(diff)
		}
	})
}

// --- HTTP/1 (the first fix), for the same property ---

func http1Conv() conversation {
	return conversation{}.
		req([]byte("GET /a HTTP/1.1\r\nHost: h\r\nX-Request-ID: qa\r\n\r\n")).
		resp([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-ID: ra\r\n\r\nhello")).
		req([]byte("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")).
		resp([]byte("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")).
		req([]byte("GET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n\r\n")).
		resp([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nx"))
}

// TestHTTP1InPieces: HTTP/1 under the same property.
func TestHTTP1InPieces(t *testing.T) { checkPieces(t, http1Conv()) }

// BenchmarkSessionRedis: a Redis command and its reply, one chunk each,
// through a session (the RESP stream decoder's cost on the hot path).
func BenchmarkSessionRedis(b *testing.B) {
	var n int
	c := NewConn(ConnMeta{Node: "n"}, Config{}, func(*span.Span) { n++ })
	c.SetRole(RoleClient)
	req, rep := resp("SET", "user:100", "alice"), []byte("+OK\r\n")
	for i := 0; i < b.N; i++ {
		c.Feed(Chunk{Dir: Egress, StartNs: int64(i), EndNs: int64(i), Data: req, Len: len(req)})
		c.Feed(Chunk{Dir: Ingress, StartNs: int64(i), EndNs: int64(i), Data: rep, Len: len(rep)})
	}
	if n < b.N-1 {
		b.Fatalf("%d spans of %d exchanges", n, b.N)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "exchanges/s")
}

// TestFirstBytesHeld: a connection's first bytes are held until they tell
// the protocol, but a piece after a gap in the TCP sequence is not joined
// to them, and a chunk that starts a message is not joined to held bytes
// that start none: the command after them is read on its own.
func TestFirstBytesHeld(t *testing.T) {
	var r rec
	c := newConn(&r)
	c.SetRole(RoleClient)
	c.Feed(chunk(Egress, 100, 1000, "*2\r\n$3\r\nGE"))
	c.Feed(chunk(Egress, 110, 1020, "T\r\n$1\r\nk\r\n"))           // 1012..1020 lost
	c.Feed(chunk(Egress, 120, 1030, string(resp("GET", "other")))) // follows the held piece
	c.Feed(chunk(Ingress, 200, 5000, "$2\r\nok\r\n"))
	c.Close(300)
	if len(r.spans) != 1 || c.Dropped != 2 {
		t.Fatalf("%d spans, %d dropped; want 1, 2: %s", len(r.spans), c.Dropped, spansText(r.spans))
	}
	if s := r.spans[0]; s.RequestType != "GET" || s.RequestResource != "other" || s.ReqTCPSeq != 1030 || s.ResponseBytes != 8 || s.StartNs != 120 {
		t.Errorf("span %s", spansText(r.spans))
	}
}
