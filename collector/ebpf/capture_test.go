//go:build linux

package ebpf

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// liveCapture is the real capture collecting spans in memory.
type liveCapture struct {
	c     *Capture
	mu    sync.Mutex
	spans []span.Span
}

func (l *liveCapture) Spans() []span.Span {
	// Let the reader take what the ring holds: 300 ms, and longer while it
	// lags behind (a busy machine), then the moment it takes to publish
	// its last chunk; a fixed wait alone loses the last events when the
	// reader is starved of CPU.
	time.Sleep(300 * time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); l.c.rd.AvailableBytes() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	l.c.Flush()
	return l.Emitted()
}

// Emitted returns the spans emitted so far, without a Flush (which ends
// every connection's exchanges).
func (l *liveCapture) Emitted() []span.Span {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]span.Span(nil), l.spans...)
}

func (l *liveCapture) Close() error { return l.c.Close() }

func startLive(t *testing.T, opt Options) (*liveCapture, error) {
	t.Helper()
	testenv.RequireRoot(t) // loads BPF programs
	l := &liveCapture{}
	if opt.Node == "" {
		opt.Node = "test"
	}
	c, err := Start(opt, func(s *span.Span) {
		l.mu.Lock()
		l.spans = append(l.spans, *s)
		l.mu.Unlock()
	})
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			testenv.Skip(t, "BPF not permitted here: %v", err)
		}
		return nil, err
	}
	l.c = c
	return l, nil
}

// liveTopo makes a client and a server namespace and starts the capture
// scoped to both; the capture is closed when the test ends.
func liveTopo(t *testing.T) (*topo, *liveCapture) {
	t.Helper()
	tp := newTopo(t)
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	return tp, live
}

// liveTopoLog is liveTopo with the capture logging into the returned log;
// the capture is closed when the test ends.
func liveTopoLog(t *testing.T) (*topo, *liveCapture, *testenv.Log) {
	t.Helper()
	tp := newTopo(t)
	log := &testenv.Log{}
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)},
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	return tp, live, log
}

func netnsInode(t *testing.T, name string) uint32 {
	t.Helper()
	var st os.FileInfo
	st, err := os.Stat("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(inode(st))
}

// TestCaptureCurlPython: curl in one namespace, Python's threaded
// http.server in another, the capture scoped to both namespaces: one c-p and
// one s-p span per request with equal TCP sequence numbers, method, path,
// status and sensible durations; nothing from outside the scope.
func TestCaptureCurlPython(t *testing.T) {
	tp, live := liveTopo(t)
	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, runtimes[0].Server(t, tp.ServerIP, port, ""))
	m := nonce()
	base := fmt.Sprintf("http://%s:%d", tp.ServerIP, port)
	for i := 0; i < 3; i++ {
		out := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("%s/%s/curl%d", base, m, i)})
		if len(out) != 1 || out[0].Status != 200 {
			t.Fatalf("curl: %+v", out)
		}
	}
	spans := live.Spans()
	for i := 0; i < 3; i++ {
		c, s, ok := checkPair(t, spans, fmt.Sprintf("/%s/curl%d", m, i), 200)
		if !ok {
			continue
		}
		if c.ProcessName != "curl" || !strings.HasPrefix(s.ProcessName, "python3") {
			t.Errorf("process names %q / %q", c.ProcessName, s.ProcessName)
		}
		if c.ClientPort == 0 || s.ServerPort != uint16(port) || c.ServerIP.String() != tp.ServerIP {
			t.Errorf("addresses: c %v:%d→%v:%d, s %v:%d→%v:%d", c.ClientIP, c.ClientPort, c.ServerIP, c.ServerPort,
				s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort)
		}
	}
	for _, s := range spans {
		if s.NetNS != uint64(netnsInode(t, tp.ClientNS)) && s.NetNS != uint64(netnsInode(t, tp.ServerNS)) {
			t.Errorf("span from netns %d outside the scope: %s %s", s.NetNS, s.ProcessName, s.RequestResource)
		}
	}
	st, err := live.c.Stats()
	if err != nil || st["events"] == 0 {
		t.Errorf("stats %v %v", st, err)
	}
}

// TestCaptureTwoTierLinks: a Python server that calls a downstream server on
// the request's thread: its s-p and c-p spans share a syscall trace id.
func TestCaptureTwoTierLinks(t *testing.T) {
	tp, live := liveTopo(t)
	leaf := nextPort()
	startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	front := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, front, runtimes[0].Server(t, tp.ServerIP, front, fmt.Sprintf("http://127.0.0.1:%d", leaf)))
	m := nonce()
	path := fmt.Sprintf("/%s/two", m)
	out := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
		fmt.Sprintf("http://%s:%d%s", tp.ServerIP, front, path)})
	if out[0].Status != 200 {
		t.Fatalf("curl: %+v", out)
	}
	spans := live.Spans()
	if !checkLinked(t, spans, path) {
		for _, s := range spans {
			if strings.Contains(s.RequestResource, m) {
				t.Logf("%s pid=%d %s sys=%d/%d seq=%d/%d", s.TapSide, s.PID, s.RequestResource, s.SyscallTraceIDReq, s.SyscallTraceIDResp, s.ReqTCPSeq, s.RespTCPSeq)
			}
		}
	}
}
