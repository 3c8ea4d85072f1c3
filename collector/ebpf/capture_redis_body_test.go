//go:build linux

package ebpf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// pyRedisValueClient speaks RESP to redis-server on one connection: a SET
// of a 512 KiB value written in 16 pieces 20 ms apart, a GET of it read
// with recv(16384) 20 ms apart, then a SET and a GET of a small value. It
// prints "ERR LEN CMD:KEY" per command: 1 for an error reply, the reply's
// length in bytes.
const pyRedisValueClient = `
import socket, sys, time
host, port, m = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
def reply(slow):
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(16384)
    i = buf.index(b"\r\n")
    end = i + 2
    if buf[:1] == b"$":
        end += int(buf[1:i]) + 2
    while len(buf) < end:
        if slow:
            time.sleep(0.02)
        buf += s.recv(16384)
    return buf[:1] == b"-", len(buf)
big = b"v" * (32768 * 16)
data = cmd(b"SET", (m + ":big").encode(), big)
for i in range(0, len(data), 32768):
    s.sendall(data[i:i + 32768])
    time.sleep(0.02)
for c, slow in [((b"SET", (m + ":big").encode(), big), False), ((b"GET", (m + ":big").encode()), True),
                ((b"SET", (m + ":s").encode(), b"ok"), False), ((b"GET", (m + ":s").encode()), False)]:
    if c[0] == b"SET" and c[2] is big:
        pass  # written above, in pieces
    else:
        s.sendall(cmd(*c))
    err, n = reply(slow)
    print(1 if err else 0, n, "%s:%s" % (c[0].decode(), c[1].decode()), flush=True)
`

// TestCaptureRedisValueBody: a Redis value larger than a read goes
// without its bytes, as an HTTP/1 body of known length does (the session
// tells the capture the rest of the value: collector/session skipStream),
// both ways: a SET's value written in pieces and read by the server, a
// GET's reply read by the client. Every command keeps one c-p and one s-p
// span with its exact request and reply lengths and equal sequence numbers,
// and the commands after the values are read.
func TestCaptureRedisValueBody(t *testing.T) {
	haveBins(t, sysPython, "redis-server")
	tp, live := liveTopo(t)
	port := nextPort()
	startRedis(t, tp, port)
	client := writeScript(t, t.TempDir(), "client.py", pyRedisValueClient)
	st0, _ := live.c.Stats()
	m := "rv" + nonce()
	out := runClient(t, tp.ClientNS, []string{sysPython, client, tp.ServerIP, fmt.Sprint(port), m})
	const size = 32768 * 16
	reqLen := func(args ...string) int64 {
		n := len(fmt.Sprintf("*%d\r\n", len(args)))
		for _, a := range args {
			n += len(fmt.Sprintf("$%d\r\n", len(a))) + len(a) + 2
		}
		return int64(n)
	}
	wants := []struct {
		cmd, key      string
		req, response int64
	}{
		{"SET", m + ":big", reqLen("SET", m+":big", strings.Repeat("v", size)), 5},
		{"GET", m + ":big", reqLen("GET", m+":big"), int64(len(fmt.Sprintf("$%d\r\n", size)) + size + 2)},
		{"SET", m + ":s", reqLen("SET", m+":s", "ok"), 5},
		{"GET", m + ":s", reqLen("GET", m+":s"), 8},
	}
	if len(out) != len(wants) {
		t.Fatalf("client: %+v", out)
	}
	for i, w := range wants {
		if o := out[i]; o.Status != 0 || int64(o.Len) != w.response || o.What != w.cmd+":"+w.key {
			t.Fatalf("client's line %d: %+v, want %s %s with a %d-byte reply", i, o, w.cmd, w.key, w.response)
		}
	}
	spans := waitSpans(t, live, func(s []span.Span) bool { return countMarker(s, m) >= 2*len(wants) })
	st1, _ := live.c.Stats()
	for _, w := range wants {
		c, s, ok := redisSides(t, spans, w.cmd, w.key)
		if !ok {
			continue
		}
		for _, sp := range []span.Span{c, s} {
			if sp.RequestBytes != w.req || sp.ResponseBytes != w.response || sp.ResponseStatus != span.StatusOK {
				t.Errorf("%s %s %s: %d/%d bytes, status %v; want %d/%d, ok", sp.TapSide, w.cmd, w.key,
					sp.RequestBytes, sp.ResponseBytes, sp.ResponseStatus, w.req, w.response)
			}
		}
	}
	n := st1["body_only"] - st0["body_only"]
	t.Logf("syscalls sent without payload: %d", n)
	// The values' pieces after their first ~10 ms go without their bytes:
	// the SET's writes and the server's reads of them, the GET's reads
	// (66 in each of 3 runs, 0 before). The floor sits well below, above
	// what one side or one value alone gives (~30).
	if n < 40 {
		t.Errorf("%d syscalls sent without payload, want ≥ 40", n)
	}
}
