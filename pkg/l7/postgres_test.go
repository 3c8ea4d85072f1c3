package l7

import (
	"encoding/binary"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// pgMsg frames a typed PostgreSQL message.
func pgMsg(typ byte, body ...byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

func cstr(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = append(append(b, s...), 0)
	}
	return b
}

var (
	pgSSL      = unhexDNS(`00000008 04d2162f`) // length 8, SSLRequest code 80877103
	pgStartMsg = unhexDNS(`
		00000025                 // length 37
		00030000                 // protocol 3.0
		7573657200 706f73746772657300 // "user" "postgres"
		6461746162617365 00 73686f7000 // "database" "shop"
		00                       // end of parameters
	`)
	pgQuery = unhexDNS(`
		51 00000029              // 'Q', length 41
		53454c454354207469746c652046524f4d20626f6f6b73205748455245206964203e2031 00 // "SELECT title FROM books WHERE id > 1"
	`)
	pgErrResp = unhexDNS(`
		45 0000003a              // 'E', length 58
		53 4552524f5200          // severity ERROR
		43 343250303100          // SQLSTATE 42P01
		4d 72656c6174696f6e20226d697373696e672220646f6573206e6f7420657869737400 // message
		50 313900                // position 19
		00                       // end of fields
		5a 00000005 49           // ReadyForQuery, idle
	`)
)

// pgConversation is a psql-like session and an extended-protocol client's,
// as exchanges.
func pgConversation() [][2][]byte {
	ready := pgMsg('Z', 'I')
	return [][2][]byte{
		{pgSSL, []byte("N")},
		{pgStartMsg, cat(pgMsg('R', 0, 0, 0, 0), pgMsg('S', cstr("server_version", "15.8")...), pgMsg('K', 0, 0, 0, 1, 0, 0, 0, 2), ready)},
		{pgQuery, cat(pgMsg('T', 0, 1), pgMsg('D', 0, 1, 0, 0, 0, 4, 'D', 'u', 'n', 'e'), pgMsg('D', 0, 1, 0, 0, 0, 4, 'E', 'm', 'm', 'a'),
			pgMsg('C', cstr("SELECT 2")...), ready)},
		{pgMsg('Q', cstr("UPDATE books SET title = 'Ulysses' WHERE id = 3")...), cat(pgMsg('C', cstr("UPDATE 1")...), ready)},
		{cat(pgMsg('P', cstr("s1", "SELECT title FROM books WHERE id = $1", "")...), pgMsg('B', cstr("", "s1")...),
			pgMsg('D', 'P', 0), pgMsg('E', 0, 0, 0, 0, 0), pgMsg('S')),
			cat(pgMsg('1'), pgMsg('2'), pgMsg('T', 0, 1), pgMsg('D', 0, 1, 0, 0, 0, 4, 'D', 'u', 'n', 'e'), pgMsg('C', cstr("SELECT 1")...), ready)},
		{cat(pgMsg('B', cstr("", "s1")...), pgMsg('E', 0, 0, 0, 0, 0), pgMsg('S')), // the named statement again
			cat(pgMsg('2'), pgMsg('C', cstr("SELECT 0")...), ready)},
		{pgMsg('Q', cstr("SELECT nope FROM missing")...), pgErrResp},
		{pgMsg('Q', cstr("SELECT pg_terminate_backend(1)")...), cat(pgMsg('E', cat([]byte{'C'}, cstr("57P01"), []byte{'M'}, cstr("terminating connection"), []byte{0})...), ready)},
		{pgMsg('X'), nil},
	}
}

func TestPostgreSQLConversation(t *testing.T) {
	wants := []struct {
		method, path string
		status       span.ResponseStatus
		rows         int64
		reason       string
	}{
		{"SELECT", "SELECT title FROM books WHERE id > ?", span.StatusOK, 2, ""},
		{"UPDATE", "UPDATE books SET title = ? WHERE id = ?", span.StatusOK, 1, ""},
		{"SELECT", "SELECT title FROM books WHERE id = $1", span.StatusOK, 1, ""},
		{"SELECT", "SELECT title FROM books WHERE id = $1", span.StatusOK, 0, ""},
		{"SELECT", "SELECT nope FROM missing", span.StatusClientError, 0, `42P01: relation "missing" does not exist`},
		{"SELECT", "SELECT pg_terminate_backend(?)", span.StatusServerError, 0, "57P01: terminating connection"},
	}
	conv := pgConversation()
	for at := 0; at < 48; at++ {
		st := PostgreSQL{}.NewStream()
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
		if len(reqs) != len(wants) || len(resps) != len(wants) {
			t.Fatalf("split %d: %d requests, %d responses: %+v %+v", at, len(reqs), len(resps), reqs, resps)
		}
		for i, w := range wants {
			q, r := reqs[i], resps[i]
			if q.Method != w.method || q.Path != w.path || q.Database != "shop" || r.RespStatus != w.status || r.Rows != w.rows || r.Reason != w.reason {
				t.Errorf("split %d, %d: %q %q in %q → %s rows %d %q; want %+v", at, i, q.Method, q.Path, q.Database, r.RespStatus, r.Rows, r.Reason, w)
			}
		}
		if reqs[0].Offset != int64(len(pgSSL)+len(pgStartMsg)) || reqs[0].Length != int64(len(pgQuery)) {
			t.Errorf("split %d: request at %d+%d", at, reqs[0].Offset, reqs[0].Length)
		}
	}
}

func TestPostgreSQLTruncated(t *testing.T) {
	st := PostgreSQL{}.NewStream()
	var msgs []Message
	emit := func(m *Message) { msgs = append(msgs, *m) }
	st.Feed(pgStartMsg, len(pgStartMsg), false, emit)
	st.Feed(pgMsg('Z', 'I'), 6, true, emit)
	big := pgMsg('Q', cstr("INSERT INTO blobs VALUES ('"+string(repeatByte('x', 9000))+"')")...)
	st.Feed(big[:1024], len(big), false, emit) // the capture kept 1 KiB
	rows := cat(pgMsg('D', repeatByte('y', 20000)...), pgMsg('C', cstr("INSERT 0 1")...), pgMsg('Z', 'I'))
	st.Feed(rows[:1024], 20005, true, emit) // the big row, mostly lost
	st.Feed(rows[20005:], len(rows)-20005, true, emit)
	st.Feed(pgQuery, len(pgQuery), false, emit)
	if len(msgs) != 3 || !msgs[0].Truncated || msgs[0].Method != "INSERT" || !msgs[1].Truncated || msgs[1].Rows != 1 ||
		msgs[2].Path != "SELECT title FROM books WHERE id > ?" || msgs[2].Offset != int64(len(pgStartMsg)+len(big)) {
		t.Fatalf("%+v", msgs)
	}
	// A lost header: the client side waits for a message start.
	st.Feed(pgQuery[:2], len(pgQuery)+3, false, emit)
	st.Feed(pgQuery, len(pgQuery), false, emit)
	if len(msgs) != 4 || msgs[3].Path != "SELECT title FROM books WHERE id > ?" {
		t.Fatalf("after resync: %+v", msgs[3:])
	}
}

func TestPostgreSQLDetect(t *testing.T) {
	for name, tc := range map[string]struct {
		b    []byte
		want bool
	}{
		"startup":           {pgStartMsg, true},
		"ssl request":       {pgSSL, true},
		"query":             {pgQuery, true},
		"parse":             {pgMsg('P', cstr("", "SELECT 1", "")...), true},
		"auth ok":           {pgMsg('R', 0, 0, 0, 0), true},
		"ready":             {pgMsg('Z', 'I'), true},
		"http1":             {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		"http2":             {[]byte(H2Preface), false},
		"tls":               {[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), false},
		"redis":             {[]byte("*1\r\n$4\r\nPING\r\n"), false},
		"mysql":             {myQ, false},
		"kafka metadata v0": {[]byte("\x00\x00\x00\x12\x00\x03\x00\x00\x00\x00\x00\x01\x00\x05kgo-1\x00\x00\x00\x00"), false},
		"dns":               {dnsQuery, false},
	} {
		if got := (PostgreSQL{}).Detect(tc.b); got != tc.want {
			t.Errorf("%s: Detect %v", name, got)
		}
	}
	for _, p := range Parsers {
		if _, ok := p.(PostgreSQL); !ok && (p.Detect(pgQuery) || p.Detect(pgStartMsg)) {
			t.Errorf("%T takes PostgreSQL", p)
		}
	}
	var m Message
	if err := (PostgreSQL{}).Parse(pgQuery, &m); err != nil || m.Response || m.Method != "SELECT" {
		t.Errorf("query: %v %+v", err, m)
	}
	if err := (PostgreSQL{}).Parse(pgMsg('R', 0, 0, 0, 0), &m); err != nil || !m.Response {
		t.Errorf("auth: %v %+v", err, m)
	}
}

func FuzzPostgreSQL(f *testing.F) {
	req, resp := sides(pgConversation())
	f.Add(req, resp, uint16(50))
	f.Add(pgQuery, pgErrResp, uint16(7))
	f.Fuzz(func(t *testing.T, req, resp []byte, split uint16) {
		fuzzStream(t, PostgreSQL{}.NewStream(), req, resp, int(split))
	})
}

func BenchmarkPostgreSQLStream(b *testing.B) {
	resp := cat(pgMsg('T', 0, 1), pgMsg('D', 0, 1, 0, 0, 0, 4, 'D', 'u', 'n', 'e'), pgMsg('C', cstr("SELECT 1")...), pgMsg('Z', 'I'))
	st := PostgreSQL{}.NewStream()
	st.Feed(pgStartMsg, len(pgStartMsg), false, func(*Message) {})
	n := 0
	emit := func(*Message) { n++ }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st.Feed(pgQuery, len(pgQuery), false, emit)
		st.Feed(resp, len(resp), true, emit)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
