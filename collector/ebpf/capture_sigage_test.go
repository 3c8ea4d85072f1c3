//go:build linux

package ebpf

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// blockedRead: the scripts' read of one HTTP/1.1 message, its head and its
// Content-Length body (None at the end).
const blockedRead = `
def read(s):
    got = b""
    while b"\r\n\r\n" not in got:
        b = s.recv(65536)
        if not b:
            return None
        got += b
    head, body = got.split(b"\r\n\r\n", 1)
    n = 0
    for l in head.split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        b = s.recv(1 << 20)
        if not b:
            break
        body += b
    return head, body
`

// blockedCallScript: a process whose worker thread (one that never receives
// a server request) calls an upstream (another process) with one large
// write (an 8 MiB POST to /<marker>/call in one send, 64 KiB socket
// buffers) that blocks: the upstream does not read until told. While the
// write is blocked (the script sees the thread in the syscall: sendto, or
// OpenSSL's write, /proc/self/task/<tid>/syscall), the process serves its
// first request (/<marker>/req, from a client process of its own): its read
// marks the process serving (bpf/socket/causality.h serving_mark) after the
// write began. The handler waits for the call's result
// (concurrent.futures.Future.result: a Python waiter lock), then the
// upstream is told to read; the worker reads the response and hands the
// result to the handler (a wake after its call's response: the claim that
// links the call to the request, bpf/socket/handoff.h wake), which answers
// with it. The script's own CLOCK_MONOTONIC times (the clock of
// bpf_ktime_get_ns) place the request's read inside the write: it prints the
// marker, its pid, the send's start, the handler's read of the request and
// the send's return, then lives until its stdin closes. argv[1]: the
// marker; argv[2:]: a certificate and its key, to call over TLS (the
// upstream serves with them).
const blockedCallScript = blockedRead + `
import os, socket, ssl, subprocess, sys, threading, time
from concurrent.futures import Future
m, tls = sys.argv[1].encode(), sys.argv[2:]
upstream = r'''` + blockedRead + `
import socket, ssl, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
ls.bind(("127.0.0.1", 0)); ls.listen(1)
print(ls.getsockname()[1], flush=True)
c, _ = ls.accept()
if len(sys.argv) > 1:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    c = ctx.wrap_socket(c, server_side=True)
sys.stdin.readline() # told: read now
read(c)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nfetched")
read(c)
'''
up = subprocess.Popen([sys.executable, "-c", upstream] + tls, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
port = int(up.stdout.readline())
BODY = 8 << 20
msg = b"POST /" + m + b"/call HTTP/1.1\r\nHost: up\r\nContent-Length: %d\r\n\r\n" % BODY + b"x" * BODY
result = Future()
times = {}
tid = []
def worker():
    tid.append(threading.get_native_id())
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    c.connect(("127.0.0.1", port))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = ctx.wrap_socket(c)
    times["send"] = time.monotonic_ns()
    c.sendall(msg)
    times["sent"] = time.monotonic_ns()
    _, body = read(c)
    result.set_result(body)
    c.close()
w = threading.Thread(target=worker); w.start()
while not tid:
    time.sleep(0.001)
def in_send():
    with open("/proc/self/task/%d/syscall" % tid[0]) as f:
        return f.read().split()[0] in ("1", "44") # write (OpenSSL's), sendto
for _ in range(5000):
    if in_send():
        break
    time.sleep(0.002)
else:
    sys.exit("the worker's send never blocked")
time.sleep(0.05)
if not in_send():
    sys.exit("the worker's send did not stay blocked")
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
got = threading.Event()
def serve():
    s, _ = ls.accept()
    read(s)
    times["req"] = time.monotonic_ns()
    got.set()
    body = result.result()
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    s.close()
t = threading.Thread(target=serve); t.start()
client = r'''` + blockedRead + `
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"GET /" + sys.argv[2].encode() + b"/req HTTP/1.1\r\nHost: x\r\n\r\n")
read(c)
'''
cl = subprocess.Popen([sys.executable, "-c", client, str(ls.getsockname()[1]), m.decode()])
got.wait()
time.sleep(0.2) # the handler waits for the result before the response comes
up.stdin.write(b"go\n"); up.stdin.flush()
t.join(); w.join(); cl.wait(); ls.close()
print(m.decode(), os.getpid(), times["send"], times["req"], times["sent"], flush=True)
sys.stdin.read()
up.wait()
`

// TestCaptureServingInsideWrite: the case bpf/socket/handoff.h
// handoff_call's ages are signed for. A write's causality takes the write's
// entry time (socket.bpf.c exit_io), and another thread can stamp what it is
// compared with while the write runs: here the process's serving time
// (causality.h serving_mark), made by its first server request's read while
// a pool thread's call is blocked in its write (blockedCallScript). The call
// must still carry a token (unsigned, the age wraps to more than IDLE_NS and
// the call carries none), and the worker's handing of the call's result to
// that request's handler claims it: the call's span carries the request's
// context. Ground truth: the script's own markers (the paths, which
// causality does not use) and its clock readings, which must place the
// request's read inside the write. The scripts run on /usr/bin/python3
// (sysPython, Debian's 3.11).
func TestCaptureServingInsideWrite(t *testing.T) {
	tp, live := liveTopo(t)
	checkBlockedCall(t, live, scriptRun(t, tp, blockedCallScript, nonce()), false)
}

// TestCaptureServingInsideTLSWrite: the same over TLS (Debian's OpenSSL 3,
// the ssl module of /usr/bin/python3): the call is one SSL_write whose
// socket write blocks, and its causality takes the SSL_write's entry time
// (bpf/socket/tls.h tls_emit).
func TestCaptureServingInsideTLSWrite(t *testing.T) {
	haveBins(t, "openssl", "curl", sysPython)
	tp, live := liveTopo(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	// A Python TLS server read by the capture: libssl.so.3 is attached
	// before the script's process maps it (waitTLSRead).
	port := nextPort()
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port, []string{sysPython, writeScript(t, dir, "server.py", pyTLSServer),
		tp.ServerIP, fmt.Sprint(port), cert, key})
	checkBlockedCall(t, live, scriptRun(t, tp, blockedCallScript, nonce(), cert, key), true)
}

// checkBlockedCall checks what blockedCallScript printed (f) and the spans of
// its process: the request's read inside the worker's send, and the call's
// span carrying the context of the request (and, with tls, the flag of a
// TLS library's plaintext).
func checkBlockedCall(t *testing.T, live *liveCapture, f []string, tls bool) {
	t.Helper()
	if len(f) != 5 {
		t.Fatalf("script printed %q", f)
	}
	var v [4]uint64
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("script printed %q", f)
		}
		v[i] = n
	}
	m, pid, send, req, sent := f[0], v[0], v[1], v[2], v[3]
	if !(send < req && req < sent) {
		t.Fatalf("the request's read (%d) is not inside the worker's send (%d–%d): the case is not made", req, send, sent)
	}
	t.Logf("the request was read %.1f ms into the worker's send, %.1f ms before it returned",
		float64(req-send)/1e6, float64(sent-req)/1e6)
	var server, call *span.Span
	spans := live.Spans()
	for i := range spans {
		s := &spans[i]
		if uint64(s.PID) != pid {
			continue
		}
		switch {
		case s.TapSide == span.TapServerProcess && s.RequestResource == "/"+m+"/req":
			server = s
		case s.TapSide == span.TapClientProcess && s.RequestResource == "/"+m+"/call":
			call = s
		}
	}
	if server == nil || call == nil {
		t.Fatalf("server span %v, call span %v of pid %d: want both", server != nil, call != nil, pid)
	}
	if tls && call.Flags.TLSLibrary() == "" {
		t.Fatalf("the call's span is not a TLS library's plaintext (flags %v)", call.Flags)
	}
	if server.SyscallTraceIDReq == 0 {
		t.Fatalf("the server request carries no context")
	}
	// As the pool tests: a context on either side, the same on both.
	id := call.SyscallTraceIDReq | call.SyscallTraceIDResp
	if id != server.SyscallTraceIDReq || (call.SyscallTraceIDReq != 0 && call.SyscallTraceIDReq != id) ||
		(call.SyscallTraceIDResp != 0 && call.SyscallTraceIDResp != id) {
		t.Fatalf("the call made while the request came carries context %x/%x, want the request's %x",
			call.SyscallTraceIDReq, call.SyscallTraceIDResp, server.SyscallTraceIDReq)
	}
}
