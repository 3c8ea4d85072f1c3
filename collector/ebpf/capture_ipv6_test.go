//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/testenv"
)

// TestCaptureIPv6: curl → Python's http.server over ::1 in one namespace:
// the c-p and s-p spans carry IPv6, ::1 on both sides, the server's port and
// the client port curl itself reports (%{local_port}).
func TestCaptureIPv6(t *testing.T) {
	testenv.RequireBinaries(t, sysPython, "curl", "ip")
	tp := newTopo(t)
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	m := nonce()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, m), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, m, "v6"), []byte("ok v6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := nextPort()
	startServer(t, tp.ServerNS, "[::1]", port, []string{sysPython, "-m", "http.server", "--bind", "::1", "--directory", root, strconv.Itoa(port)})
	path := "/" + m + "/v6"
	out, err := exec.Command("ip", "netns", "exec", tp.ServerNS, "curl", "-g", "-s", "-o", "/dev/null", "-w", "%{http_code} %{local_ip} %{local_port}",
		fmt.Sprintf("http://[::1]:%d%s", port, path)).CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 3 || f[0] != "200" || f[1] != "::1" {
		t.Fatalf("curl: %v %q", err, out)
	}
	clientPort, _ := strconv.Atoi(f[2])
	c, s, ok := checkPair(t, live.Spans(), path, 200)
	if !ok {
		return
	}
	for _, sp := range []struct {
		name string
		ipv  uint8
		cip  string
		cp   uint16
		sip  string
		sp   uint16
	}{{"c-p", c.IPVersion, c.ClientIP.String(), c.ClientPort, c.ServerIP.String(), c.ServerPort},
		{"s-p", s.IPVersion, s.ClientIP.String(), s.ClientPort, s.ServerIP.String(), s.ServerPort}} {
		if sp.ipv != 6 || sp.cip != "::1" || sp.sip != "::1" || int(sp.cp) != clientPort || int(sp.sp) != port {
			t.Errorf("%s span: IPv%d [%s]:%d → [%s]:%d, want IPv6 [::1]:%d → [::1]:%d", sp.name, sp.ipv, sp.cip, sp.cp, sp.sip, sp.sp, clientPort, port)
		}
	}
}
