//go:build linux

package ebpf

import (
	"fmt"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestFlushTakesWhatTheRingHolds: Flush called at once after a client has
// exited ends the exchange with every event the kernel wrote for it, though
// the reader had not woken yet (it polls every 10 ms; the programs write
// without waking it): the client's and the server's spans of each request
// are there, whole. Before Flush waited for the reader, they were missing
// (the ring not read yet) or cut short, unless the caller slept first.
func TestFlushTakesWhatTheRingHolds(t *testing.T) {
	tp, live := liveTopo(t)
	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, runtimes[0].Server(t, tp.ServerIP, port, ""))
	live.Spans() // the readiness probes' spans, out of the way
	for i := range 5 {
		path := fmt.Sprintf("/%s/flush%d", nonce(), i)
		res := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d%s", tp.ServerIP, port, path)})
		if len(res) != 1 || res[0].Status != 200 {
			t.Fatalf("curl: %+v", res)
		}
		live.c.Flush()
		live.mu.Lock()
		spans := append([]span.Span(nil), live.spans...)
		live.mu.Unlock()
		if _, _, ok := checkPair(t, spans, path, 200); !ok {
			t.Fatalf("request %d: its spans were not there right after Flush", i)
		}
	}
}
