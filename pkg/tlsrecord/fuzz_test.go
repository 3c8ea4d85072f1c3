package tlsrecord

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// encode writes a conversation in FuzzTLSRecords' input format: per
// segment a control byte (bit 0 the direction, bit 1 PSH, bits 2–3 how its
// sequence number relates to the next expected one: 0 in order, 1 that
// many bytes earlier — a retransmission —, 2 that many later — a loss —,
// the count in the next byte), a 16-bit length, the payload.
func encode(c *conv) []byte {
	var out []byte
	for _, s := range c.segs {
		ctl := byte(s.d)
		if s.push {
			ctl |= 2
		}
		out = append(out, ctl, 0, byte(len(s.b)>>8), byte(len(s.b)))
		out = append(out, s.b...)
	}
	return out
}

// feedFuzz plays an input of encode's format into a Flow and returns the
// exchanges.
func feedFuzz(b []byte, visit func(Exchange)) Stats {
	var f Flow
	next := [2]uint32{cliISN, srvISN}
	for n := int64(0); len(b) >= 4; n++ {
		ctl, delta, l := b[0], uint32(b[1]), int(b[2])<<8|int(b[3])
		b = b[4:]
		l = min(l, len(b))
		p := b[:l]
		b = b[l:]
		d := Dir(ctl & 1)
		seq := next[d]
		switch (ctl >> 2) & 3 {
		case 1:
			seq -= delta
		case 2:
			seq += delta
		}
		if end := seq + uint32(l); int32(end-next[d]) > 0 {
			next[d] = end
		}
		if ex, ok := f.Feed(d, seq, p, ctl&2 != 0, n); ok {
			visit(ex)
		}
	}
	if ex, ok := f.Flush(); ok {
		visit(ex)
	}
	return f.Stats
}

func checkFlight(t *testing.T, fl Flight, d Dir) {
	t.Helper()
	off := int64(fl.AppSeq - fl.Seq)
	if fl.Dir != d || fl.AppRecords < 1 || fl.Records < fl.AppRecords || fl.AppBytes < HeaderLen*fl.AppRecords ||
		off < 0 || off+int64(fl.AppBytes) > int64(fl.Bytes) || fl.Bytes > fl.Records*(HeaderLen+MaxBody) || fl.StartNs > fl.EndNs {
		t.Fatalf("flight %+v in direction %d", fl, d)
	}
}

func FuzzTLSRecords(f *testing.F) {
	f.Add(encode(tls12()))
	f.Add(encode(tls13()))
	f.Fuzz(func(t *testing.T, b []byte) {
		Header(b)
		IsClientHello(b)
		st := feedFuzz(b, func(ex Exchange) {
			checkFlight(t, ex.Request, ToServer)
			checkFlight(t, ex.Response, ToClient)
		})
		if st.Exchanges > st.Flights {
			t.Fatalf("%+v", st)
		}
	})
}

// TestFuzzFormat: the fuzz input format replays the conversations exactly.
func TestFuzzFormat(t *testing.T) {
	for name, c := range map[string]*conv{"TLS 1.2": tls12(), "TLS 1.3": tls13()} {
		var got []Exchange
		feedFuzz(encode(c), func(ex Exchange) { got = append(got, ex) })
		w := want12
		if name == "TLS 1.3" {
			w = want13
		}
		check(t, name, c, got, w)
	}
}

// TestWriteCorpus regenerates the committed seed corpus of FuzzTLSRecords:
// ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus ./pkg/tlsrecord/.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzTLSRecords")
	}
	t12, t13 := encode(tls12()), encode(tls13())
	retrans := encode(tls12())
	retrans = append(retrans, retrans[:30]...)
	retrans = append(retrans, 1|4, 200, 0, 20)
	retrans = append(retrans, rec(23, 15)...)
	lossy := append([]byte(nil), t13...)
	lossy = append(lossy, 2|8, 9, 0, 12)
	lossy = append(lossy, rec(23, 7)...)
	seeds := map[string][]byte{
		"seed-tls12":          t12,
		"seed-tls13-mutual":   t13,
		"seed-retransmitted":  retrans,
		"seed-loss-then-tail": lossy,
		"seed-garbage":        append([]byte{0, 0, 0, 16}, []byte("GET / HTTP/1.1\r\n")...),
		"seed-split-header":   cat([]byte{0, 0, 0, 3}, rec(23, 9)[:3], []byte{2, 0, 0, 11}, rec(23, 9)[3:], []byte{3, 0, 0, 9}, rec(23, 4)),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzTLSRecords")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkFlow: a TLS 1.2 conversation with a 16 KiB response in
// 1448-byte segments, fed as captured (bytes/s of TCP payload).
func BenchmarkFlow(b *testing.B) {
	c := tls12()
	var total int
	for _, s := range c.segs {
		total += len(s.b)
	}
	f := new(Flow)
	b.ReportAllocs()
	b.SetBytes(int64(total))
	for i := 0; i < b.N; i++ {
		*f = Flow{}
		for j, s := range c.segs {
			f.Feed(s.d, c.seqs[j], s.b, s.push, int64(j))
		}
		f.Flush()
	}
	b.ReportMetric(float64(b.N*len(c.segs))/b.Elapsed().Seconds()/1e6, "Msegments/s")
}
