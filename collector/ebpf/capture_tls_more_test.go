//go:build linux

package ebpf

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/zerotrace/zerotrace/pkg/span"
)

const pySmallBuffers = `
import socket, ssl, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, port)))
body = b"x" * 300
s.write(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (path, len(body))).encode())
for i in range(0, len(body), 30):
    s.write(body[i:i+30])  # the body in ten SSL_writes (ten records)
data = b""
while True:
    b = s.recv(64)  # reads into a 64-byte buffer: most make no syscall
    if not b:
        break
    data += b
print(int(data.split(b" ")[1]), len(data.split(b"\r\n\r\n", 1)[1]), path, flush=True)
`

const pyLateSSL = `
import socket, sys, time
host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
socket.create_connection((host, port)).close()  # a first event before libssl is mapped
print(0, open("/proc/self/maps").read().count("libssl"), "before-import", flush=True)
time.sleep(1)
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for i, p in enumerate(paths):
    s = ctx.wrap_socket(socket.create_connection((host, port)))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % p).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    print(int(data.split(b" ")[1]), len(data.split(b"\r\n\r\n", 1)[1]), p, flush=True)
    if i == 0:
        time.sleep(1.5)  # the first connection's ClientHello made the collector look again
`

const pyNoSymbols = `
import ctypes, socket, sys, time
ctypes.CDLL(sys.argv[1])  # a libssl.so.3 without SSL_*: mapped before the first event
host, port, path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.create_connection((host, port))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(int(data.split(b" ")[1]), len(data.split(b"\r\n\r\n", 1)[1]), path, flush=True)
time.sleep(1)  # alive while the collector reads its maps
`

// TestCaptureTLSEdges: with a Python HTTPS server (Debian's libssl.so.3):
// a request whose body is written in 30-byte SSL_writes and its response
// read through a 64-byte buffer (most reads make no syscall: the object's socket is used);
// a process that imports ssl after its first event (its first TLS
// connection makes the collector look again; the later ones are read);
// 200 short-lived curl processes (the libssl file stays attached once: the
// tracker's counters and the kernel's uprobe links of the capture's
// programs both unchanged); a file named libssl.so.3 without SSL_* loaded
// by two processes (logged once, counted, their plain HTTP spans kept).
func TestCaptureTLSEdges(t *testing.T) {
	haveBins(t, "openssl", "curl", "clang-14", "bpftool", sysPython)
	tp, live, log := liveTopoLog(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	port, plain := nextPort(), nextPort()
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port, []string{sysPython, writeScript(t, dir, "server.py", pyTLSServer), tp.ServerIP, fmt.Sprint(port), cert, key})
	startServer(t, tp.ServerNS, tp.ServerIP, plain, runtimes[0].Server(t, tp.ServerIP, plain, ""))
	m := nonce()
	base := fmt.Sprintf("https://%s:%d", tp.ServerIP, port)
	var want []string // paths whose c-p/s-p pair must be read from TLS

	small := fmt.Sprintf("/%s/small", m)
	if out := runClient(t, tp.ClientNS, []string{sysPython, writeScript(t, dir, "small.py", pySmallBuffers), tp.ServerIP, fmt.Sprint(port), small}); out[0].Status != 200 || out[0].Len != len("ok ")+len(small) {
		t.Fatalf("small buffers: %+v", out)
	}

	late := []string{fmt.Sprintf("/%s/late/0", m), fmt.Sprintf("/%s/late/1", m), fmt.Sprintf("/%s/late/2", m)}
	out := runClient(t, tp.ClientNS, append([]string{sysPython, writeScript(t, dir, "late.py", pyLateSSL), tp.ServerIP, fmt.Sprint(port)}, late...))
	if len(out) != 4 || out[0].Len != 0 {
		t.Fatalf("late import: libssl mapped before the import, or bad output: %+v", out)
	}
	want = append(want, late[1:]...) // the first connection may precede the attach (docs/tls.md)

	files0, _, links0 := live.c.TLSStats()
	script := fmt.Sprintf(`for i in $(seq 200); do curl -sk -o /dev/null -w "%%{http_code} %%{size_download} %%{url_effective}\n" %s/%s/many/$i; done`, base, m)
	out = runClient(t, tp.ClientNS, []string{"sh", "-c", script})
	if len(out) != 200 {
		t.Fatalf("200 curls: %d results", len(out))
	}
	for i := 1; i <= 200; i++ {
		want = append(want, fmt.Sprintf("/%s/many/%d", m, i))
	}
	files1, failed1, links1 := live.c.TLSStats()
	if files1 != files0 || links1 != links0 || files1 == 0 {
		t.Errorf("attached files %d -> %d, links %d -> %d over 200 curl processes: want unchanged and non-zero", files0, files1, links0, links1)
	}
	if k := kernelTLSLinks(t, live.c); uint64(k) != links1 {
		t.Errorf("kernel: %d uprobe links of the OpenSSL programs, the tracker counts %d", k, links1)
	}
	// Debian's libssl.so.3 (OpenSSL 3.0, Python's and curl's) writes a
	// small SSL_write_ex whole: its entry is ossl_write_exw (openssl.h).
	if k := kernelLinks(t, live.c.objs.SocketPrograms.OsslWriteExw); k == 0 {
		t.Errorf("kernel: no uprobe link of ossl_write_exw; libssl.so.3's SSL_write_ex should have it")
	}

	nosym := filepath.Join(dir, "nosym", "libssl.so.3")
	os.MkdirAll(filepath.Dir(nosym), 0o755)
	src := writeScript(t, dir, "nosym.c", "int zt_nothing(void) { return 1; }\n")
	run(t, "clang-14", "-shared", "-fPIC", "-o", nosym, src)
	var plainPaths []string
	for i := 0; i < 2; i++ {
		p := fmt.Sprintf("/%s/nosym/%d", m, i)
		plainPaths = append(plainPaths, p)
		if out := runClient(t, tp.ClientNS, []string{sysPython, writeScript(t, dir, "nosym.py", pyNoSymbols), nosym, tp.ServerIP, fmt.Sprint(plain), p}); out[0].Status != 200 {
			t.Fatalf("no symbols: %+v", out)
		}
	}

	spans := live.Spans()
	checkTLSPairMethod(t, spans, small, "POST", true)
	for _, p := range want {
		checkTLSPair(t, spans, p, true)
	}
	if byPath(spans, span.TapClientProcess, late[0]) == nil {
		t.Logf("late import: the first connection was not read (it preceded the attach)")
	}
	checkTLSFileFailed(t, live, log, spans, nosym, failed1, plainPaths)
}

// checkTLSFileFailed asserts that file was logged once and counted as one
// more failed file than failed0 (the tracker works on its own goroutine),
// and that the plain HTTP pairs of paths carry no TLS flag.
func checkTLSFileFailed(t *testing.T, live *liveCapture, log fmt.Stringer, spans []span.Span, file string, failed0 uint64, paths []string) {
	t.Helper()
	for _, p := range paths {
		c, s, ok := checkPair(t, spans, p, 200)
		if ok && (c.Flags.TLSLibrary() != "" || s.Flags.TLSLibrary() != "") {
			t.Errorf("%s: plain HTTP spans flagged TLS", p)
		}
	}
	for i := 0; i < 50; i++ {
		if _, failed, _ := live.c.TLSStats(); failed > failed0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(log.String(), file); n != 1 {
		t.Errorf("%s was logged %d times, want once:\n%s", file, n, log.String())
	}
	if _, failed, _ := live.c.TLSStats(); failed != failed0+1 {
		t.Errorf("failed files %d -> %d, want one more", failed0, failed)
	}
}

// kernelTLSLinks counts the kernel's links (bpftool) of the capture's
// OpenSSL programs.
func kernelTLSLinks(t *testing.T, c *Capture) int {
	t.Helper()
	p := c.objs.SocketPrograms
	return kernelLinks(t, p.OsslWrite, p.OsslRead, p.OsslWriteEx, p.OsslWriteExw, p.OsslReadEx, p.OsslRet, p.OsslRetEx, p.OsslSetFd)
}

// kernelLinks counts the kernel's links (bpftool) of progs.
func kernelLinks(t *testing.T, progs ...*ebpf.Program) int {
	t.Helper()
	ids := map[uint32]bool{}
	for _, prog := range progs {
		info, err := prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		ids[uint32(id)] = true
	}
	out, err := exec.Command("bpftool", "-j", "link", "show").Output()
	if err != nil {
		t.Fatalf("bpftool link show: %v", err)
	}
	var links []struct {
		ProgID uint32 `json:"prog_id"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("bpftool link show: %v", err)
	}
	n := 0
	for _, l := range links {
		if ids[l.ProgID] {
			n++
		}
	}
	return n
}
