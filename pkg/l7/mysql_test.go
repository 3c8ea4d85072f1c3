package l7

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// myPkt frames a payload as a MySQL packet.
func myPkt(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

var (
	myGreeting = unhexDNS(`
		310000 00                          // 49 bytes, seq 0
		0a                                 // protocol 10
		31312e342e352d4d617269614442 00    // "11.4.5-MariaDB"
		05000000                           // thread id
		2f4a3e7b5a2c3d41 00                // auth data part 1, filler
		fef7                               // capabilities (low): includes CONNECT_WITH_DB, SECURE_CONNECTION
		2d 0200                            // charset, status
		ff81                               // capabilities (high): includes PLUGIN_AUTH_LENENC
		15 00000000000000 0000000000       // auth data length, reserved
	`)
	myHandshake = unhexDNS(`
		410000 01                          // 65 bytes, seq 1
		0ea2af00                           // capabilities: CONNECT_WITH_DB (0x08), SECURE_CONNECTION, PLUGIN_AUTH_LENENC; no DEPRECATE_EOF
		00000001 2d                        // max packet, charset
		00000000000000000000000000000000000000 07000000 // filler (19), MariaDB extended capabilities
		726f6f7400                         // user "root"
		00                                 // auth data, lenenc length 0
		73686f7000                         // database "shop"
		6d7973716c5f6e61746976655f70617373776f726400 // auth plugin
	`)
	myAuthOK = myPkt(2, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00)
	myQ      = unhexDNS(`
		250000 00                          // 37 bytes, seq 0
		03                                 // COM_QUERY
		53454c454354207469746c652046524f4d20626f6f6b73205748455245206964203e2031 // "SELECT title FROM books WHERE id > 1"
	`)
	myResultSet = cat(
		myPkt(1, 0x01), // one column
		myPkt(2, append([]byte{3, 'd', 'e', 'f'}, make([]byte, 20)...)...), // column definition (abridged)
		myPkt(3, 0xfe, 0x00, 0x00, 0x22, 0x00),                             // EOF
		myPkt(4, 4, 'D', 'u', 'n', 'e'),                                    // row
		myPkt(5, 4, 'E', 'm', 'm', 'a'),                                    // row
		myPkt(6, 0xfe, 0x00, 0x00, 0x22, 0x00),                             // EOF
	)
	myErr = unhexDNS(`
		2b0000 01                          // 43 bytes, seq 1
		ff                                 // ERR
		7a04                               // error 1146
		23 34325330 32                     // '#', SQLSTATE 42S02
		5461626c65202773686f702e6d697373696e672720646f65736e2774206578697374 // message
	`)
)

// myConversation is a session as exchanges: the greeting, the handshake
// and its OK, then each command and its response.
func myConversation() [][2][]byte {
	def := myPkt(2, append([]byte{3, 'd', 'e', 'f'}, make([]byte, 20)...)...) // a column or parameter definition (abridged)
	eof := func(seq byte) []byte { return myPkt(seq, 0xfe, 0, 0, 2, 0) }
	q := func(text string) []byte { return myPkt(0, append([]byte{myQuery}, text...)...) }
	return [][2][]byte{
		{nil, myGreeting},
		{myHandshake, myAuthOK},
		{myQ, myResultSet},
		{q("INSERT INTO books VALUES (1, 'Hamlet'), (2, 'Dune')"), myPkt(1, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00)}, // OK, 2 affected
		{myPkt(0, append([]byte{myStmtPrepare}, "SELECT title FROM books WHERE id = ?"...)...),
			cat(myPkt(1, 0x00, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0), def, eof(3), def, eof(5))}, // statement 7: 1 column, 1 parameter
		{myPkt(0, myStmtExecute, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 2, 0, 0, 0),
			cat(myPkt(1, 0x01), def, eof(3), myPkt(4, 0x00, 0x00, 4, 'D', 'u', 'n', 'e'), eof(5))}, // binary row
		{cat(myPkt(0, myStmtClose, 7, 0, 0, 0), q("SELECT nope FROM missing")), myErr}, // CLOSE has no response
		{q("USE archive"), myPkt(1, 0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00)},
		{myPkt(0, myPing), myPkt(1, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00)},
		{myPkt(0, myQuit), nil},
	}
}

func sides(conv [][2][]byte) (req, resp []byte) {
	for _, ex := range conv {
		req, resp = append(req, ex[0]...), append(resp, ex[1]...)
	}
	return req, resp
}

type myWant struct {
	method, path, db string
	status           span.ResponseStatus
	code             int
	rows             int64
}

var myWants = []myWant{
	{"SELECT", "SELECT title FROM books WHERE id > ?", "shop", span.StatusOK, 0, 2},
	{"INSERT", "INSERT INTO books VALUES (?, ?), (?, ?)", "shop", span.StatusOK, 0, 2},
	{"PREPARE SELECT", "SELECT title FROM books WHERE id = ?", "shop", span.StatusOK, 0, 0},
	{"EXECUTE SELECT", "SELECT title FROM books WHERE id = ?", "shop", span.StatusOK, 0, 1},
	{"SELECT", "SELECT nope FROM missing", "shop", span.StatusClientError, 1146, 0},
	{"USE", "USE archive", "shop", span.StatusOK, 0, 0},
	{"PING", "", "archive", span.StatusOK, 0, 0},
}

// feedBoth feeds the whole request side then the response side, each cut
// at one point; it returns requests and responses in emit order.
func feedBoth(st Stream, req, resp []byte, at int) (reqs, resps []Message) {
	emit := func(m *Message) {
		if m.Response {
			resps = append(resps, *m)
		} else {
			reqs = append(reqs, *m)
		}
	}
	feedSplit(st, req, false, at%max(len(req), 1), emit)
	feedSplit(st, resp, true, at%max(len(resp), 1), emit)
	return reqs, resps
}

func TestMySQLConversation(t *testing.T) {
	conv := myConversation()
	for at := 0; at < 64; at++ {
		st := MySQL{}.NewStream()
		var reqs, resps []Message
		emit := func(m *Message) {
			if m.Response {
				resps = append(resps, *m)
			} else {
				reqs = append(reqs, *m)
			}
		}
		for _, ex := range conv {
			for i, b := range ex {
				if len(b) > 0 {
					feedSplit(st, b, i == 1, at%len(b), emit)
				}
			}
		}
		if len(reqs) != len(myWants) || len(resps) != len(myWants) {
			t.Fatalf("split %d: %d requests, %d responses: %+v %+v", at, len(reqs), len(resps), reqs, resps)
		}
		for i, w := range myWants {
			q, r := reqs[i], resps[i]
			if q.Method != w.method || q.Path != w.path || q.Database != w.db || r.RespStatus != w.status || r.Status != w.code || r.Rows != w.rows {
				t.Errorf("split %d, %d: %q %q in %q → %s %d rows %d (%q), want %+v", at, i, q.Method, q.Path, q.Database,
					r.RespStatus, r.Status, r.Rows, r.Reason, w)
			}
		}
		if reqs[0].Offset != int64(len(myHandshake)) || reqs[0].Length != int64(len(myQ)) ||
			resps[0].Offset != int64(len(myGreeting)+len(myAuthOK)) || resps[0].Length != int64(len(myResultSet)) {
			t.Errorf("offsets: request %d+%d, response %d+%d", reqs[0].Offset, reqs[0].Length, resps[0].Offset, resps[0].Length)
		}
		if resps[4].Reason != "42S02: Table 'shop.missing' doesn't exist" {
			t.Errorf("reason %q", resps[4].Reason)
		}
	}
}

func TestMySQLTruncatedAndResync(t *testing.T) {
	big := myPkt(0, append([]byte{myQuery}, []byte("INSERT INTO blobs VALUES ('"+string(repeatByte('x', 5000))+"')")...)...)
	st := MySQL{}.NewStream()
	var reqs, resps []Message
	emit := func(m *Message) {
		if m.Response {
			resps = append(resps, *m)
		} else {
			reqs = append(reqs, *m)
		}
	}
	st.Feed(big[:1024], len(big), false, emit) // the capture kept 1 KiB
	st.Feed(myQ, len(myQ), false, emit)
	ok := myPkt(1, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00)
	st.Feed(ok, len(ok), true, emit)
	st.Feed(myResultSet, len(myResultSet), true, emit)
	if len(reqs) != 2 || !reqs[0].Truncated || reqs[0].Method != "INSERT" || reqs[1].Path != "SELECT title FROM books WHERE id > ?" {
		t.Fatalf("requests %+v", reqs)
	}
	if len(resps) != 2 || resps[0].Rows != 1 || resps[1].Rows != 2 {
		t.Fatalf("responses %+v", resps)
	}
	// A lost packet header: the client side waits for the next command.
	st.Feed(myQ[:3], len(myQ)+10, false, emit)
	st.Feed([]byte("garbage that is not a packet"), 28, false, emit)
	st.Feed(myQ, len(myQ), false, emit)
	if len(reqs) != 3 || reqs[2].Offset != int64(len(big)+2*len(myQ)+10+28) {
		t.Fatalf("after resync: %+v", reqs[2:])
	}
}

func repeatByte(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestMySQLDetect(t *testing.T) {
	for name, tc := range map[string]struct {
		b    []byte
		want bool
	}{
		"greeting":  {myGreeting, true},
		"query":     {myQ, true},
		"ping":      {myPkt(0, myPing), true},
		"handshake": {myHandshake, false},
		"response":  {myResultSet, false},
		"http1":     {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		"http2":     {[]byte(H2Preface), false},
		"tls":       {[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), false},
		"redis":     {[]byte("*1\r\n$4\r\nPING\r\n"), false},
		"pg query":  {[]byte("Q\x00\x00\x00\x0dselect 1\x00"), false},
		"pg start":  {[]byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"), false},
		"kafka":     {[]byte("\x00\x00\x00\x1f\x00\x03\x00\x09\x00\x00\x00\x01\x00\x05kgo-1"), false},
		"dns":       {dnsQuery, false},
	} {
		if got := (MySQL{}).Detect(tc.b); got != tc.want {
			t.Errorf("%s: Detect %v", name, got)
		}
	}
	for _, p := range Parsers {
		if _, ok := p.(MySQL); !ok && p.Detect(myQ) {
			t.Errorf("%T takes a MySQL query", p)
		}
	}
	var m Message
	if err := (MySQL{}).Parse(myGreeting, &m); err != nil || !m.Response {
		t.Errorf("greeting: %v %+v", err, m)
	}
	if err := (MySQL{}).Parse(myQ, &m); err != nil || m.Response || m.Method != "SELECT" {
		t.Errorf("query: %v %+v", err, m)
	}
}

func FuzzMySQL(f *testing.F) {
	req, resp := sides(myConversation())
	f.Add(req, resp, uint16(100))
	f.Add(myQ, myErr, uint16(5))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint16) {
		fuzzStream(t, MySQL{}.NewStream(), req, resp, int(split))
	})
}

// fuzzStream feeds both sides cut at split, with bytes lost at the end of
// each, and checks every message lies within what was fed.
func fuzzStream(t *testing.T, st Stream, req, resp []byte, at int) {
	var fed [2]int64
	emit := func(m *Message) {
		i := 0
		if m.Response {
			i = 1
		}
		if m.Offset < 0 || m.Length < 0 || m.Offset+m.Length > fed[i] || len(m.Path) > MaxPath {
			t.Fatalf("message %+v beyond the %d bytes fed", m, fed[i])
		}
	}
	for i, b := range [][]byte{req, resp} {
		a := min(at, len(b))
		fed[i] += int64(a)
		st.Feed(b[:a], a, i == 1, emit)
		fed[i] += int64(len(b) - a + 7)
		st.Feed(b[a:], len(b)-a+7, i == 1, emit)
	}
}

func BenchmarkMySQLStream(b *testing.B) {
	ok := myPkt(1, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00)
	st := MySQL{}.NewStream()
	n := 0
	emit := func(*Message) { n++ }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st.Feed(myQ, len(myQ), false, emit)
		st.Feed(myResultSet, len(myResultSet), true, emit)
		st.Feed(myQ, len(myQ), false, emit)
		st.Feed(ok, len(ok), true, emit)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
