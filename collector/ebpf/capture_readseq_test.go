//go:build linux

package ebpf

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// The TCP sequence numbers of reads against ground truth from outside the
// capture: each side of the connection takes its socket's write_seq from
// the kernel's TCP repair interface before it writes (testdata/seq/seqcheck.py),
// so a request's or a response's first byte is that number plus what was
// written before it. A span's req_tcp_seq/resp_tcp_seq are its messages'
// first events' numbers: a read's for the side that reads.

const seqScript = "testdata/seq/seqcheck.py"

// seqTruth is one line of a seqcheck client: a request's path, the TCP
// sequence numbers of its request's and its response's first bytes, and the
// client's port.
type seqTruth struct {
	path      string
	req, resp uint32
	port      uint16
}

// startSeqServer runs seqcheck.py with args in ns and waits for its READY.
func startSeqServer(t *testing.T, ns string, args ...string) {
	t.Helper()
	script, err := filepath.Abs(seqScript)
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdout, stderr := serverCmd(t, ns, append([]string{sysPython, script}, args...))
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting seqcheck %v: %v", args, err)
	}
	ready := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		r := false
		for sc.Scan() {
			if !r && sc.Text() == "READY" {
				r = true
				ready <- true
			}
		}
		if !r {
			ready <- false
		}
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("seqcheck %v exited before ready: %s", args, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("seqcheck %v not ready after 30 s", args)
	}
}

// runSeqClient runs seqcheck.py with args in ns and parses its lines.
func runSeqClient(t *testing.T, ns string, args ...string) []seqTruth {
	t.Helper()
	script, err := filepath.Abs(seqScript)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, sysPython, script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("seqcheck %v: %v\nstdout: %s\nstderr: %s", args, err, out, stderr.String())
	}
	var res []seqTruth
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r seqTruth
		if _, err := fmt.Sscanf(line, "%s %d %d %d", &r.path, &r.req, &r.resp, &r.port); err != nil {
			t.Fatalf("seqcheck %v: bad line %q: %v", args, line, err)
		}
		res = append(res, r)
	}
	return res
}

// checkSeq reports a span of tap for w whose sequence numbers or client
// port differ from w's (resp 0: not checked); it returns how many spans
// of tap w's path has.
func checkSeq(t *testing.T, spans []span.Span, tap span.TapSide, w seqTruth) int {
	t.Helper()
	got := byPath(spans, tap, w.path)
	for _, s := range got {
		if s.ReqTCPSeq != w.req || (w.resp != 0 && s.RespTCPSeq != w.resp) || s.ClientPort != w.port {
			t.Errorf("%s %s: req_tcp_seq %d resp_tcp_seq %d client port %d, want %d %d %d (the peer's write_seq)",
				w.path, tap, s.ReqTCPSeq, s.RespTCPSeq, s.ClientPort, w.req, w.resp, w.port)
		}
	}
	return len(got)
}

// TestCaptureReadSeq: for each way of reading a socket (read, recvfrom,
// readv, recvmsg, and recv with MSG_PEEK followed by a read), a server that
// reads its requests with it in 13-byte reads and a client that reads its
// responses with it, three requests on one connection: every span's request
// and response sequence numbers are the writer's write_seq plus what it
// wrote before (the numbers of reads at offsets past the start). The last
// response comes with the server's FIN and is read in one read after both
// arrived: a read that takes the FIN moves copied_seq one past its bytes.
func TestCaptureReadSeq(t *testing.T) {
	tp, live := liveTopo(t)
	m := nonce()
	var want []seqTruth
	for _, mode := range []string{"read", "recvfrom", "readv", "recvmsg", "peek"} {
		port := nextPort()
		startSeqServer(t, tp.ServerNS, "serve", mode, tp.ServerIP, fmt.Sprint(port))
		want = append(want, runSeqClient(t, tp.ClientNS, "client", mode, tp.ServerIP, fmt.Sprint(port), m, "3")...)
	}
	spans := live.Spans()
	for _, w := range want {
		for _, tap := range []span.TapSide{span.TapClientProcess, span.TapServerProcess} {
			if n := checkSeq(t, spans, tap, w); n != 1 {
				t.Errorf("%s: %d %s spans, want 1", w.path, n, tap)
			}
		}
	}
}

// TestCaptureReadSeqReusedFD: a server thread blocked in read(fd) on
// connection 1 while another thread dup2()s connection 2 onto fd; the read
// returns connection 1's request (it holds connection 1's file). That
// request's server span, if any, is connection 1's (its client port and
// sequence number), never connection 2's; connection 2's request, read
// through fd afterwards, gives its own.
func TestCaptureReadSeqReusedFD(t *testing.T) {
	tp, live := liveTopo(t)
	port := nextPort()
	flag := filepath.Join(t.TempDir(), "dup2")
	startSeqServer(t, tp.ServerNS, "reuse", tp.ServerIP, fmt.Sprint(port), flag)
	want := runSeqClient(t, tp.ClientNS, "reuseclient", tp.ServerIP, fmt.Sprint(port), nonce(), flag)
	if len(want) != 2 {
		t.Fatalf("client lines %v, want 2", want)
	}
	spans := live.Spans()
	if n := checkSeq(t, spans, span.TapServerProcess, want[0]); n > 1 {
		t.Errorf("%s: %d server spans, want at most 1", want[0].path, n)
	}
	if n := checkSeq(t, spans, span.TapServerProcess, want[1]); n != 1 {
		t.Errorf("%s: %d server spans, want 1", want[1].path, n)
	}
	for _, w := range want {
		if n := checkSeq(t, spans, span.TapClientProcess, w); n != 1 {
			t.Errorf("%s: %d client spans, want 1", w.path, n)
		}
	}
}

// TestCaptureReadSeqTwoReaders: two server threads blocked in recv on one
// socket, the client's requests of one length 5 ms apart, each read by
// whichever thread wakes: every server span's request sequence number is
// the client's write_seq plus the requests before it. A thread that began
// its read before the other took the previous request must not number its
// request from where its read began.
func TestCaptureReadSeqTwoReaders(t *testing.T) {
	tp, live := liveTopo(t)
	port := nextPort()
	startSeqServer(t, tp.ServerNS, "twin", tp.ServerIP, fmt.Sprint(port))
	want := runSeqClient(t, tp.ClientNS, "twinclient", tp.ServerIP, fmt.Sprint(port), nonce(), "100")
	spans := live.Spans()
	seen := 0
	for _, w := range want {
		seen += checkSeq(t, spans, span.TapServerProcess, w)
	}
	if seen < len(want)/2 {
		t.Errorf("%d server spans of %d requests", seen, len(want))
	}
}
