package l7

import "testing"

// TestPostgreSQLEndPastCapture: a client reading a large row gets the
// row's tail, CommandComplete and ReadyForQuery in one read whose captured
// prefix ends inside the row. The response ends with that read (truncated,
// its length exact), and the next query's response is its own. Before,
// ReadyForQuery went unseen: the response ran into the next one's, which
// got none. With two queries pending (a pipeline) the response stays open.
func TestPostgreSQLEndPastCapture(t *testing.T) {
	q1 := pgMsg('Q', cstr("select repeat('x', 20000)")...)
	resp1 := cat(pgMsg('T', 0, 1, 'r', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0),
		pgMsg('D', append([]byte{0, 1, 0, 0, 0x4e, 0x20}, repeatByte('x', 20000)...)...),
		pgMsg('C', cstr("SELECT 1")...), pgMsg('Z', 'I'))
	q2 := pgQuery
	resp2 := cat(pgMsg('C', cstr("SELECT 0")...), pgMsg('Z', 'I'))

	for _, pipelined := range []bool{false, true} {
		st := PostgreSQL{}.NewStream()
		var msgs []Message
		emit := func(m *Message) { msgs = append(msgs, *m) }
		st.Feed(pgStartMsg, len(pgStartMsg), false, emit)
		st.Feed(pgMsg('Z', 'I'), 6, true, emit)
		st.Feed(q1, len(q1), false, emit)
		if pipelined {
			st.Feed(q2, len(q2), false, emit)
		}
		// Three reads of 16384, 2000 and the rest; 1024 bytes captured of
		// each, the middle one none (inside a told range).
		a, b := 16384, 16384+2000
		st.Feed(resp1[:1024], a, true, emit)
		st.Feed(nil, b-a, true, emit)
		st.Feed(resp1[b:b+1024], len(resp1)-b, true, emit) // CommandComplete and ReadyForQuery past the prefix
		if !pipelined {
			st.Feed(q2, len(q2), false, emit)
		}
		st.Feed(resp2, len(resp2), true, emit)
		var resps []Message
		for _, m := range msgs {
			if m.Response {
				resps = append(resps, m)
			}
		}
		if pipelined {
			// Stays open: the next response is read into it (its tag,
			// "SELECT 0", gives the rows), as before the gap rule.
			if len(resps) != 1 || resps[0].Rows != 0 {
				t.Errorf("pipelined: responses %+v, want one, run into the next", resps)
			}
			continue
		}
		if len(resps) != 2 {
			t.Fatalf("%d responses, want 2: %+v", len(resps), resps)
		}
		if r := resps[0]; r.Length != int64(len(resp1)) || !r.Truncated || r.Rows != 1 || r.Offset != 6 {
			t.Errorf("the large row's response: %d bytes at %d, truncated %v, %d rows; want %d at 6, truncated, 1",
				r.Length, r.Offset, r.Truncated, r.Rows, len(resp1))
		}
		if r := resps[1]; r.Length != int64(len(resp2)) || r.Truncated || r.Offset != int64(6+len(resp1)) {
			t.Errorf("the next response: %d bytes at %d, truncated %v; want %d at %d", r.Length, r.Offset, r.Truncated, len(resp2), 6+len(resp1))
		}
	}
}
