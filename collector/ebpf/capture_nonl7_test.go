//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// bulkScript streams 16 MiB of 0xAB bytes (no L7 protocol starts or goes on
// like that, at any offset) through a loopback TCP connection and prints
// what the server read.
const bulkScript = `
import socket, threading
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
got = [0]
def serve():
    c, _ = ls.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        got[0] += len(b)
    c.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(ls.getsockname())
buf = b"\xab" * 65536
for _ in range(256):
    c.sendall(buf)
c.close(); t.join(); ls.close()
print(got[0])
`

// TestCaptureNonL7: a bulk stream of bytes no protocol starts with is marked
// not L7 on both its sockets after its first messages and sends nothing more
// to user space (events counted in kernel stay a handful, not the 256 writes
// and their reads); an HTTP exchange in the same capture keeps its spans.
func TestCaptureNonL7(t *testing.T) {
	tp, live := liveTopo(t)
	st0, err := live.c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", tp.ServerNS, sysPython, "-c", bulkScript).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(256*65536) {
		t.Fatalf("bulk stream: %v %s", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	st1, err := live.c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Per socket: at most NONL7_PROBES (4) messages, plus connect/accept
	// and close events of the three sockets.
	if ev := st1["events"] - st0["events"]; ev > 2*4+6 {
		t.Errorf("%d events for the bulk stream, want ≤ 14 (stats %v)", ev, st1)
	}
	if n := st1["nonl7_sockets"] - st0["nonl7_sockets"]; n != 2 {
		t.Errorf("%d sockets marked not L7, want 2 (stats %v)", n, st1)
	}

	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, runtimes[0].Server(t, tp.ServerIP, port, ""))
	m := nonce()
	path := fmt.Sprintf("/%s/after-bulk", m)
	res := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
		fmt.Sprintf("http://%s:%d%s", tp.ServerIP, port, path)})
	if len(res) != 1 || res[0].Status != 200 {
		t.Fatalf("curl: %+v", res)
	}
	checkPair(t, live.Spans(), path, 200)
	if st, _ := live.c.Stats(); st["nonl7_sockets"] != st1["nonl7_sockets"] {
		t.Errorf("HTTP sockets marked not L7: %d → %d", st1["nonl7_sockets"], st["nonl7_sockets"])
	}
}

// forgetScript: one connection on loopback, a thread at each end. Six
// rounds of 4 KiB of 0xAB and a 64-byte answer of the same make both
// sockets not L7; then each end closes a dup of its socket's fd, which
// makes the capture forget the socket's state (the close of any fd of it),
// and the connection carries an HTTP request and its response: the
// capture sees the socket afresh and must make their spans. The path comes
// in argv[1].
const forgetScript = `
import os, socket, sys, threading
path = sys.argv[1]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
def read(s, n):
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        if not b:
            raise SystemExit("eof")
        got += b
    return got
def serve():
    c, _ = ls.accept()
    for _ in range(6):
        read(c, 4096); c.sendall(b"\xab" * 64)
    os.close(os.dup(c.fileno()))
    req = b""
    while not req.endswith(b"\r\n\r\n"):
        req += c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(ls.getsockname())
for _ in range(6):
    c.sendall(b"\xab" * 4096); read(c, 64)
os.close(os.dup(c.fileno()))
c.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
print(read(c, 40).split(b"\r\n")[0].decode())
c.close(); t.join(); ls.close()
`

// TestCaptureNonL7Forgotten: a thread keeps its socket's verdict in its
// own storage (bpf/socket/l7.h l7_skip) and skips a not-L7 socket without
// looking its state up; once the capture forgot that state (a close of a
// dup of the fd), the same threads' HTTP exchange on the same socket still
// makes its client and server spans. Seen failing with the thread's copy
// kept across the forgetting (sockets_gen not compared).
func TestCaptureNonL7Forgotten(t *testing.T) {
	tp, live := liveTopo(t)
	path := fmt.Sprintf("/%s/after-forget", nonce())
	out, err := exec.Command("ip", "netns", "exec", tp.ServerNS, sysPython, "-c", forgetScript, path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "HTTP/1.1 200 OK" {
		t.Fatalf("script: %v %s", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	checkPair(t, live.Spans(), path, 200)
}
