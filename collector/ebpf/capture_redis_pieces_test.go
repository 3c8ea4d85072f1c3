//go:build linux

package ebpf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// pyRedisPiecesClient speaks RESP to redis-server on one connection: it
// writes each step's commands in pieces of wsize bytes 3 ms apart
// (TCP_NODELAY: the server reads them in pieces), but for the first
// command when told to write it whole, and reads the replies with
// recv(rsize), parsing them itself. It prints "ERR LEN CMD:KEY" per
// command: 1 for an error reply, the reply's length in bytes.
const pyRedisPiecesClient = `
import socket, sys, time
host, port, rsize, wsize, m, whole = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6] == "1"
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""
def more():
    global buf
    b = s.recv(rsize)
    if not b:
        raise SystemExit("closed")
    buf += b
def value(pos):
    while buf.find(b"\r\n", pos) < 0:
        more()
    i = buf.find(b"\r\n", pos)
    t, v, end = buf[pos:pos + 1], buf[pos + 1:i], i + 2
    if t in (b"+", b":"):
        return end, False
    if t == b"-":
        return end, True
    if t == b"$":
        n = int(v)
        if n < 0:
            return end, False
        while len(buf) < end + n + 2:
            more()
        return end + n + 2, False
    if t == b"*":
        for _ in range(max(int(v), 0)):
            end, _ = value(end)
        return end, False
    raise SystemExit("bad reply %r" % buf[pos:])
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a.encode())
    return out
steps = [[("ECHO", m + ":e")], [("SET", m + ":1", "v" * 50)], [("GET", m + ":1")], [("RPUSH", m + ":l", "a", "bb", "ccc")],
         [("LRANGE", m + ":l", "0", "-1")], [("INCR", m + ":1")], [("GET", m + ":2")],
         [("GETRANGE", m + ":1", "0", "9"), ("GET", m + ":l"), ("EXISTS", m + ":2")]]
for k, step in enumerate(steps):
    data = b"".join(cmd(*c) for c in step)
    w = len(data) if k == 0 and whole else wsize
    for i in range(0, len(data), w):
        s.sendall(data[i:i + w])
        time.sleep(0.003)
    for c in step:
        end, err = value(0)
        print(1 if err else 0, end, "%s:%s" % (c[0], c[1]), flush=True)
        buf = buf[end:]
`

// TestCaptureRedisInPieces: Redis commands written in pieces of 3 to 40
// bytes (the server reads them in pieces) and replies read into buffers
// of 1 to 40 bytes, pipelined or not, the connection's first command
// written whole or in pieces too, make one c-p and one s-p span per
// command, each with its own reply: the reply's length and status as the
// client read them, the request's length, equal sequence numbers. Every
// reply of a connection has another length, so a reply answering another
// command shows. Before, each read was parsed alone: a reply cut inside a
// line or an array made a reply of its first part and bogus replies (or
// none) of the rest, and the connection's later replies answered the
// wrong commands.
func TestCaptureRedisInPieces(t *testing.T) {
	haveBins(t, sysPython, "redis-server", "redis-cli")
	tp, live := liveTopo(t)
	port := nextPort()
	startRedis(t, tp, port)
	client := writeScript(t, t.TempDir(), "client.py", pyRedisPiecesClient)
	type want struct {
		cmd, key string
		err      bool
		reqLen   int
		respLen  int
	}
	// The request each output line answers, as the client encoded it.
	args := map[string][]string{"SET": {"v50"}, "RPUSH": {"a", "bb", "ccc"}, "LRANGE": {"0", "-1"}, "GETRANGE": {"0", "9"}}
	var wants []want
	// Read size, write size, first command whole (the connection's
	// protocol told by a whole command, as on main; else by its pieces).
	for _, sz := range [][3]int{{1, 3, 1}, {5, 7, 1}, {16, 16, 1}, {40, 40, 1}, {1, 3, 0}, {5, 7, 0}} {
		m := fmt.Sprintf("rp%sr%dw%dx%d", nonce(), sz[0], sz[1], sz[2])
		out := runClient(t, tp.ClientNS, []string{sysPython, client, tp.ServerIP, fmt.Sprint(port), fmt.Sprint(sz[0]), fmt.Sprint(sz[1]), m, fmt.Sprint(sz[2])})
		if len(out) != 10 {
			t.Fatalf("client: %+v", out)
		}
		for _, o := range out {
			cmd, key, _ := strings.Cut(o.What, ":")
			a := append([]string{cmd, key}, args[cmd]...)
			if cmd == "SET" {
				a[2] = strings.Repeat("v", 50)
			}
			n := len(fmt.Sprintf("*%d\r\n", len(a)))
			for _, x := range a {
				n += len(fmt.Sprintf("$%d\r\n%s\r\n", len(x), x))
			}
			wants = append(wants, want{cmd, key, o.Status == 1, n, o.Len})
		}
	}
	spans := waitSpans(t, live, func(s []span.Span) bool { return countMarker(s, "rp") >= 2*len(wants) })
	// No span of these connections is other than the commands' (a reply
	// without its command, a command of no name).
	known := map[string]bool{}
	for _, w := range wants {
		known[w.cmd+" "+w.key] = true
	}
	for _, sp := range spans {
		if sp.L7Protocol == span.L7Redis && sp.ServerPort == uint16(port) && sp.RequestType != "PING" && !known[sp.RequestType+" "+sp.RequestResource] {
			t.Errorf("a span of no command sent: %s %q %q, %d/%d bytes, flags %v", sp.TapSide, sp.RequestType, sp.RequestResource,
				sp.RequestBytes, sp.ResponseBytes, sp.Flags)
		}
	}
	for _, w := range wants {
		c, s, ok := redisSides(t, spans, w.cmd, w.key)
		if !ok {
			continue
		}
		st := span.StatusOK
		if w.err {
			st = span.StatusClientError
		}
		for _, sp := range []span.Span{c, s} {
			if sp.ResponseStatus != st || sp.ResponseBytes != int64(w.respLen) || sp.RequestBytes != int64(w.reqLen) || sp.EndNs < sp.StartNs {
				t.Errorf("%s %s %s: status %v, %d/%d bytes; want %v, %d/%d (the client's)", w.cmd, w.key, sp.TapSide,
					sp.ResponseStatus, sp.RequestBytes, sp.ResponseBytes, st, w.reqLen, w.respLen)
			}
		}
	}
}

// redisSides returns the one c-p and the one s-p span of the Redis command
// cmd on key, with equal non-zero sequence numbers; ok false (reported)
// otherwise.
func redisSides(t *testing.T, spans []span.Span, cmd, key string) (c, s span.Span, ok bool) {
	t.Helper()
	cs, ss := sidesOf(spans, func(sp span.Span) bool {
		return sp.L7Protocol == span.L7Redis && sp.RequestType == cmd && sp.RequestResource == key
	})
	if len(cs) != 1 || len(ss) != 1 {
		t.Errorf("%s %s: %d c-p and %d s-p spans, want 1 and 1", cmd, key, len(cs), len(ss))
		return c, s, false
	}
	c, s = cs[0], ss[0]
	if c.ReqTCPSeq != s.ReqTCPSeq || c.RespTCPSeq != s.RespTCPSeq || c.ReqTCPSeq == 0 {
		t.Errorf("%s %s: seqs client %d/%d server %d/%d", cmd, key, c.ReqTCPSeq, c.RespTCPSeq, s.ReqTCPSeq, s.RespTCPSeq)
	}
	return c, s, true
}
