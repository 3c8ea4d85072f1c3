//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureGoUnknownGoid: two processes of a Go service built without
// DWARF by a release whose runtime.g.goid offset the collector does not
// know (the installed release, taken out of the table for the test): their
// goroutines are not tracked (a wrong offset would key goroutines by
// another field), the executable is logged once and counted once on
// /metrics, and both keep every request and call span, without context.
func TestCaptureGoUnknownGoid(t *testing.T) {
	bin := buildPeer(t, "gohttp", "-ldflags=-w") // symbols kept: runtime.send could be attached
	withoutRelease(t, binRelease(t, bin))
	tp, live, log := liveTopoLog(t)
	leaf := nextPort()
	startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
	var fronts []int
	var pids []uint32
	for i := 0; i < 2; i++ {
		front := nextPort()
		srv := startServer(t, tp.ServerNS, tp.ServerIP, front, []string{bin, fmt.Sprintf("%s:%d", tp.ServerIP, front),
			fmt.Sprintf("http://127.0.0.1:%d", leaf)})
		fronts, pids = append(fronts, front), append(pids, uint32(srv.Process.Pid))
	}
	for _, pid := range pids {
		waitFor(t, func() bool { return strings.Contains(live.c.guard.Untrusted(pid), "goid") },
			func() string {
				return fmt.Sprintf("pid %d is not marked untracked: %q", pid, live.c.guard.Untrusted(pid))
			})
	}
	m := nonce()
	const n = 8
	for _, front := range fronts {
		for i := 0; i < n; i++ {
			runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
				fmt.Sprintf("http://%s:%d/%s/r%d/", tp.ServerIP, front, m, i)})
		}
	}
	live.c.Flush()
	servers, calls := map[uint32]int{}, map[uint32]int{}
	for _, s := range live.Spans() {
		if !strings.HasPrefix(s.RequestResource, "/"+m+"/") {
			continue
		}
		switch s.TapSide {
		case span.TapServerProcess:
			servers[s.PID]++
		case span.TapClientProcess:
			calls[s.PID]++
		default:
			continue
		}
		if (s.PID == pids[0] || s.PID == pids[1]) && (s.SyscallTraceIDReq != 0 || s.SyscallTraceIDResp != 0) {
			t.Errorf("%s %s keeps a context %x/%x in a program whose goroutines are not tracked", s.TapSide, s.RequestResource,
				s.SyscallTraceIDReq, s.SyscallTraceIDResp)
		}
	}
	for _, pid := range pids {
		if servers[pid] != n || calls[pid] != n {
			t.Errorf("pid %d: %d server spans and %d calls, want %d each", pid, servers[pid], calls[pid], n)
		}
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pids[0]))
	out := log.String()
	if lines := strings.Count(out, "goroutines not tracked in a Go program"); lines != 1 || !strings.Contains(out, exe) ||
		!strings.Contains(out, "runtime.g.goid's offset not known") {
		t.Errorf("want one log line naming the binary (%s) and why, got %d:\n%s", exe, lines, out)
	}
	if got := live.c.GoUntracked(); got != 1 {
		t.Errorf("%d executables counted untracked, want 1", got)
	}
}
