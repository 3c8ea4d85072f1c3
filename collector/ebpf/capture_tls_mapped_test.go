//go:build linux

package ebpf

import (
	"fmt"
	"testing"
)

// pyDupClose makes requests on one kept-alive TLS connection (Python's
// ssl: a socket BIO); before each but the first it closes a duplicate of
// the socket's fd, which makes the collector forget the connection
// object's socket (tls.h tls_sock_closed runs at a close of any of the
// socket's fds). Each response is read into 64-byte buffers: the first
// read makes the syscalls, the others take the record already read and
// go out on the socket tls_conns holds for the object.
const pyDupClose = `
import os, socket, ssl, sys
host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, port)))
for i, p in enumerate(paths):
    if i:
        os.close(os.dup(s.fileno()))
    s.write(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p).encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
        data += s.recv(64)
    print(int(data.split(b" ")[1]), len(data.split(b"\r\n\r\n", 1)[1]), p, flush=True)
`

// TestCaptureTLSDupClose: after a close of a duplicate of a TLS socket's
// fd has made the collector forget the connection object's socket, the
// object's next call that makes a syscall maps it again, so the calls after
// it that make none (reads of a record already read) go out on the
// connection: each request one c-p and one s-p span with its path, and no
// TLS call without its socket. The thread's own copy of its mappings
// (tls.h tls_map_seen, which spares a known mapping tls_conns' lookup)
// must not stand for the map after such a deletion (tls_conns_gen): when
// it did, the second response's buffered reads had no socket.
func TestCaptureTLSDupClose(t *testing.T) {
	haveBins(t, "openssl", sysPython)
	tp, live := liveTopo(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	port := nextPort()
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port, []string{sysPython, writeScript(t, dir, "server.py", pyTLSServer), tp.ServerIP, fmt.Sprint(port), cert, key})
	before, _ := live.c.Stats()
	m := nonce()
	paths := []string{fmt.Sprintf("/%s/dup/0", m), fmt.Sprintf("/%s/dup/1", m), fmt.Sprintf("/%s/dup/2", m)}
	out := runClient(t, tp.ClientNS, append([]string{sysPython, writeScript(t, dir, "dupclose.py", pyDupClose), tp.ServerIP, fmt.Sprint(port)}, paths...))
	if len(out) != len(paths) {
		t.Fatalf("client: %+v", out)
	}
	for i, o := range out {
		if o.Status != 200 || o.Len != len("ok ")+len(paths[i]) {
			t.Fatalf("%s: %+v", paths[i], o)
		}
	}
	spans := live.Spans()
	for _, p := range paths {
		checkTLSPair(t, spans, p, true)
	}
	if after, _ := live.c.Stats(); after["tls_no_socket"] != before["tls_no_socket"] {
		t.Errorf("TLS calls on no known socket: %d, want none", after["tls_no_socket"]-before["tls_no_socket"])
	}
}
