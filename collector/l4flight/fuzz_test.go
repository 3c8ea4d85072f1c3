package l4flight

import (
	"encoding/binary"
	"testing"

	"github.com/zerotrace/zerotrace/collector/session"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// FuzzFlow feeds chunks made of the input (per chunk: a direction byte, a
// 2-byte length, up to 8 captured bytes): no panic, and the spans' bytes
// never exceed what was fed in their directions.
func FuzzFlow(f *testing.F) {
	for _, cv := range conversations {
		var b []byte
		for _, ch := range cv.chunks {
			head := []byte(ch.head)
			b = append(b, byte(ch.dir), byte(ch.n>>8), byte(ch.n), byte(len(head)/2))
			for i := 0; i+1 < len(head) && i < 16; i += 2 {
				var v byte
				for _, x := range head[i : i+2] {
					v <<= 4
					switch {
					case x >= '0' && x <= '9':
						v |= x - '0'
					case x >= 'a' && x <= 'f':
						v |= x - 'a' + 10
					}
				}
				b = append(b, v)
			}
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fed [2]int64
		var got [2]int64
		fl := NewFlow(session.ConnMeta{}, Config{}, func(s *span.Span) {
			got[0] += s.RequestBytes
			got[1] += s.ResponseBytes
		})
		seq := [2]uint32{1000, 90000}
		for len(b) >= 4 {
			d := session.Dir(b[0] & 1)
			n := int(binary.BigEndian.Uint16(b[1:3]))
			k := min(int(b[3]&7), len(b)-4)
			data := b[4 : 4+k]
			b = b[4+k:]
			if k > n {
				n = k
			}
			fl.Feed(session.Chunk{Dir: d, TCPSeq: seq[d], Data: data, Len: n})
			seq[d] += uint32(n)
			fed[d] += int64(n)
		}
		fl.Close()
		if got[0]+got[1] > fed[0]+fed[1] {
			t.Fatalf("spans hold %d+%d bytes, %d+%d fed", got[0], got[1], fed[0], fed[1])
		}
	})
}
