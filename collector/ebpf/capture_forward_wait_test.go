//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// waitProxy is a one-thread proxy (Python, excluded from TLS reading): it
// accepts a plain HTTP request, reads it, and calls https://up with the
// same path — at once, or, for a path with /wait/, after sleeping 3 ms in
// poll(2), or with /ewait/ in epoll_wait(2) (selectors), as a proxy does
// that connects when a timer fires — then answers. /ready is answered
// without a call. Its epoll instance is made for the wait and closed after
// it: a Python process that keeps one is an event loop whose thread
// contexts the capture does not use (docs/assembly.md), and the inbound
// request's context is what a forward carries.
const waitProxy = `import selectors, socket, ssl, sys
host, port, up_host, up_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, port))
ls.listen(16)
print("READY", flush=True)
while True:
    a, _ = ls.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        d = a.recv(65536)
        if not d:
            break
        req += d
    path = req.split(b" ")[1] if req.count(b" ") > 1 else b"/"
    if path != b"/ready":
        if b"/wait/" in path:
            selectors.PollSelector().select(0.003)
        if b"/ewait/" in path:
            with selectors.EpollSelector() as sel:
                sel.select(0.003)
        t = ctx.wrap_socket(socket.create_connection((up_host, up_port)))
        t.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
        while t.recv(65536):
            pass
        t.close()
    a.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    a.close()
`

// TestForwardedWaitRefused: a real proxy thread that reads a request and
// connects its upstream in the same turn of its event loop forwards the
// request's context to the upstream call (its c-p L4 span carries the
// inbound s-p span's context id); one that went back to epoll_wait between
// the read and the connect (bpf/socket/wait.h: the connect event carries
// EventWaited) forwards none. Ground truth: which path the proxy slept on
// (the request paths the test generated).
func TestForwardedWaitRefused(t *testing.T) {
	haveBins(t, "openssl", "curl", "nginx", sysPython)
	tp, live := liveTopoExcluding(t, "nginx", "python3")
	dir, cert, key := tlsCert(t, tp.ServerIP)
	upPort := nextPort()
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, upPort, []string{"nginx", "-c", nginxTLSConf(t, dir, tp.ServerIP, upPort, cert, key)})
	script := filepath.Join(dir, "waitproxy.py")
	if err := os.WriteFile(script, []byte(waitProxy), 0o644); err != nil {
		t.Fatal(err)
	}
	pxPort := nextPort()
	startServer(t, tp.ClientNS, tp.ClientIP, pxPort, []string{sysPython, script, tp.ClientIP, fmt.Sprint(pxPort), tp.ServerIP, fmt.Sprint(upPort)})
	m := nonce()
	var paths []string
	for i := 0; i < 3; i++ {
		for _, kind := range []string{"now", "wait"} {
			path := fmt.Sprintf("/%s/%s/%d", m, kind, i)
			paths = append(paths, path)
		}
	}
	// epoll last: the process may be taken for an event loop after it.
	paths = append(paths, fmt.Sprintf("/%s/ewait/0", m))
	for _, path := range paths {
		out := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d%s", tp.ClientIP, pxPort, path)})
		if out[0].Status != 200 {
			t.Fatalf("curl: %+v", out)
		}
	}
	spans := live.Spans()
	var calls []span.Span // the proxy's c-p L4 spans to the upstream
	for _, s := range spans {
		if s.TapSide == span.TapClientProcess && int(s.ServerPort) == upPort && strings.HasPrefix(s.ProcessName, "python3") {
			calls = append(calls, s)
		}
	}
	for _, p := range paths {
		in := byPath(spans, span.TapServerProcess, p)
		if len(in) != 1 {
			t.Errorf("%s: %d s-p spans at the proxy, want 1", p, len(in))
			continue
		}
		var call []span.Span
		for _, c := range calls {
			if in[0].StartNs <= c.StartNs && c.EndNs <= in[0].EndNs {
				call = append(call, c)
			}
		}
		if len(call) != 1 {
			t.Errorf("%s: %d upstream L4 calls inside the inbound request, want 1 (all: %d)", p, len(call), len(calls))
			continue
		}
		c := call[0]
		t.Logf("%s: inbound context %x, call's %x/%x", p, in[0].SyscallTraceIDReq, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
		if c.L7Protocol != span.L7Unknown || !c.Flags.Has(span.FlagTLS) {
			t.Errorf("%s: the call is not an L4 TLS span: protocol %v flags %b", p, c.L7Protocol, c.Flags)
		}
		switch waited := strings.Contains(p, "wait/"); {
		case in[0].SyscallTraceIDReq == 0:
			t.Errorf("%s: the inbound request has no context: nothing to forward or refuse", p)
		case !waited && c.SyscallTraceIDReq != in[0].SyscallTraceIDReq:
			t.Errorf("%s: connect right after the read: the call's context %x, want the inbound request's %x",
				p, c.SyscallTraceIDReq, in[0].SyscallTraceIDReq)
		case waited && (c.SyscallTraceIDReq != 0 || c.SyscallTraceIDResp != 0):
			t.Errorf("%s: connect after a wait: the call's context %x/%x, want none", p, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
		}
	}
}
