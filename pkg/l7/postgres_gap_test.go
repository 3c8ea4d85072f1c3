package l7

import (
	"strings"
	"testing"
)

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

// TestPostgreSQLHeadAfterGap: a client's writes of 8 192 bytes (a driver's
// buffered stream), 1 024 bytes captured of each: a short query, then a
// long one whose head begins 900 bytes into the first write, so that only
// 119 bytes of its text are captured there. Its text is kept from those
// bytes only: the second write's prefix lies 7 168 bytes further on, and
// appending it to the head spliced two distant pieces of the statement
// into one text the client never sent (the span's endpoint "select aaa…,
// bbb…" within its first 512 characters). Once the first gap has ended
// what can be kept, the rest of the message is skippable (the capture is
// told at once, not after three more writes).
func TestPostgreSQLHeadAfterGap(t *testing.T) {
	q1 := pgMsg('Q', cstr("select 1 as "+strings.Repeat("p", 900-5-13-1))...) // 900 bytes in all
	const w, captured = 8192, 1024
	lead := w - len(q1) - 5 // text bytes of q2 in the first write
	text := "select " + strings.Repeat("a", lead-7) + ", " + strings.Repeat("b", 9000) + " from t"
	q2 := pgMsg('Q', cstr(text)...)
	stream := cat(q1, q2)
	st := PostgreSQL{}.NewStream()
	var msgs []Message
	emit := func(m *Message) { msgs = append(msgs, *m) }
	st.Feed(pgStartMsg, len(pgStartMsg), false, emit)
	st.Feed(pgMsg('Z', 'I'), 6, true, emit)
	var skips []int
	for off := 0; off < len(stream); off += w {
		end := min(off+w, len(stream))
		st.Feed(stream[off:off+min(captured, end-off)], end-off, false, emit)
		skips = append(skips, st.(Skipper).Skippable(false))
	}
	done := cat(pgMsg('C', cstr("SELECT 1")...), pgMsg('Z', 'I'))
	st.Feed(cat(done, done), 2*len(done), true, emit)
	var reqs []Message
	for _, m := range msgs {
		if !m.Response {
			reqs = append(reqs, m)
		}
	}
	if len(reqs) != 2 {
		t.Fatalf("requests %+v, want 2", reqs)
	}
	if p := reqs[1].Path; strings.Contains(p, "b") || !strings.HasPrefix(p, "select aaaa") || !reqs[1].Truncated {
		t.Errorf("long query's text %.60q… (%d characters, truncated %v): want its first write's prefix only, truncated", p, len(p), reqs[1].Truncated)
	}
	// After the first write: the rest of the long query.
	if want := len(stream) - w; skips[0] != want {
		t.Errorf("skippable after the first write: %d, want %d (the rest of the long query)", skips[0], want)
	}
}
