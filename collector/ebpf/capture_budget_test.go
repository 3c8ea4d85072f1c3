//go:build linux

package ebpf

import (
	"fmt"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureSpanBudget: with a budget of 1 span/s, 10 curl requests (each
// on a connection of its own, 400 ms apart) to a Python server: whole
// connections are shed, never a part of one, and some are admitted. Every connection (10 client, 10 server
// sockets) either gave its one complete span (status 200, not a timeout)
// or was counted as shed: spans + shed = 20 exactly.
func TestCaptureSpanBudget(t *testing.T) {
	tp := newTopo(t)
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}, SpanBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, runtimes[0].Server(t, tp.ServerIP, port, ""))
	shed0, _ := live.c.ShedStats() // the server's readiness probes
	spans0 := len(live.Spans())
	m := nonce()
	for i := range 10 {
		res := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d/%s/budget%d", tp.ServerIP, port, m, i)})
		if len(res) != 1 || res[0].Status != 200 {
			t.Fatalf("curl %d: %+v", i, res)
		}
		time.Sleep(400 * time.Millisecond)
	}
	spans := live.Spans()[spans0:]
	shed, events := live.c.ShedStats()
	shed -= shed0
	ours := 0
	for _, s := range spans {
		ok := len(s.RequestResource) > len(m) && s.RequestResource[1:1+len(m)] == m
		if !ok {
			t.Errorf("foreign span %s %s", s.TapSide, s.RequestResource)
			continue
		}
		ours++
		if s.ResponseStatus != span.StatusOK || s.ResponseCode != 200 || s.EndNs < s.StartNs {
			t.Errorf("cut span: %s %s status %v code %d", s.TapSide, s.RequestResource, s.ResponseStatus, s.ResponseCode)
		}
	}
	if ours+int(shed) != 20 {
		t.Errorf("%d spans + %d shed connections, want 20", ours, shed)
	}
	if shed == 0 || events == 0 || ours == 0 {
		t.Errorf("nothing shed at 1 span/s: %d spans, %d shed, %d events dropped", ours, shed, events)
	}
	t.Logf("%d spans, %d connections shed (%d events)", ours, shed, events)
}
