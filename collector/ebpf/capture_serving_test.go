//go:build linux

package ebpf

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// servingScript: one keep-alive connection on loopback, a server thread and
// a client thread. A burst of 20 requests, a 50 ms pause, then one more
// request; it prints its pid and CLOCK_MONOTONIC (the clock of
// bpf_ktime_get_ns) taken just before the last request was sent, then
// lives until its stdin closes (a process's serving time goes with it:
// bpf/socket/procs.h).
const servingScript = `
import os, socket, sys, threading, time
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
def read(s):
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        b = s.recv(4096)
        if not b:
            return None
        got += b
    return got
def serve():
    c, _ = ls.accept()
    while read(c) is not None:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    c.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(ls.getsockname())
def get():
    c.sendall(b"GET /serving HTTP/1.1\r\nHost: x\r\n\r\n")
    read(c)
for _ in range(20):
    get()
time.sleep(0.05)
t0 = time.monotonic_ns()
get()
c.close(); t.join(); ls.close()
print(os.getpid(), t0, flush=True)
sys.stdin.read()
`

// TestCaptureServingRewritten: a thread rewrites its process's serving time
// (bpf/socket/causality.h serving_mark, read by a pool call's handoff.h
// check) at most once per ~1 ms and skips the map in between; a request
// that comes later than that must still move it. After a burst of requests
// and a 50 ms pause, the time the capture holds for the process is not
// before the last request.
func TestCaptureServingRewritten(t *testing.T) {
	tp, live := liveTopo(t)
	cmd := exec.Command("ip", "netns", "exec", tp.ServerNS, sysPython, "-c", servingScript)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	out, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("script: %v %s", err, stderr.String())
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("script printed %q", out)
	}
	pid, err1 := strconv.ParseUint(f[0], 10, 32)
	t0, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("script printed %q", out)
	}
	var last uint64
	if err := live.c.objs.Serving.Lookup(uint32(pid), &last); err != nil {
		t.Fatalf("serving time of pid %d: %v", pid, err)
	}
	if last < t0 {
		t.Fatalf("serving time of pid %d: %d, %d ns before its last request", pid, last, t0-last)
	}
}
