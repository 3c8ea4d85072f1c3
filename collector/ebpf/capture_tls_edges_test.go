//go:build linux

package ebpf

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// More TLS capture edges (docs/tls.md): Redis over TLS, a TLS 1.3 key
// update in the middle of a connection, connections closed in the middle
// of a record, deleted files. Real programs, certificates made here, ground
// truth from what the clients print.

// TestCaptureTLSRedis: redis-cli --tls against redis-server --tls-port
// (both Debian's libssl.so.3): one c-p and one s-p Redis span per command,
// read from OpenSSL's plaintext (the tls flags), with the command, key and
// status and equal TCP sequence numbers; no span on the TLS port lacks the
// flag (the ciphertext made none).
func TestCaptureTLSRedis(t *testing.T) {
	haveBins(t, "openssl", "redis-server", "redis-cli")
	tp, live := liveTopo(t)
	_, cert, key := tlsCert(t, tp.ServerIP)
	port := nextPort()
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, "redis-server", "--bind", tp.ServerIP, "--port", "0",
		"--tls-port", fmt.Sprint(port), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--protected-mode", "no")
	var stderr strings.Builder
	srv.Stdout, srv.Stderr = &syncWriter{w: &stderr}, &syncWriter{w: &stderr}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	cli := func(args ...string) string {
		a := append([]string{"netns", "exec", tp.ClientNS, "redis-cli", "--tls", "--cacert", cert, "-h", tp.ServerIP, "-p", fmt.Sprint(port)}, args...)
		out, _ := exec.Command("ip", a...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for i := 0; i < 50 && cli("PING") != "PONG"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if out := cli("PING"); out != "PONG" {
		t.Fatalf("redis over TLS not answering: %q; server: %s", out, stderr.String())
	}
	waitTLSRead(t, live, port, true, func() error {
		if out := cli("PING"); out != "PONG" {
			return fmt.Errorf("PING: %q", out)
		}
		return nil
	})
	k := "k" + nonce()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", k, "hello"}, "OK"}, {[]string{"GET", k}, "hello"}, {[]string{"INCR", k}, "ERR"},
	} {
		if out := cli(c.args...); !strings.Contains(out, c.want) {
			t.Fatalf("%v: %q, want %q", c.args, out, c.want)
		}
	}
	spans := live.Spans()
	for _, tc := range []struct {
		cmd    string
		status span.ResponseStatus
	}{{"SET", span.StatusOK}, {"GET", span.StatusOK}, {"INCR", span.StatusClientError}} {
		var c, s []span.Span
		for _, sp := range spans {
			if sp.RequestResource == k && sp.RequestType == tc.cmd && sp.TapSide == span.TapClientProcess {
				c = append(c, sp)
			} else if sp.RequestResource == k && sp.RequestType == tc.cmd && sp.TapSide == span.TapServerProcess {
				s = append(s, sp)
			}
		}
		if len(c) != 1 || len(s) != 1 {
			t.Errorf("%s: %d c-p and %d s-p spans, want 1 and 1", tc.cmd, len(c), len(s))
			continue
		}
		for _, sp := range []span.Span{c[0], s[0]} {
			if sp.L7Protocol != span.L7Redis || sp.ResponseStatus != tc.status || sp.Endpoint != tc.cmd || sp.Flags.TLSLibrary() != "openssl" {
				t.Errorf("%s %s (%s): protocol %v status %v endpoint %q flags %b", tc.cmd, sp.TapSide, sp.ProcessName, sp.L7Protocol, sp.ResponseStatus, sp.Endpoint, sp.Flags)
			}
		}
		if c[0].ReqTCPSeq == 0 || c[0].ReqTCPSeq != s[0].ReqTCPSeq || c[0].RespTCPSeq != s[0].RespTCPSeq {
			t.Errorf("%s: tcp seq client %d/%d server %d/%d", tc.cmd, c[0].ReqTCPSeq, c[0].RespTCPSeq, s[0].ReqTCPSeq, s[0].RespTCPSeq)
		}
	}
	checkAllTLS(t, spans, port)
}

// TestCaptureTLSKeyUpdate: openssl s_client (TLS 1.3) against the Python
// HTTPS server on one connection: a request, then a KeyUpdate asking the
// server to update its keys too ('K' on s_client's stdin; s_client prints
// KEYUPDATE), then two more requests: all three give their c-p/s-p pair
// with equal sequence numbers.
func TestCaptureTLSKeyUpdate(t *testing.T) {
	haveBins(t, "openssl", sysPython)
	tp, live, _, port := pyTLSTopo(t)
	m := nonce()
	paths := []string{fmt.Sprintf("/%s/ku/before", m), fmt.Sprintf("/%s/ku/after/0", m), fmt.Sprintf("/%s/ku/after/1", m)}
	cmd := exec.Command("ip", "netns", "exec", tp.ClientNS, "openssl", "s_client", "-tls1_3", "-connect", fmt.Sprintf("%s:%d", tp.ServerIP, port))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &stdout}, &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// waitFor waits until s_client's output holds s (each stdin write is
	// one read of s_client: the 'K' line must come alone).
	waitFor := func(w *syncWriter, s string) {
		t.Helper()
		for i := 0; i < 100; i++ {
			w.mu.Lock()
			ok := strings.Contains(w.w.String(), s)
			w.mu.Unlock()
			if ok {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("s_client: no %q; stdout:\n%s\nstderr:\n%s", s, stdout.String(), stderr.String())
	}
	get := func(p string) {
		t.Helper()
		io.WriteString(stdin, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n")
		waitFor(cmd.Stdout.(*syncWriter), "ok "+p)
	}
	waitFor(cmd.Stdout.(*syncWriter), "TLSv1.3")
	get(paths[0])
	io.WriteString(stdin, "K\n")
	waitFor(cmd.Stderr.(*syncWriter), "KEYUPDATE")
	time.Sleep(200 * time.Millisecond)
	get(paths[1])
	get(paths[2])
	stdin.Close()
	spans := live.Spans()
	for _, p := range paths {
		checkTLSPair(t, spans, p, true)
	}
	checkAllTLS(t, spans, port)
}

// pyMidRecord: on connections a and c, a request, then the first 60 bytes
// of a record announcing 200 (written under OpenSSL, to the socket), then
// a closes with a reset and c with a FIN; b, opened before, and d, opened
// after, make requests afterwards. It prints "0 PORT rst|fin" for a and c.
const pyMidRecord = `
import os, socket, ssl, struct, sys, time
host, port, m = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def conn():
    return ctx.wrap_socket(socket.create_connection((host, port)))
def get(s, p):
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)
    print(int(head.split(b" ")[1]), len(body), p, flush=True)
a, b, c = conn(), conn(), conn()
get(a, "/%s/mid/a" % m)
get(b, "/%s/mid/b0" % m)
get(c, "/%s/mid/c" % m)
for s, how in ((a, "rst"), (c, "fin")):
    os.write(s.fileno(), bytes([0x17, 3, 3, 0, 200]) + os.urandom(55))
    time.sleep(0.2)
    print(0, s.getsockname()[1], how, flush=True)
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
time.sleep(0.3)
get(b, "/%s/mid/b1" % m)
get(conn(), "/%s/mid/d" % m)
`

// TestCaptureTLSMidRecord: connections closed in the middle of a record
// (reset, FIN) against the Python HTTPS server: their earlier request has
// its pair and nothing else comes from them (no span from the partial
// record); a connection open across the closes and a new one keep their
// pairs.
func TestCaptureTLSMidRecord(t *testing.T) {
	haveBins(t, "openssl", sysPython)
	tp, live, dir, port := pyTLSTopo(t)
	m := nonce()
	out := runClient(t, tp.ClientNS, []string{sysPython, writeScript(t, dir, "mid.py", pyMidRecord), tp.ServerIP, fmt.Sprint(port), m})
	if len(out) != 7 {
		t.Fatalf("client: %+v", out)
	}
	closed := map[uint16]string{} // client port -> its one full request
	for _, r := range out {
		switch r.What {
		case "rst":
			closed[uint16(r.Len)] = fmt.Sprintf("/%s/mid/a", m)
		case "fin":
			closed[uint16(r.Len)] = fmt.Sprintf("/%s/mid/c", m)
		default:
			if r.Status != 200 || r.Len != len("ok ")+len(r.What) {
				t.Errorf("client: %+v", r)
			}
		}
	}
	spans := live.Spans()
	for _, p := range []string{"a", "b0", "c", "b1", "d"} {
		checkTLSPair(t, spans, fmt.Sprintf("/%s/mid/%s", m, p), true)
	}
	if len(closed) != 2 {
		t.Fatalf("closed connections: %v", closed)
	}
	checkAllTLS(t, spans, port)
	// A client port is a connection's only while it is open: an earlier
	// connection (the server's readiness probes) or a later one (after the
	// reset) may have had it. The test's own requests each have their one
	// pair (checked above); any other span on a closed connection's port
	// from the start of its full request on came from its partial record.
	mine := map[string]bool{}
	for _, p := range []string{"a", "b0", "c", "b1", "d"} {
		mine[fmt.Sprintf("/%s/mid/%s", m, p)] = true
	}
	opened := map[uint16]int64{}
	for _, s := range spans {
		if p, ok := closed[s.ClientPort]; ok && int(s.ServerPort) == port && s.RequestResource == p {
			if o, seen := opened[s.ClientPort]; !seen || s.StartNs < o {
				opened[s.ClientPort] = s.StartNs
			}
		}
	}
	for _, s := range spans {
		if p, ok := closed[s.ClientPort]; ok && int(s.ServerPort) == port && !mine[s.RequestResource] && s.StartNs >= opened[s.ClientPort] {
			t.Errorf("a span from the partial record of %s's connection: %s %s %v %q status %v", p, s.TapSide, s.ProcessName, s.L7Protocol, s.RequestResource, s.ResponseStatus)
		}
	}
}

// pyDeletedLib is pyNoSymbols deleting the library it loaded before its
// first event.
var pyDeletedLib = strings.Replace(strings.Replace(pyNoSymbols, "import ctypes,", "import os, ctypes,", 1),
	"ctypes.CDLL(sys.argv[1])", "ctypes.CDLL(sys.argv[1]); os.unlink(sys.argv[1])", 1)

// TestCaptureTLSDeleted: a copy of node that deletes itself before serving
// HTTPS is read through /proc/PID/exe (its pairs carry the OpenSSL flag);
// a copy of libssl.so.3 mapped and deleted by two processes is logged once
// and counted, and their plain HTTP spans are kept.
func TestCaptureTLSDeleted(t *testing.T) {
	haveBins(t, "openssl", "curl", "node", sysPython)
	tp, live, log := liveTopoLog(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	port, plain := nextPort(), nextPort()
	node := filepath.Join(dir, "node-copy")
	run(t, "cp", "/usr/bin/node", node)
	script := writeScript(t, dir, "server.js", "require('fs').unlinkSync(process.execPath);\n"+nodeTLSServer)
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port, []string{node, script, tp.ServerIP, fmt.Sprint(port), cert, key})
	if _, err := os.Stat(node); !os.IsNotExist(err) {
		t.Fatalf("node copy not deleted: %v", err)
	}
	startServer(t, tp.ServerNS, tp.ServerIP, plain, runtimes[0].Server(t, tp.ServerIP, plain, ""))
	m := nonce()
	var paths []string
	argv := []string{"curl", "-sk", "-w", "%{http_code} %{size_download} %{url_effective}\n"}
	for i := 0; i < 3; i++ {
		p := fmt.Sprintf("/%s/deleted-exe/%d", m, i)
		paths = append(paths, p)
		argv = append(argv, "-o", "/dev/null", fmt.Sprintf("https://%s:%d%s", tp.ServerIP, port, p))
	}
	if out := runClient(t, tp.ClientNS, argv); len(out) != 3 || out[0].Status != 200 {
		t.Fatalf("curl -> deleted node: %+v", out)
	}

	_, failed0, _ := live.c.TLSStats()
	lib := filepath.Join(dir, "copy", "libssl.so.3")
	os.MkdirAll(filepath.Dir(lib), 0o755)
	var plainPaths []string
	for i := 0; i < 2; i++ {
		run(t, "cp", "/usr/lib/x86_64-linux-gnu/libssl.so.3", lib)
		p := fmt.Sprintf("/%s/deleted-lib/%d", m, i)
		plainPaths = append(plainPaths, p)
		if out := runClient(t, tp.ClientNS, []string{sysPython, writeScript(t, dir, "dellib.py", pyDeletedLib), lib, tp.ServerIP, fmt.Sprint(plain), p}); out[0].Status != 200 {
			t.Fatalf("deleted libssl: %+v", out)
		}
	}

	spans := live.Spans()
	for _, p := range paths {
		checkTLSPair(t, spans, p, false)
	}
	checkTLSFileFailed(t, live, log, spans, lib, failed0, plainPaths)
}

// checkAllTLS asserts that every span on port carries a TLS flag (the
// connection's ciphertext made none).
func checkAllTLS(t *testing.T, spans []span.Span, port int) {
	t.Helper()
	for _, s := range spans {
		if int(s.ServerPort) == port && s.Flags.TLSLibrary() == "" {
			t.Errorf("span without TLS flag on TLS port %d: %s %s %v %s %q", port, s.TapSide, s.ProcessName, s.L7Protocol, s.RequestType, s.RequestResource)
		}
	}
}

// pyTLSTopo is liveTopo with the Python HTTPS server on the returned port;
// dir is a temporary directory.
func pyTLSTopo(t *testing.T) (*topo, *liveCapture, string, int) {
	t.Helper()
	tp, live := liveTopo(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	port := nextPort()
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port, []string{sysPython, writeScript(t, dir, "server.py", pyTLSServer), tp.ServerIP, fmt.Sprint(port), cert, key})
	return tp, live, dir, port
}
