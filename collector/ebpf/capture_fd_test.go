//go:build linux

package ebpf

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestCaptureHighFD: a server that holds 300 open files before it listens,
// so its sockets have fds above 300 and its fd table is no longer the
// task's 64-slot built-in one (the fd → socket walk reads the table's slot
// through BTF, socket.bpf.c fd_to_sock): its requests give their spans.
func TestCaptureHighFD(t *testing.T) {
	testenv.RequireBinaries(t, sysPython, "curl", "ip")
	tp, live := liveTopo(t)
	port := nextPort()
	script := fmt.Sprintf("import os, runpy, sys; held = [os.open('/dev/null', os.O_RDONLY) for _ in range(300)]; "+
		"sys.argv = ['server.py', %q, %q]; runpy.run_path(%q, run_name='__main__')",
		tp.ServerIP, fmt.Sprint(port), filepath.Join(runtimeDir(t), "server.py"))
	startServer(t, tp.ServerNS, tp.ServerIP, port, []string{sysPython, "-c", script})
	m := nonce()
	for i := range 2 {
		out := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
			fmt.Sprintf("http://%s:%d/%s/fd%d", tp.ServerIP, port, m, i)})
		if len(out) != 1 || out[0].Status != 200 {
			t.Fatalf("curl: %+v", out)
		}
	}
	spans := live.Spans()
	for i := range 2 {
		if _, s, ok := checkPair(t, spans, fmt.Sprintf("/%s/fd%d", m, i), 200); ok && !strings.HasPrefix(s.ProcessName, "python3") {
			t.Errorf("server span from %q, want python3", s.ProcessName)
		}
	}
}
