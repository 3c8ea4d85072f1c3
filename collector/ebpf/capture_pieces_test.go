//go:build linux

package ebpf

import (
	"fmt"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// pyStatusServer answers GET /<marker>/<n>/<status> with that status, a
// body "ok <path>" and an X-Request-ID of the path's last two segments, on
// kept-alive connections (Python's http.server reads a request head with
// the bytes each recv brings).
const pyStatusServer = `
import http.server, sys
host, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        parts = self.path.split("/")
        status = int(parts[-1]) if parts[-1].isdigit() else 200
        body = ("ok " + self.path).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", "-".join(parts[-2:]))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((host, port), H).serve_forever()
`

// pyPiecesClient makes its requests on one kept-alive connection, writing
// each head in pieces of wsize bytes 3 ms apart (TCP_NODELAY: one segment
// each, read apart by the server) and reading each response with
// recv(rsize); it prints "STATUS BODYLEN PATH" per request.
const pyPiecesClient = `
import socket, sys, time
host, port, rsize, wsize, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def more(data):
    b = s.recv(rsize)
    if not b:
        raise SystemExit("closed")
    return data + b
for p in paths:
    req = ("GET %s HTTP/1.1\r\nHost: pieces\r\n\r\n" % p).encode()
    for i in range(0, len(req), wsize):
        s.sendall(req[i:i + wsize])
        time.sleep(0.003)
    data = b""
    while b"\r\n\r\n" not in data:
        data = more(data)
    head, body = data.split(b"\r\n\r\n", 1)
    n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(body) < n:
        body = more(body)
    print(int(head.split(b" ")[1]), len(body), p, flush=True)
`

// TestCaptureHeadInPieces: HTTP/1 heads split over several syscalls — a
// client that reads its responses into buffers of 1 to 40 bytes, and that
// writes its request heads in pieces of 3 to 40 bytes, so that the server
// reads them in pieces — make one c-p and one s-p span per request, each
// with its own response's status (every request on a connection asks for
// another one), equal TCP sequence numbers, and the response's
// X-Request-ID, which sits in the middle of the head. Before, a first read
// that cut the status line made a message of its own, and each response on
// the connection answered the request before its own.
func TestCaptureHeadInPieces(t *testing.T) {
	haveBins(t, sysPython)
	tp, live := liveTopo(t)
	dir := t.TempDir()
	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, []string{sysPython, writeScript(t, dir, "server.py", pyStatusServer), tp.ServerIP, fmt.Sprint(port)})
	client := writeScript(t, dir, "client.py", pyPiecesClient)
	m := "hp" + nonce()
	statuses := []int{200, 404, 201, 503}
	var all []string
	for _, sz := range [][2]int{{1, 3}, {5, 7}, {16, 16}, {40, 40}} {
		var paths []string
		for _, st := range statuses {
			paths = append(paths, fmt.Sprintf("/%s/r%dw%d/%d", m, sz[0], sz[1], st))
		}
		out := runClient(t, tp.ClientNS, append([]string{sysPython, client, tp.ServerIP, fmt.Sprint(port), fmt.Sprint(sz[0]), fmt.Sprint(sz[1])}, paths...))
		if len(out) != len(paths) {
			t.Fatalf("client: %+v", out)
		}
		for i, o := range out {
			if o.Status != statuses[i] || o.Len != len("ok ")+len(paths[i]) {
				t.Fatalf("%s: client got %+v", paths[i], o)
			}
		}
		all = append(all, paths...)
	}
	spans := waitSpans(t, live, func(s []span.Span) bool { return countMarker(s, m) >= 2*len(all) })
	for i, p := range all {
		c, s, ok := checkPair(t, spans, p, int32(statuses[i%len(statuses)]))
		if !ok {
			continue
		}
		// The server's X-Request-ID: the path's last two segments.
		want := p[len("/"+m+"/"):]
		want = want[:len(want)-4] + "-" + want[len(want)-3:]
		if c.XRequestIDResp != want || s.XRequestIDResp != want {
			t.Errorf("%s: response X-Request-ID c-p %q s-p %q, want %q", p, c.XRequestIDResp, s.XRequestIDResp, want)
		}
	}
}
