//go:build linux

package ebpf

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCapturePoolHandoff: a Python server hands both downstream calls of
// every request to a shared ThreadPoolExecutor, under 32 concurrent
// requests. Whatever context id a pool worker's call carries must be the
// id of the server request it was made for (the path marker, which the
// capture does not use for causality, is the ground truth); the test reports
// how many calls got one (the handoff and its verdict, bpf/socket/handoff.h).
func TestCapturePoolHandoff(t *testing.T) {
	tp := newTopo(t)
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	leaf := nextPort()
	startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	front := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, front, []string{"python3", "-u", filepath.Join(runtimeDir(t), "pool.py"),
		tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf)})
	m := nonce()
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runClientE(tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
				fmt.Sprintf("http://%s:%d/%s/r%d/", tp.ServerIP, front, m, i)})
			if err == nil && out[0].Status != 200 {
				err = fmt.Errorf("request %d: %+v", i, out)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	spans := live.Spans()
	st, _ := live.c.Stats()
	t.Logf("kernel counters: %v", st)
	request := func(s *span.Span) string { // "/<m>/r7/..." → "r7"
		p := strings.Split(strings.TrimPrefix(s.RequestResource, "/"+m+"/"), "/")
		return p[0]
	}
	servers := map[uint64]*span.Span{} // context id → front s-p
	var fronts []*span.Span
	for i := range spans {
		s := &spans[i]
		if s.TapSide == span.TapServerProcess && s.ServerPort == uint16(front) && strings.HasPrefix(s.RequestResource, "/"+m+"/") {
			fronts = append(fronts, s)
			if s.SyscallTraceIDReq != 0 {
				servers[s.SyscallTraceIDReq] = s
			}
		}
	}
	if len(fronts) != n {
		t.Fatalf("%d front server spans, want %d", len(fronts), n)
	}
	overlap := 0
	for _, a := range fronts {
		k := 0
		for _, b := range fronts {
			if b.StartNs < a.EndNs && b.EndNs > a.StartNs {
				k++
			}
		}
		overlap = max(overlap, k)
	}
	var calls, linked int
	for i := range spans {
		c := &spans[i]
		if c.TapSide != span.TapClientProcess || c.ServerPort != uint16(leaf) || !strings.HasPrefix(c.RequestResource, "/"+m+"/") {
			continue
		}
		calls++
		if c.SyscallTraceIDReq&(1<<63) != 0 || c.SyscallTraceIDResp&(1<<63) != 0 {
			t.Errorf("call %s keeps a provisional context %x/%x", c.RequestResource, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
		}
		if c.SyscallTraceIDReq == 0 && c.SyscallTraceIDResp == 0 {
			continue
		}
		s, ok := servers[c.SyscallTraceIDReq]
		if !ok || c.SyscallTraceIDResp != c.SyscallTraceIDReq {
			t.Errorf("call %s: context %x/%x is no front request's", c.RequestResource, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
			continue
		}
		if request(s) != request(c) {
			t.Errorf("call %s carries the context of request %s", c.RequestResource, s.RequestResource)
			continue
		}
		linked++
	}
	if calls != 2*n {
		t.Errorf("%d calls, want %d", calls, 2*n)
	}
	if overlap < 8 {
		t.Errorf("at most %d requests overlapped, want ≥ 8", overlap)
	}
	t.Logf("pool handoff: %d of %d calls carry their request's context (the rest none), %d requests overlapped", linked, calls, overlap)
	fmt.Printf("pool handoff (python, %d concurrent): %d/%d calls linked, 0 wrong, overlap %d\n", n, linked, calls, overlap)
}
