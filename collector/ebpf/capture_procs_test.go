//go:build linux

package ebpf

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureProcessEnds: a pid's next process is not taken for the one
// that had it before (bpf/socket/procs.h, processes.go). A Go server is
// tracked (go_procs lists it, and serving once it served) and killed; its
// entries go with it. A Debian
// Python server is then started at the same pid (ns_last_pid): its spans
// carry its own name and command line, not the Go server's, and the Go
// tracker does not list it. A client that makes a call from bash and then
// execs curl has each call under the program that made it. The ground
// truth is what the test started, and the paths it asked for.
func TestCaptureProcessEnds(t *testing.T) {
	haveBins(t, "curl", "bash", sysPython)
	bin := buildPeer(t, "gohttp")
	tp, live := liveTopo(t)
	leaf := nextPort()
	startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	m := nonce()

	// A Go server, tracked, then killed.
	front := nextPort()
	gosrv := startServer(t, tp.ServerNS, tp.ServerIP, front, []string{bin, fmt.Sprintf("%s:%d", tp.ServerIP, front),
		fmt.Sprintf("http://127.0.0.1:%d", leaf)})
	pid := uint32(gosrv.Process.Pid)
	runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
		fmt.Sprintf("http://%s:%d/%s/go/", tp.ServerIP, front, m)})
	listed := func() bool {
		var off uint16
		return live.c.objs.GoProcs.Lookup(pid, &off) == nil
	}
	waitFor(t, listed, func() string { return fmt.Sprintf("the Go server (pid %d) is not listed in go_procs", pid) })
	serving := func() bool {
		var ts uint64
		return live.c.objs.Serving.Lookup(pid, &ts) == nil
	}
	if !serving() {
		t.Fatalf("serving does not list the Go server (pid %d), which served a request", pid)
	}
	gosrv.Process.Kill()
	waitFor(t, func() bool { _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); return err != nil },
		func() string { return fmt.Sprintf("pid %d did not exit", pid) })
	waitFor(t, func() bool { return !listed() },
		func() string { return fmt.Sprintf("go_procs still lists pid %d after its process ended", pid) })
	if serving() {
		t.Errorf("serving still lists pid %d after its process ended: its next process's calls would wait for claims", pid)
	}

	// A Python server at the same pid.
	py := nextPort()
	startServerAtPID(t, pid, tp.ServerNS, tp.ServerIP, py, []string{sysPython, "-u",
		filepath.Join(runtimeDir(t), "server.py"), tp.ServerIP, fmt.Sprint(py)})
	const n = 4
	for i := 0; i < n; i++ {
		runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d/%s/py/r%d", tp.ServerIP, py, m, i)})
	}

	// Clients that call from bash (its own reads and writes on
	// /dev/tcp), then exec curl for a second call: one waits a second
	// before its exec, so the capture looks the process up while it is
	// bash; the other execs at once, so the lookup may come after the exec
	// (then the thread's name tells the programs apart: collector/proc).
	for _, wait := range []string{"sleep 1", ":"} {
		tag := strings.Fields(wait)[0]
		script := fmt.Sprintf(`exec 3<>/dev/tcp/%[1]s/%[2]d
printf 'GET /%[3]s/exec/%[4]s/bash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
while IFS= read -r l <&3; do :; done
%[5]s
exec curl -s -o /dev/null http://%[1]s:%[2]d/%[3]s/exec/%[4]s/curl`, tp.ServerIP, py, m, tag, wait)
		if out, err := exec.Command("ip", "netns", "exec", tp.ClientNS, "bash", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("bash client: %v %s", err, out)
		}
	}

	live.c.Flush()
	pyServed, calls := 0, map[string]string{}
	for _, s := range live.Spans() {
		if !strings.HasPrefix(s.RequestResource, "/"+m+"/") {
			continue
		}
		switch {
		case strings.HasPrefix(s.RequestResource, "/"+m+"/py/") && s.TapSide == span.TapServerProcess:
			pyServed++
			if s.PID != pid || !strings.HasPrefix(s.ProcessName, "python3") || !strings.Contains(s.Cmdline, "server.py") {
				t.Errorf("%s served by pid %d as %q (%q), want pid %d as python3 running server.py",
					s.RequestResource, s.PID, s.ProcessName, s.Cmdline, pid)
			}
		case strings.HasPrefix(s.RequestResource, "/"+m+"/exec/") && s.TapSide == span.TapClientProcess:
			calls[s.RequestResource] = s.ProcessName
		}
	}
	if pyServed != n {
		t.Errorf("%d spans served by the Python server, want %d", pyServed, n)
	}
	for _, tag := range []string{"sleep", ":"} {
		for _, who := range []string{"bash", "curl"} {
			if got := calls["/"+m+"/exec/"+tag+"/"+who]; got != who {
				t.Errorf("the call made by %s (%s before its exec) was made by %q (calls: %v)", who, tag, got, calls)
			}
		}
	}
	if listed() {
		t.Errorf("go_procs lists pid %d, now a Python program", pid)
	}
}

// startServerAtPID is startServer for a process that must get pid (free):
// ns_last_pid is set just before each start, which another fork on the host
// can win; up to 100 tries.
func startServerAtPID(t *testing.T, pid uint32, ns, host string, port int, argv []string) {
	t.Helper()
	for try := 0; try < 100; try++ {
		cmd, stdout, stderr := serverCmd(t, ns, argv)
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(fmt.Sprint(pid-1)), 0); err != nil {
			t.Fatalf("setting ns_last_pid: %v", err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %v: %v", argv, err)
		}
		if uint32(cmd.Process.Pid) != pid {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			continue
		}
		watchServer(t, cmd, stdout, stderr, ns, fmt.Sprintf("http://%s:%d/ready", host, port), argv)
		return
	}
	t.Fatalf("no start of %v got pid %d in 100 tries", argv, pid)
}

// tidReuseScript serves one request on a thread that ends without
// answering it, then starts threads until one gets the ended thread's id
// (ns_last_pid, up to 100 tries) and has that one call the leaf. It prints
// "ready", then "reused TID" or "not reused TID", and closes the request's
// connection unanswered (an answer from another thread would tell the
// capture that requests move between this process's threads).
const tidReuseScript = `import socket, sys, threading
host, port, leaf, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(8)
print("ready", flush=True)
conn, _ = srv.accept()
tid = [0]
def serve():
    tid[0] = threading.get_native_id()
    conn.recv(65536)
t = threading.Thread(target=serve)
t.start()
t.join()
got = [False]
def call(want):
    if threading.get_native_id() != want:
        return
    got[0] = True
    c = socket.create_connection(("127.0.0.1", leaf))
    c.sendall(("GET /%s/call HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % marker).encode())
    while c.recv(65536):
        pass
    c.close()
for i in range(100):
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(tid[0] - 1))
    b = threading.Thread(target=call, args=(tid[0],))
    b.start()
    b.join()
    if got[0]:
        break
print("reused" if got[0] else "not reused", tid[0], flush=True)
conn.close()
`

// TestCaptureThreadIDReused: a thread that ends while it holds a request
// (read, not answered) leaves nothing to the next thread given its id
// (bpf/socket/procs.h): that thread's call is not linked to the request.
// On a host whose pid_max is 32,768 thread ids come back within seconds
// under load; ns_last_pid forces it here. The ground truth is what the
// script did: the call was made by a thread that never read a request.
func TestCaptureThreadIDReused(t *testing.T) {
	haveBins(t, "curl", sysPython)
	tp, live := liveTopo(t)
	leaf := nextPort()
	startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	script := filepath.Join(t.TempDir(), "tidreuse.py")
	if err := os.WriteFile(script, []byte(tidReuseScript), 0o644); err != nil {
		t.Fatal(err)
	}
	m := nonce()
	front := nextPort()
	cmd, stdout, stderr := serverCmd(t, tp.ServerNS, []string{sysPython, "-u", script, tp.ServerIP, fmt.Sprint(front), fmt.Sprint(leaf), m})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("script ended early: %s", stderr.String())
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("script silent for 30 s: %s", stderr.String())
		}
		return ""
	}
	if l := next(); l != "ready" {
		t.Fatalf("script: %q, want ready", l)
	}
	out := runClient(t, tp.ClientNS, []string{"bash", "-c", fmt.Sprintf(
		"curl -s -o /dev/null --max-time 30 -w '%%{http_code} %%{size_download} %%{url_effective}\\n' http://%s:%d/%s/front; true", tp.ServerIP, front, m)})
	if l := next(); !strings.HasPrefix(l, "reused ") {
		t.Fatalf("script: %q: no thread got the ended thread's id in 100 tries", l)
	}
	if len(out) != 1 || out[0].Status != 0 {
		t.Fatalf("curl: %+v, want no answer", out)
	}
	live.c.Flush()
	spans := live.Spans()
	fronts := byPath(spans, span.TapServerProcess, "/"+m+"/front")
	var calls []span.Span
	for _, s := range byPath(spans, span.TapClientProcess, "/"+m+"/call") {
		if s.PID == uint32(cmd.Process.Pid) {
			calls = append(calls, s)
		}
	}
	if len(fronts) != 1 || len(calls) != 1 {
		t.Fatalf("%d server spans of the request, %d client spans of the call; want 1 and 1", len(fronts), len(calls))
	}
	if id := fronts[0].SyscallTraceIDReq; id != 0 && calls[0].SyscallTraceIDReq == id {
		t.Errorf("the call of a thread that never read a request is linked to the request its id's former thread held (syscall trace id %#x)", id)
	}
}

// TestCaptureShortLivedClient: a client that has exited before the session
// worker handles its first event keeps its program's name, command line
// and container: the exec's event carries them (bpf/socket/procs.h
// note_exec: the program file's name, the arguments the kernel copied, the
// cgroup id). The worker is held (its drain lock) while the clients run and
// exit, as on a node where it runs behind; they run in a cgroup this test
// makes, with the kubelet's layout. Before the change a span had the
// client's thread name alone (no command line, no container); with the
// ring reader reading /proc at the exec (the first fix), it lost both
// whenever the reader's 10 ms poll came after the exit; with the thread's
// name for the program's, Python was python3 where /proc says python3.11.
// The ground truth is the command the test ran, with a marker the request
// also carries, the program file behind it, and the cgroup it made.
func TestCaptureShortLivedClient(t *testing.T) {
	haveBins(t, "curl", "sh", sysPython)
	tp, live := liveTopo(t)
	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, runtimes[0].Server(t, tp.ServerIP, port, ""))
	m := nonce()
	url := fmt.Sprintf("http://%s:%d/%s/", tp.ServerIP, port, m)
	const podUID = "5f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5"
	containerID := fmt.Sprintf("%064x", time.Now().UnixNano())
	cg := testCgroup(t, "kubepods/besteffort/pod"+podUID+"/"+containerID)
	// Two programs: curl, and Debian's Python started through its link
	// (python3 -> python3.11), whose thread is named python3 but whose
	// program, as /proc/<pid>/exe names it, is python3.11.
	clients := []struct {
		path string
		argv []string
	}{
		{"curl", []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "curl"}},
		{"py", []string{sysPython, "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).status, end='')", url + "py"}},
	}

	live.c.draining.Lock()
	held := true
	defer func() {
		if held {
			live.c.draining.Unlock()
		}
	}()
	for _, cl := range clients {
		// Into the cgroup before `ip netns exec`, which mounts a sysfs of
		// its own: sh, then ip, then the client, one process.
		args := append([]string{"-c", `echo $$ > "$0"/cgroup.procs && exec ip netns exec "$@"`, cg, tp.ClientNS}, cl.argv...)
		out, err := exec.Command("sh", args...).CombinedOutput()
		if err != nil || string(out) != "200" {
			t.Fatalf("%s in cgroup %s: %v: %s", cl.path, cg, err, out)
		}
	}
	// The reader has taken the ring's records (the worker still holds none
	// of them) once the ring is empty.
	waitFor(t, func() bool { return live.c.rd.AvailableBytes() == 0 },
		func() string { return "the ring reader did not take the clients' events" })
	time.Sleep(50 * time.Millisecond)
	live.c.draining.Unlock()
	held = false

	spans := live.Spans()
	for _, cl := range clients {
		bin, err := exec.LookPath(cl.argv[0])
		if err == nil {
			bin, err = filepath.EvalSymlinks(bin)
		}
		if err != nil {
			t.Fatal(err)
		}
		var got []span.Span
		for _, s := range spans {
			if s.RequestResource == "/"+m+"/"+cl.path && s.TapSide == span.TapClientProcess {
				got = append(got, s)
			}
		}
		if len(got) != 1 {
			t.Errorf("%d client spans of the short-lived %s, want 1", len(got), cl.path)
			continue
		}
		s := got[0]
		if s.ProcessName != filepath.Base(bin) || !strings.HasPrefix(s.Cmdline, cl.argv[0]+" ") || !strings.HasSuffix(s.Cmdline, url+cl.path) {
			t.Errorf("the short-lived %s's span says process %q, command line %q; want %s and its command line with %s",
				cl.path, s.ProcessName, s.Cmdline, filepath.Base(bin), url+cl.path)
		}
		if s.ContainerID != containerID {
			t.Errorf("the short-lived %s's span says container %q; want %s, the cgroup it ran in", cl.path, s.ContainerID, containerID)
		}
	}
}

// TestCaptureSameNameExec: a client that, once its request is answered,
// execs another program of its own name (Python running Python, as a shell
// script's exec of a shell) keeps its thread's name: only where the new
// program's arguments lie tells /proc's program from the request's. The
// worker is held until the second program runs, so that the request's
// first lookup reads /proc after the second exec. The span must carry the
// first program's command line (its request's marker), not the second's.
func TestCaptureSameNameExec(t *testing.T) {
	haveBins(t, sysPython)
	tp, live := liveTopo(t)
	port := nextPort()
	startServer(t, tp.ServerNS, tp.ServerIP, port, runtimes[0].Server(t, tp.ServerIP, port, ""))
	m := nonce()
	url := fmt.Sprintf("http://%s:%d/%s/first", tp.ServerIP, port, m)
	second := url + "-again" // the second program's argument
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(`import os, sys, urllib.request
urllib.request.urlopen(sys.argv[1]).read()
os.execv(sys.executable, [os.path.basename(sys.executable), "-c",
    "import sys, time; print('ready', flush=True); time.sleep(30)", sys.argv[1] + "-again"])
`), 0o644); err != nil {
		t.Fatal(err)
	}

	live.c.draining.Lock()
	held := true
	defer func() {
		if held {
			live.c.draining.Unlock()
		}
	}()
	cmd, out := startPiped(t, tp.ClientNS, sysPython, script, url)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("the second program did not start: %q, %v", out.Text(), out.Err())
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); err != nil || !strings.Contains(string(b), second) {
		t.Fatalf("/proc does not show the second program: %q, %v", b, err)
	}
	waitFor(t, func() bool { return live.c.rd.AvailableBytes() == 0 },
		func() string { return "the ring reader did not take the client's events" })
	live.c.draining.Unlock()
	held = false

	var got []span.Span
	for _, s := range live.Spans() {
		if s.RequestResource == "/"+m+"/first" && s.TapSide == span.TapClientProcess {
			got = append(got, s)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d client spans of the request, want 1", len(got))
	}
	if c := got[0].Cmdline; !strings.HasSuffix(c, " "+url) {
		t.Errorf("the request's span says command line %q; want the first program's, with %s", c, url)
	}
}

// testCgroup makes cgroup path (slash-separated) below a directory of its
// own on the host's cgroup2 mount, and removes them at the test's end.
func testCgroup(t *testing.T, path string) string {
	t.Helper()
	var mount string
	for _, m := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(m, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			mount = m
			break
		}
	}
	if mount == "" {
		t.Fatal("no cgroup2 mount")
	}
	dir := filepath.Join(mount, "zt-test-"+nonce(), path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for d := dir; d != mount; d = filepath.Dir(d) {
			if err := os.Remove(d); err != nil {
				t.Errorf("removing the test's cgroup: %v", err)
				return
			}
		}
	})
	return dir
}

// exitScript serves one HTTP request on host:port (argv 1, 2) and ends its
// process without a close: "until-close" answers HTTP/1.0 with a body of
// argv 4 bytes and no length, which only the connection's end delimits,
// then _exits (the kernel closes the socket); "stall" reads the request,
// prints READ and waits to be killed.
const exitScript = `
import os, socket, sys, time
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(8)
print("READY", flush=True)
c, _ = s.accept()
buf = b""
while b"\r\n\r\n" not in buf:
    d = c.recv(4096)
    if not d:
        os._exit(1)
    buf += d
if mode == "until-close":
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"z" * int(sys.argv[4]))
    os._exit(0)
print("READ", flush=True)
time.sleep(600)
`

// TestCaptureProcessExitCloses: a process that ends without closing its
// sockets (the kernel closes them at its exit; no close syscall comes)
// has its connections' exchanges ended at its exit event, not when they
// have been idle three timeouts long (30 s here): a response delimited by
// the connection's end is complete with its exact length (curl's count is
// the ground truth), and a request its server never answered (the server
// killed) ends as a timeout at the kill, not a timeout later. Both spans
// must come within 5 s of the exit, half the capture's 10-s timeout.
func TestCaptureProcessExitCloses(t *testing.T) {
	haveBins(t, "curl", sysPython)
	tp, live := liveTopo(t)
	m := nonce()
	start := func(port int, args ...string) (*exec.Cmd, *bufio.Scanner) {
		cmd, sc := startPiped(t, tp.ServerNS, append([]string{sysPython, "-c", exitScript, tp.ServerIP, fmt.Sprint(port)}, args...)...)
		if !sc.Scan() || sc.Text() != "READY" {
			t.Fatalf("server %v did not start: %q", args, sc.Text())
		}
		return cmd, sc
	}
	serverSpan := func(path string, within time.Duration) (span.Span, bool) {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, s := range live.Emitted() {
				if s.RequestResource == path && s.TapSide == span.TapServerProcess {
					return s, true
				}
			}
		}
		return span.Span{}, false
	}

	// A response delimited by the end of its process.
	const size = 70001
	port := nextPort()
	srv, _ := start(port, "until-close", fmt.Sprint(size))
	path := "/" + m + "/until-close"
	res := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
		fmt.Sprintf("http://%s:%d%s", tp.ServerIP, port, path)})
	if len(res) != 1 || res[0].Status != 200 || res[0].Len != size {
		t.Fatalf("curl got %+v, want one 200 of %d bytes", res, size)
	}
	srv.Wait()
	exited := time.Now()
	s, ok := serverSpan(path, 5*time.Second)
	if !ok {
		t.Fatalf("no server span of %s within 5 s of its process's exit", path)
	}
	t.Logf("span of the response ended by the exit: %v after the exit", time.Since(exited).Round(time.Millisecond))
	if s.ResponseCode != 200 || s.ResponseStatus != span.StatusOK {
		t.Errorf("server span of %s: code %d status %v, want 200 OK", path, s.ResponseCode, s.ResponseStatus)
	}
	if body := s.ResponseBytes; body < size || body > size+200 {
		t.Errorf("server span of %s: response of %d bytes, want the %d-byte body and its head", path, body, size)
	}

	// A request its server never answered: the server is killed.
	port = nextPort()
	srv, sc := start(port, "stall")
	path = "/" + m + "/stall"
	done := make(chan error, 1)
	go func() {
		_, err := runClientE(tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d%s", tp.ServerIP, port, path)})
		done <- err
	}()
	if !sc.Scan() || sc.Text() != "READ" {
		t.Fatalf("the stalling server did not read the request: %q", sc.Text())
	}
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	exited = time.Now()
	s, ok = serverSpan(path, 5*time.Second)
	if !ok {
		t.Fatalf("no server span of %s within 5 s of its process's kill", path)
	}
	t.Logf("span of the unanswered request: %v after the kill", time.Since(exited).Round(time.Millisecond))
	if s.ResponseStatus != span.StatusTimeout || s.ResponseCode != 0 {
		t.Errorf("server span of %s: code %d status %v, want a timeout without response", path, s.ResponseCode, s.ResponseStatus)
	}
	if err := <-done; err == nil {
		t.Errorf("curl of %s succeeded against a killed server", path)
	}
}

// startPiped starts argv inside ns with its stdout to read line by line
// (its stderr is the test's); it is killed when the test ends.
func startPiped(t *testing.T, ns string, argv ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}
