package session

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestRedisValueBody: a Redis reply's value larger than a read is told to
// the capture (Config.Body) once, from the end of the chunk where it
// started to its end, as an HTTP/1 body of known length is; its reads
// arrive without payload, the reply keeps its byte count and end time, and
// the next command is read. A key (kept for the span) is never told.
func TestRedisValueBody(t *testing.T) {
	var r rec
	var told []rng
	c := toldConn(&r, ConnMeta{Node: "n", Source: span.SourceEBPF, PID: 7, ProcessName: "cli",
		LocalIP: netip.MustParseAddr("10.0.0.1"), LocalPort: 40000, RemoteIP: netip.MustParseAddr("10.0.0.2"), RemotePort: 6379}, &told)
	getBig := "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"
	c.Feed(chunk(Egress, 10, 500, getBig))
	// The reply: "$20000\r\n", 20 000 bytes, CRLF; read in 4096-byte reads,
	// the first's 1024 bytes captured, the others sent without payload.
	head := "$20000\r\n"
	total := len(head) + 20000 + 2
	first := chunk(Ingress, 20, 7000, head+string(make([]byte, 1024-len(head))))
	first.Len = 4096
	c.Feed(first)
	seq, at := uint32(7000+4096), int64(30)
	for left := total - 4096; left > 0; left -= 4096 {
		n := min(left, 4096)
		c.Feed(Chunk{Dir: Ingress, StartNs: at, EndNs: at, TCPSeq: seq, Len: n, TID: 9})
		seq, at = seq+uint32(n), at+10
	}
	// The next command, a key of 600 bytes written in two pieces: the key
	// is read (its first bytes are the span's resource), never told.
	key := strings.Repeat("k", 600)
	getKey := "*2\r\n$3\r\nGET\r\n$600\r\n" + key + "\r\n"
	c.Feed(chunk(Egress, 100, 500+uint32(len(getBig)), getKey[:100]))
	c.Feed(chunk(Egress, 101, 500+uint32(len(getBig))+100, getKey[100:]))
	c.Feed(chunk(Ingress, 110, seq, "$2\r\nok\r\n"))

	want := rng{Ingress, 7000 + 4096, 7000 + uint32(total)}
	if len(told) != 1 || told[0] != want {
		t.Errorf("ranges told %+v, want only %+v", told, want)
	}
	if len(r.spans) != 2 {
		t.Fatalf("%d spans: %+v", len(r.spans), r.spans)
	}
	big, next := r.spans[0], r.spans[1]
	if big.RequestType != "GET" || big.RequestResource != "big" || big.ResponseBytes != int64(total) ||
		big.RequestBytes != int64(len(getBig)) || big.EndNs != at-10 {
		t.Errorf("GET big: %s %s, %d/%d bytes, end %d; want %d response bytes, end %d",
			big.RequestType, big.RequestResource, big.RequestBytes, big.ResponseBytes, big.EndNs, total, at-10)
	}
	if next.RequestType != "GET" || len(next.RequestResource) < 100 || next.RequestResource[:100] != key[:100] || next.ResponseBytes != 8 {
		t.Errorf("the next GET: %s %.20q (%d bytes), response %d", next.RequestType, next.RequestResource, len(next.RequestResource), next.ResponseBytes)
	}
}
