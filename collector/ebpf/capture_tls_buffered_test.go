//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// pyReadAheadServer is an HTTPS server on OpenSSL itself (ctypes on
// Debian's libssl.so.3, as nginx uses it: a socket BIO given by SSL_set_fd,
// read_ahead on), so that the request's record is read by the handshake:
// its SSL_accept waits 50 ms before it reads the client's Finished, by then
// followed by the request, and takes both in one read. The first SSL_read
// then makes no syscall. Before it, by the mode its file holds at accept:
// "" nothing, "late" 30 ms (the thread's last read is older than
// tls_sock_of's 10 ms: a busy machine's nginx), "other" a read of another
// TCP connection (the thread's last read is another socket's).
const pyReadAheadServer = `
import ctypes, os, select, socket, sys, time
host, port, cert, key, modefile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
L = ctypes.CDLL("libssl.so.3")
P = ctypes.c_void_p
for f, res, args in [("TLS_server_method", P, []), ("SSL_CTX_new", P, [P]), ("SSL_CTX_ctrl", ctypes.c_long, [P, ctypes.c_int, ctypes.c_long, P]),
                     ("SSL_CTX_use_certificate_chain_file", ctypes.c_int, [P, ctypes.c_char_p]),
                     ("SSL_CTX_use_PrivateKey_file", ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_int]),
                     ("SSL_new", P, [P]), ("SSL_set_fd", ctypes.c_int, [P, ctypes.c_int]), ("SSL_accept", ctypes.c_int, [P]),
                     ("SSL_get_error", ctypes.c_int, [P, ctypes.c_int]), ("SSL_read", ctypes.c_int, [P, P, ctypes.c_int]),
                     ("SSL_write", ctypes.c_int, [P, P, ctypes.c_int]), ("SSL_shutdown", ctypes.c_int, [P]), ("SSL_free", None, [P])]:
    getattr(L, f).restype, getattr(L, f).argtypes = res, args
ctx = L.SSL_CTX_new(L.TLS_server_method())
assert L.SSL_CTX_use_certificate_chain_file(ctx, cert.encode()) == 1 and L.SSL_CTX_use_PrivateKey_file(ctx, key.encode(), 1) == 1
L.SSL_CTX_ctrl(ctx, 41, 1, None)  # SSL_CTRL_SET_READ_AHEAD
side = socket.create_server(("127.0.0.1", 0))
srv = socket.create_server((host, port))
print("READY", flush=True)
buf = ctypes.create_string_buffer(16384)
while True:
    conn, _ = srv.accept()
    mode = open(modefile).read().strip()
    conn.setblocking(False)
    s = L.SSL_new(ctx)
    L.SSL_set_fd(s, conn.fileno())
    while True:
        r = L.SSL_accept(s)
        if r == 1:
            break
        if L.SSL_get_error(s, r) not in (2, 3):
            break
        select.select([conn], [], [], 5)
        time.sleep(0.05)
    if mode == "late":
        time.sleep(0.03)
    elif mode == "other":
        c = socket.create_connection(side.getsockname())
        b, _ = side.accept()
        c.sendall(b"x")
        b.recv(1)
        c.close(); b.close()
    n = L.SSL_read(s, buf, len(buf))
    while n <= 0 and L.SSL_get_error(s, n) == 2:
        select.select([conn], [], [], 5)
        n = L.SSL_read(s, buf, len(buf))
    if n > 0:
        path = buf.raw[:n].split(b" ")[1]
        body = b"ok " + path
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        out = ctypes.create_string_buffer(resp, len(resp))
        conn.setblocking(True)
        L.SSL_write(s, out, len(resp))
        L.SSL_shutdown(s)
    L.SSL_free(s)
    conn.close()
`

// TestCaptureTLSBufferedRequest: a request whose TLS record the server's
// handshake already read (OpenSSL's read_ahead, as nginx sets it: the
// first SSL_read makes no syscall) is read on its own connection when the
// thread's last read is 30 ms old and when it was another connection's:
// the connection object has its socket from SSL_set_fd (bpf/socket/
// openssl.h). Before, the first lost the request (the server span a
// response alone, no resource: issue 25's https variant, one nginx span in
// ~2000 on a busy machine) and the second gave it to the other connection.
// Each request: one c-p span of curl and one s-p span of the server with
// the path, on the same connection, and no TLS call without its socket.
func TestCaptureTLSBufferedRequest(t *testing.T) {
	haveBins(t, "openssl", "curl", sysPython)
	tp, live := liveTopo(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	modeFile := filepath.Join(dir, "mode")
	setMode := func(m string) {
		if err := os.WriteFile(modeFile, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setMode("")
	port := nextPort()
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port,
		[]string{sysPython, writeScript(t, dir, "readahead.py", pyReadAheadServer), tp.ServerIP, fmt.Sprint(port), cert, key, modeFile})
	before, _ := live.c.Stats()
	since := time.Now().UnixNano() // the readiness probes' first request may come before the attach
	m := nonce()
	var paths []string
	for _, mode := range []string{"late", "other"} {
		setMode(mode)
		for i := range 3 {
			p := fmt.Sprintf("/%s/%s/%d", m, mode, i)
			out := runClient(t, tp.ClientNS, []string{"curl", "-sk", "--tlsv1.3", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
				fmt.Sprintf("https://%s:%d%s", tp.ServerIP, port, p)})
			if len(out) != 1 || out[0].Status != 200 || out[0].Len != len("ok ")+len(p) {
				t.Fatalf("%s: %+v", p, out)
			}
			paths = append(paths, p)
		}
	}
	spans := live.Spans()
	for _, p := range paths {
		checkTLSPair(t, spans, p, false)
	}
	for _, s := range spans {
		if int(s.ServerPort) == port && s.TapSide == span.TapServerProcess && s.RequestResource == "" && s.StartNs >= since {
			t.Errorf("a server span without its request: %s %s:%d flags %b", s.ProcessName, s.ClientIP, s.ClientPort, s.Flags)
		}
		if strings.HasPrefix(s.RequestResource, "/"+m+"/") && int(s.ServerPort) != port {
			t.Errorf("%s on another connection: %s %s:%d→%s:%d", s.RequestResource, s.TapSide, s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort)
		}
	}
	if after, _ := live.c.Stats(); after["tls_no_socket"] != before["tls_no_socket"] {
		t.Errorf("TLS calls on no known socket: %d, want none", after["tls_no_socket"]-before["tls_no_socket"])
	}
}
