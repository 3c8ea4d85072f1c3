//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// burstScript serves and calls itself on one keep-alive loopback connection
// inside its network namespace: n requests of ~600 bytes, each answered.
const burstScript = `
import socket, sys, threading
n, marker = int(sys.argv[1]), sys.argv[2]
ln = socket.socket()
ln.bind(("127.0.0.1", 0))
ln.listen(1)
resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
def serve():
    c, _ = ln.accept()
    while True:
        b = c.recv(65536)
        if not b:
            return
        c.sendall(resp)
threading.Thread(target=serve, daemon=True).start()
c = socket.create_connection(ln.getsockname())
req = ("GET /%s/burst HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % (marker, "p" * 520)).encode()
for i in range(n):
    c.sendall(req)
    got = b""
    while len(got) < len(resp):
        got += c.recv(65536)
print("200 %d done" % n)
`

// TestSlowSessionsDoNotStallReader: while the session worker is stuck (the
// span consumer blocks on the first span), a burst of ~14 MiB of events —
// more than the 8 MiB ring holds — arrives. The ring reader keeps draining
// into the records queue (records.go), so the kernel drops nothing, and once
// the consumer moves again every request of the burst becomes its two spans.
// When the reader did the session work itself, the ring filled and dropped.
func TestSlowSessionsDoNotStallReader(t *testing.T) {
	tp := newTopo(t)
	const n = 8000 // × ~1.85 KiB of ring records per round trip
	m := nonce()
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	ours := 0
	c, err := Start(Options{Node: "test", NetNS: []uint32{netnsInode(t, tp.ClientNS)}}, func(s *span.Span) {
		<-release
		if strings.HasPrefix(s.RequestResource, "/"+m+"/") {
			mu.Lock()
			ours++
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer once.Do(func() { close(release) })
	before, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "burst.py")
	if err := os.WriteFile(script, []byte(burstScript), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runClient(t, tp.ClientNS, []string{sysPython, script, fmt.Sprint(n), m})
	if len(res) != 1 || res[0].Status != 200 || res[0].Len != n {
		t.Fatalf("burst: %+v", res)
	}
	// The reader has taken the whole burst once the ring is empty (a
	// reader starved of CPU takes longer than a fixed wait).
	waitFor(t, func() bool { return c.rd.AvailableBytes() == 0 },
		func() string { return fmt.Sprintf("%d bytes still in the ring after 20 s", c.rd.AvailableBytes()) })
	during, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	events := during["events"] - before["events"]
	drops := during["drop_ringbuf"] - before["drop_ringbuf"]
	c.q.mu.Lock()
	queued := c.q.pending
	c.q.mu.Unlock()
	t.Logf("burst: %d events written, %d dropped by a full ring, %d bytes waiting for the stuck worker", events, drops, queued)
	if drops != 0 {
		t.Errorf("%d events dropped while the worker was stuck", drops)
	}
	if queued < 8<<20 {
		t.Errorf("%d bytes waited in the records queue: less than the ring holds, the test proves nothing", queued)
	}
	once.Do(func() { close(release) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		got := ours
		mu.Unlock()
		if got >= 2*n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Flush()
	mu.Lock()
	defer mu.Unlock()
	if ours != 2*n {
		t.Errorf("%d spans of the burst, want %d (client and server of %d requests)", ours, 2*n, n)
	}
}
