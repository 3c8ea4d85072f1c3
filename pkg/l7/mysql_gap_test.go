package l7

import "testing"

// TestMySQLEndPastCapture: a client reading a large row gets the row's
// tail and the result set's last packet (EOF, or OK with
// CLIENT_DEPRECATE_EOF) in one read whose captured prefix (1024 bytes) ends
// inside the row. The response ends with that read (truncated, its length
// exact), and the next command's result set, picked up at its column count
// in the server's first chunk after the command, is its own. Before, the
// last packet went unseen: the response never ended and the next one was
// not read (both client spans timeouts). With two commands pending (a
// pipeline), or no packet of the response read yet, nothing is guessed.
func TestMySQLEndPastCapture(t *testing.T) {
	const prefix = 1024                                                       // bytes captured of each read
	def := myPkt(2, append([]byte{3, 'd', 'e', 'f'}, make([]byte, 20)...)...) // a column definition (abridged)
	query := func(text string) []byte { return myPkt(0, append([]byte{myQuery}, text...)...) }
	execute := myPkt(0, myStmtExecute, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 0x20, 0x4e, 0, 0) // statement 7, one INT parameter
	// resultSet is a result set of one column and the rows given, each
	// row's payload whole; deof: no EOF after the definitions, and an OK
	// with the EOF marker (0xfe) at the end.
	resultSet := func(deof bool, rows ...[]byte) []byte {
		b := cat(myPkt(1, 0x01), def) // column count 1, definition
		seq := byte(3)
		if !deof {
			b = cat(b, myPkt(seq, 0xfe, 0, 0, 0x22, 0)) // EOF
			seq++
		}
		for _, r := range rows {
			b = cat(b, myPkt(seq, r...))
			seq++
		}
		if deof {
			return cat(b, myPkt(seq, 0xfe, 0, 0, 0x22, 0, 0, 0)) // OK, EOF marker
		}
		return cat(b, myPkt(seq, 0xfe, 0, 0, 0x22, 0)) // EOF
	}
	textRow := func(n int) []byte { return append([]byte{0xfc, byte(n), byte(n >> 8)}, repeatByte('x', n)...) } // a lenenc string
	binRow := func(n int) []byte {
		return append([]byte{0x00, 0x00, 0xfc, byte(n), byte(n >> 8)}, repeatByte('x', n)...)
	} // header, NULL bitmap, string
	small := query("select 1")
	ok := myPkt(1, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00) // OK, 1 affected

	type read struct{ n, captured int }
	for _, tc := range []struct {
		name      string
		deof      bool
		cmd, resp []byte
		reads     []int // the response's reads: lengths (the last takes the rest)
		cmd2      []byte
		resp2     []byte
		pipelined bool
		between   []byte // server bytes between the second command and its response
		// want: the first response ended at the gap (truncated), the
		// second read as its own; else ends: the first response's
		// messages (0: none) and the second's read or not.
		gapEnd    bool
		ends      int
		second    bool
		rows2     int64
		wantTrunc bool
	}{
		{name: "text row, EOF past the prefix", resp: resultSet(false, textRow(20000)), reads: []int{16384, 2000},
			cmd2: small, resp2: resultSet(false, []byte{1, '1'}), gapEnd: true, ends: 1, second: true, rows2: 1, wantTrunc: true},
		{name: "text row, OK (deprecate EOF) past the prefix", deof: true, resp: resultSet(true, textRow(20000)), reads: []int{16384, 2000},
			cmd2: small, resp2: resultSet(true, []byte{1, '1'}), gapEnd: true, ends: 1, second: true, rows2: 1, wantTrunc: true},
		{name: "binary row (EXECUTE), EOF past the prefix", cmd: execute, resp: resultSet(false, binRow(20000)), reads: []int{16384, 2000},
			cmd2: small, resp2: resultSet(false, []byte{1, '1'}), gapEnd: true, ends: 1, second: true, rows2: 1, wantTrunc: true},
		{name: "next response an OK", resp: resultSet(false, textRow(20000)), reads: []int{16384, 2000},
			cmd2: query("delete from t where id = 1"), resp2: ok, gapEnd: true, ends: 1, second: true, rows2: 1, wantTrunc: true},
		{name: "EOF within the prefix (as before)", resp: resultSet(false, textRow(17000)), reads: []int{16384},
			cmd2: small, resp2: resultSet(false, []byte{1, '1'}), ends: 1, second: true, rows2: 1, wantTrunc: true}, // the row's bytes past the prefix
		{name: "pipelined: stays open", resp: resultSet(false, textRow(20000)), reads: []int{16384, 2000},
			cmd2: small, resp2: resultSet(false, []byte{1, '1'}), pipelined: true},
		{name: "no packet of the response read: nothing ends", resp: resultSet(false, textRow(20000)), reads: []int{0, 16384},
			cmd2: small, resp2: resultSet(false, []byte{1, '1'})},
		{name: "column count not the server's first chunk after the command: not taken", resp: resultSet(false, textRow(20000)),
			reads: []int{16384, 2000}, cmd2: small, resp2: resultSet(false, []byte{1, '1'}), between: repeatByte('x', 100),
			gapEnd: true, ends: 1, wantTrunc: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := append([]byte(nil), myHandshake...)
			if tc.deof {
				hs[7] |= 1 // capabilities bit 24: CLIENT_DEPRECATE_EOF (the greeting has it)
			}
			cmd := tc.cmd
			if cmd == nil {
				cmd = query("select repeat('x', 20000)")
			}
			st := MySQL{}.NewStream()
			var resps []Message
			emit := func(m *Message) {
				if m.Response {
					resps = append(resps, *m)
				}
			}
			st.Feed(myGreeting, len(myGreeting), true, emit)
			st.Feed(hs, len(hs), false, emit)
			st.Feed(myAuthOK, len(myAuthOK), true, emit)
			st.Feed(cmd, len(cmd), false, emit)
			if tc.pipelined {
				st.Feed(tc.cmd2, len(tc.cmd2), false, emit)
			}
			start := int64(len(myGreeting) + len(myAuthOK))
			var rs []read
			at := 0
			for _, n := range tc.reads {
				rs = append(rs, read{n, min(n, prefix)})
				at += n
			}
			rs = append(rs, read{len(tc.resp) - at, min(len(tc.resp)-at, prefix)})
			if tc.reads[0] == 0 {
				rs = rs[1:]
				rs[0].captured = 0 // the first read inside a told range: none captured
			}
			at = 0
			for _, r := range rs {
				st.Feed(tc.resp[at:at+r.captured], r.n, true, emit)
				at += r.n
			}
			if len(resps) != tc.ends {
				t.Fatalf("after the first response: %d responses, want %d: %+v", len(resps), tc.ends, resps)
			}
			if tc.ends == 1 {
				if r := resps[0]; r.Offset != start || r.Length != int64(len(tc.resp)) || r.Truncated != tc.wantTrunc || r.Rows != 1 {
					t.Errorf("the large row's response: %d bytes at %d, truncated %v, %d rows; want %d at %d, truncated %v, 1 row",
						r.Length, r.Offset, r.Truncated, r.Rows, len(tc.resp), start, tc.wantTrunc)
				}
			}
			if !tc.pipelined {
				st.Feed(tc.cmd2, len(tc.cmd2), false, emit)
			}
			if tc.between != nil {
				st.Feed(tc.between, len(tc.between), true, emit)
			}
			st.Feed(tc.resp2, len(tc.resp2), true, emit)
			switch {
			case tc.second:
				if len(resps) != 2 {
					t.Fatalf("%d responses, want 2: %+v", len(resps), resps)
				}
				if r := resps[1]; r.Offset != start+int64(len(tc.resp)) || r.Length != int64(len(tc.resp2)) || r.Truncated || r.Rows != tc.rows2 {
					t.Errorf("the next response: %d bytes at %d, truncated %v, %d rows; want %d at %d, %d rows", r.Length, r.Offset, r.Truncated,
						r.Rows, len(tc.resp2), start+int64(len(tc.resp)), tc.rows2)
				}
			case len(resps) != tc.ends:
				t.Errorf("%d responses, want %d (the next not read): %+v", len(resps), tc.ends, resps)
			}
		})
	}
}
