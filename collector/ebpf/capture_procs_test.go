//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureProcessEnds: a pid's next process is not taken for the one
// that had it before (bpf/socket/procs.h, processes.go). A Go server is
// tracked (go_procs lists it) and killed; its entry goes with it. A Debian
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
	gosrv.Process.Kill()
	waitFor(t, func() bool { _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); return err != nil },
		func() string { return fmt.Sprintf("pid %d did not exit", pid) })
	waitFor(t, func() bool { return !listed() },
		func() string { return fmt.Sprintf("go_procs still lists pid %d after its process ended", pid) })

	// A Python server at the same pid.
	py := nextPort()
	startServerAtPID(t, pid, tp.ServerNS, tp.ServerIP, py, []string{sysPython, "-u",
		filepath.Join(runtimeDir(t), "server.py"), tp.ServerIP, fmt.Sprint(py)})
	const n = 4
	for i := 0; i < n; i++ {
		runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d/%s/py/r%d", tp.ServerIP, py, m, i)})
	}

	// A client that calls from bash (its own reads and writes on
	// /dev/tcp), then execs curl for its second call. The second before
	// the exec lets the capture look the process up while it is bash: a
	// process looked up after its exec but before its exec's event is
	// handled gets the new program's name (docs/capture.md).
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%[1]s/%[2]d
printf 'GET /%[3]s/exec/bash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
while IFS= read -r l <&3; do :; done
sleep 1
exec curl -s -o /dev/null http://%[1]s:%[2]d/%[3]s/exec/curl`, tp.ServerIP, py, m)
	if out, err := exec.Command("ip", "netns", "exec", tp.ClientNS, "bash", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("bash client: %v %s", err, out)
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
	for _, who := range []string{"bash", "curl"} {
		if got := calls["/"+m+"/exec/"+who]; got != who {
			t.Errorf("the call made by %s was made by %q (calls: %v)", who, got, calls)
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
