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
	out, err := exec.Command("ip", "netns", "exec", tp.ServerNS, "python3", "-c", bulkScript).CombinedOutput()
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
