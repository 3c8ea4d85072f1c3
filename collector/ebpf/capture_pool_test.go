//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/inflight"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCapturePoolHandoff: a Python server hands both downstream calls of
// every request to a shared ThreadPoolExecutor, under 32 concurrent
// requests. Whatever context id a pool worker's call carries must be the
// id of the server request it was made for (the path marker, which the
// capture does not use for causality, is the ground truth); the test reports
// how many calls got one (the handoff and its verdict, bpf/socket/handoff.h).
func TestCapturePoolHandoff(t *testing.T) {
	// The pool's work queue is followed (bpf/socket/pyqueue.h): every call
	// should carry its request's context (64 of 64 in every run measured).
	checkContexts(t, "python pool", 2, 60, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{sysPython, "-u", filepath.Join(runtimeDir(t), "pool.py"),
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf)})
	})
}

// TestCaptureJavaHTTPClient: a Java server whose handler threads call a
// downstream through one shared java.net.http.HttpClient: the client's
// selector thread reads every connection's responses and completes the
// callers' futures, one thread multiplexing the calls of many requests.
// The same check as the pool test: here it guards against wrong contexts
// (a multiplexing thread's calls must not share one); few calls get one
// (0–4 of 32 measured), so no floor is asserted on them.
func TestCaptureJavaHTTPClient(t *testing.T) {
	testenv.RequireBinaries(t, "java", "javac")
	dir := javaClasses(t)
	checkContexts(t, "java HttpClient", 1, 0, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{"java", "-cp", dir, "Server",
			tp.ServerIP, fmt.Sprint(front), fmt.Sprintf("http://127.0.0.1:%d", leaf), "httpclient"})
	})
}

// TestCaptureGoGoroutines: a Go net/http service whose handler calls a
// downstream through a shared keep-alive http.Client: the Transport writes
// and reads on goroutines of its own, woken over channels by the handler's
// goroutine. The same check as the pool test; the goroutines are tracked by
// the runtime.send uprobe (bpf/socket/goroutine.h): 27–32 of the 32 calls
// carry their request's context in the runs measured (a call whose caller
// was not yet waiting when the write goroutine reported the write keeps
// none), so at least 24 must; without goroutine tracking none does.
func TestCaptureGoGoroutines(t *testing.T) {
	bin := buildPeer(t, "gohttp")
	checkContexts(t, "go net/http", 1, 24, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
		return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{bin, fmt.Sprintf("%s:%d", tp.ServerIP, front),
			fmt.Sprintf("http://127.0.0.1:%d", leaf)})
	})
}

// TestCaptureGoStripped: the same Go service built without a symbol table
// (-ldflags=-s -w): the goroutine uprobes cannot be attached, so the
// collector logs the binary and why, its calls keep no context (causality
// falls back to containment), and the capture still records every request
// and call.
func TestCaptureGoStripped(t *testing.T) {
	bin := buildPeer(t, "gohttp", "-ldflags=-s -w")
	tp, live, log := liveTopoLog(t)
	leaf, front := nextPort(), nextPort()
	startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	srv := startServer(t, tp.ServerNS, tp.ServerIP, front, []string{bin, fmt.Sprintf("%s:%d", tp.ServerIP, front),
		fmt.Sprintf("http://127.0.0.1:%d", leaf)})
	pid := uint32(srv.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(live.c.guard.Untrusted(pid), "stripped"); {
		if time.Now().After(deadline) {
			t.Fatalf("the stripped Go program is not marked untracked: %q", live.c.guard.Untrusted(pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := nonce()
	const n = 8
	for i := 0; i < n; i++ {
		runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d/%s/r%d/", tp.ServerIP, front, m, i)})
	}
	live.c.Flush()
	var servers, calls int
	for _, s := range live.Spans() {
		if !strings.HasPrefix(s.RequestResource, "/"+m+"/") || s.PID != pid {
			continue
		}
		switch s.TapSide {
		case span.TapServerProcess:
			servers++
		case span.TapClientProcess:
			calls++
		default:
			continue
		}
		if s.SyscallTraceIDReq != 0 || s.SyscallTraceIDResp != 0 {
			t.Errorf("%s %s keeps a context %x/%x in a program whose goroutines are not tracked", s.TapSide, s.RequestResource,
				s.SyscallTraceIDReq, s.SyscallTraceIDResp)
		}
	}
	if servers != n || calls != n {
		t.Errorf("%d server spans and %d calls of the stripped program, want %d each", servers, calls, n)
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if out := log.String(); !strings.Contains(out, "stripped") || !strings.Contains(out, exe) {
		t.Errorf("the log does not name the binary (%s) and why:\n%s", exe, out)
	}
}

// waitFor waits up to 20 s for cond, failing the test with why() otherwise.
func waitFor(t *testing.T, cond func() bool, why func() string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
	}
}

// checkContexts runs a leaf server and, through start, a front service that
// makes perRequest calls to it for each of 32 concurrent requests. Whatever
// context id a call carries must be the id of the server request it was
// made for (the path marker, which causality does not use, is the ground
// truth); it reports how many calls carry one.
func checkContexts(t *testing.T, name string, perRequest, minLinked int, start func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd) {
	tp, live := liveTopo(t)
	checkContextsIn(t, tp, live, name, perRequest, minLinked, start)
}

// checkContextsIn is checkContexts in a topology whose capture runs.
func checkContextsIn(t *testing.T, tp *topo, live *liveCapture, name string, perRequest, minLinked int, start func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd) {
	checkContextsLeaf(t, tp, live, name, perRequest, minLinked, func(t *testing.T, tp *topo, leaf int) {
		startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	}, start)
}

// checkContextsLeaf is checkContextsIn with a leaf server of its own,
// started by startLeaf on 127.0.0.1:leaf of the server's namespace.
func checkContextsLeaf(t *testing.T, tp *topo, live *liveCapture, name string, perRequest, minLinked int, startLeaf func(t *testing.T, tp *topo, leaf int), start func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd) {
	leaf := nextPort()
	startLeaf(t, tp, leaf)
	front := nextPort()
	srv := start(t, tp, front, leaf)
	// A Go program's goroutines are tracked once the collector has attached
	// its uprobes (asynchronously, after the process's first event: the
	// readiness probe); its calls carry no context before that.
	pid := uint32(srv.Process.Pid)
	waitFor(t, func() bool { return !live.c.guard.IsGoProcess(pid) || live.c.guard.Untrusted(pid) == "" },
		func() string {
			return fmt.Sprintf("goroutines of %s not tracked: %s", name, live.c.guard.Untrusted(pid))
		})
	// A Python program's work queues are followed once the collector has
	// attached the _queue module's uprobes (likewise after its first event).
	if strings.HasPrefix(name, "python") {
		waitFor(t, func() bool { return live.c.QueuesFollowed(pid) },
			func() string { return "work queues of " + name + " not followed" })
	}
	// A Node.js program's turns likewise (the node executable's uprobes).
	if strings.HasPrefix(name, "node") {
		waitFor(t, func() bool { return live.c.TurnsFollowed(pid) },
			func() string { return "event-loop turns of " + name + " not followed" })
	}
	// An asyncio program's tasks likewise (the _asyncio module's uprobes).
	if strings.HasPrefix(name, "asyncio") {
		waitFor(t, func() bool { return live.c.TasksFollowed(pid) },
			func() string { return "tasks of " + name + " not followed" })
	}
	// In flight together at the front server (not pairwise overlaps): 12–25
	// measured across the pool, Java and Go services. A batch that a loaded
	// machine ran almost one request at a time proves nothing about
	// concurrency: another is sent (every batch's contexts are checked).
	best := 0
	for round := 1; round <= overlapRounds && best < minContextOverlap; round++ {
		r := runContextRound(t, tp, live, perRequest, front, leaf)
		best = max(best, r.overlap)
		if r.linked < minLinked {
			t.Errorf("%d calls carry their request's context, want ≥ %d", r.linked, minLinked)
		}
		fmt.Printf("%s (%d concurrent): %d/%d calls carry their request's context, %d wrong, overlap %d, %d background calls and shipments\n",
			name, contextRequests, r.linked, r.calls, r.wrong, r.overlap, r.background)
	}
	if best < minContextOverlap {
		t.Errorf("at most %d requests in the front server at once in %d batches, want ≥ %d", best, overlapRounds, minContextOverlap)
	}
}

// contextRequests is how many concurrent requests a batch of checkContexts
// sends; minContextOverlap how many of them one batch must have had in the
// front server at once.
const contextRequests, minContextOverlap = 32, 8

// contextRound is what one batch of checkContexts measured.
type contextRound struct{ linked, calls, wrong, overlap, background int }

// runContextRound sends one batch of contextRequests concurrent requests to
// the front service and checks the context every call to the leaf carries.
func runContextRound(t *testing.T, tp *topo, live *liveCapture, perRequest, front, leaf int) contextRound {
	const n = contextRequests
	m := nonce()
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
	inFront := make([]span.Span, len(fronts))
	for i, s := range fronts {
		inFront[i] = *s
	}
	overlap := inflight.Max(inFront)
	var calls, linked, wrong, background int
	for i := range spans {
		c := &spans[i]
		if c.TapSide == span.TapClientProcess && c.ServerPort == uint16(leaf) && (c.RequestResource == "/bg" || c.RequestResource == "/ship") {
			// pool.py's background calls and batch shipments: made for no
			// one request
			background++
			if c.SyscallTraceIDReq != 0 || c.SyscallTraceIDResp != 0 {
				t.Errorf("call %s (for no one request) carries context %x/%x", c.RequestResource, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
				wrong++
			}
			continue
		}
		if c.TapSide != span.TapClientProcess || c.ServerPort != uint16(leaf) || !strings.HasPrefix(c.RequestResource, "/"+m+"/") {
			continue
		}
		calls++
		if c.SyscallTraceIDReq>>62 != 0 || c.SyscallTraceIDResp>>62 != 0 {
			t.Errorf("call %s keeps a flag bit in its context %x/%x", c.RequestResource, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
		}
		if c.SyscallTraceIDReq == 0 && c.SyscallTraceIDResp == 0 {
			continue
		}
		id := c.SyscallTraceIDReq | c.SyscallTraceIDResp
		s, ok := servers[id]
		if !ok || (c.SyscallTraceIDReq != 0 && c.SyscallTraceIDReq != id) || (c.SyscallTraceIDResp != 0 && c.SyscallTraceIDResp != id) {
			t.Errorf("call %s: context %x/%x is no front request's", c.RequestResource, c.SyscallTraceIDReq, c.SyscallTraceIDResp)
			wrong++
			continue
		}
		if request(s) != request(c) {
			t.Errorf("call %s carries the context of request %s", c.RequestResource, s.RequestResource)
			wrong++
			continue
		}
		linked++
	}
	if calls != perRequest*n {
		t.Errorf("%d calls, want %d", calls, perRequest*n)
	}
	return contextRound{linked, calls, wrong, overlap, background}
}
