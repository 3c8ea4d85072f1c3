//go:build linux

package ebpf

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// servingRead: the scripts' read of one HTTP head (None at the end).
const servingRead = `
def read(s):
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        b = s.recv(4096)
        if not b:
            return None
        got += b
    return got
`

// servingScript: one keep-alive connection on loopback, a server thread and
// a client thread. A burst of 20 requests, a 50 ms pause, then one more
// request; it prints its pid and CLOCK_MONOTONIC (the clock of
// bpf_ktime_get_ns) taken just before the last request was sent, then
// lives until its stdin closes (a process's serving time goes with it:
// bpf/socket/procs.h).
const servingScript = servingRead + `
import os, socket, sys, threading, time
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
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
	pid, t0 := servingRun(t, tp, servingScript)
	var last uint64
	if err := live.c.objs.Serving.Lookup(uint32(pid), &last); err != nil {
		t.Fatalf("serving time of pid %d: %v", pid, err)
	}
	if last < t0 {
		t.Fatalf("serving time of pid %d: %d, %d ns before its last request", pid, last, t0-last)
	}
}

// servingLaterScript: a thread of a process that serves nothing yet calls an
// upstream (another process) three times on one keep-alive connection; then
// the process serves one request (a listener and a client of its own), and
// the thread calls once more. It prints its pid and the calling thread's id,
// then lives, the thread too, until its stdin closes.
const servingLaterScript = servingRead + `
import os, socket, subprocess, sys, threading
upstream = r'''` + servingRead + `
import socket
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(8)
print(ls.getsockname()[1], flush=True)
c, _ = ls.accept()
while read(c) is not None:
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
'''
up = subprocess.Popen([sys.executable, "-c", upstream], stdout=subprocess.PIPE)
port = int(up.stdout.readline())
def call(c, path):
    c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    read(c)
served, called, release = threading.Event(), threading.Event(), threading.Event()
tid = []
def worker():
    tid.append(threading.get_native_id())
    c = socket.create_connection(("127.0.0.1", port))
    for _ in range(3):
        call(c, b"/before")
    served.wait()
    call(c, b"/after")
    called.set()
    release.wait() # alive: a thread's exit drops its threads entry (procs.h)
    c.close()
w = threading.Thread(target=worker); w.start()
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
def serve():
    s, _ = ls.accept()
    read(s)
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    s.close()
t = threading.Thread(target=serve); t.start()
import time; time.sleep(0.3) # the worker's calls before: made while nothing here served
c = socket.create_connection(ls.getsockname())
call(c, b"/served")
c.close(); t.join()
served.set(); called.wait()
print(os.getpid(), tid[0], flush=True)
sys.stdin.read()
release.set(); w.join(); up.wait()
`

// TestCaptureServingLaterPoolCall: a pool thread's call in a process that
// serves no requests finds no serving time and notes it, so that its next
// calls look the map up no more (bpf/socket/handoff.h handoff_call,
// serving_none); the note must go once the process serves. After its
// process served one request, the thread's next call carries a token of its
// own (its handoff state in the threads map: a call with a token, no
// context handed). Without serving_mark's bump of serving_gen the note
// stays and the call carries none.
func TestCaptureServingLaterPoolCall(t *testing.T) {
	tp, live := liveTopo(t)
	pid, tid := servingRun(t, tp, servingLaterScript)
	var st SocketThreadState
	if err := live.c.objs.Threads.Lookup(pid<<32|tid, &st); err != nil {
		t.Fatalf("thread %d of pid %d: no handoff state after its call (%v): the call carried no token", tid, pid, err)
	}
	// HANDOFF_ANSWERED (handoffs.h): the call went out with a token and its
	// response was read.
	if st.Hand.Token == 0 || st.Hand.State != 3 || st.Hand.Unbound != 1 {
		t.Fatalf("thread %d of pid %d: handoff state %+v, want an answered unbound call with a token", tid, pid, st.Hand)
	}
}

// servingRun runs a Python script in the server namespace until the test
// ends (its stdin is closed then) and returns the two numbers of the line it
// prints (its pid, then another).
func servingRun(t *testing.T, tp *topo, script string) (pid, second uint64) {
	t.Helper()
	f := scriptRun(t, tp, script)
	if len(f) != 2 {
		t.Fatalf("script printed %q", f)
	}
	pid, err1 := strconv.ParseUint(f[0], 10, 32)
	second, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("script printed %q", f)
	}
	return pid, second
}

// scriptRun runs a Python script (/usr/bin/python3, sysPython) with args in
// the server namespace until the test ends (its stdin is closed then) and
// returns the fields of the first line it prints.
func scriptRun(t *testing.T, tp *topo, script string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", tp.ServerNS, sysPython, "-c", script}, args...)...)
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
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	out, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("script: %v %s", err, stderr.String())
	}
	return strings.Fields(out)
}
