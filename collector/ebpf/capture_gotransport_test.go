//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"testing"
)

// TestCaptureGoTransportReuse: the Go service of TestCaptureGoGoroutines
// with a Transport that opens at most a few connections, so that the 32
// concurrent requests take turns on kept-alive connections (each written by
// the connection's write goroutine, woken by whichever request's goroutine
// comes next), over plain HTTP and over crypto/tls, with idle pools large
// and small (a small one closes connections and dials new ones). Every
// context a call carries must be its own request's (the path marker); at
// least 31 of the 32 calls must carry it. Measured (2026-12-06, docs/assembly.md
// "A goroutine's state ends with it"): 32 of 32 in every subtest of five
// runs; before, 27–30 (plain, 4 connections), 30–32 (plain, idle pool of
// 2), 28–29 (TLS, 4 connections) and 19–24 (TLS, idle pool of 2): a new
// goroutine inherited a dead one's state, and the read goroutine, armed,
// did not answer for the calls whose write went unreported.
func TestCaptureGoTransportReuse(t *testing.T) {
	bin := buildPeer(t, "gohttp")
	tlspeer := buildPeer(t, "tlspeer")
	for _, tc := range []struct {
		name        string
		tls         bool
		conns, idle int
	}{
		{"plain-4-conns", false, 4, 64},
		{"plain-8-conns-idle-2", false, 8, 2},
		{"tls-4-conns", true, 4, 64},
		{"tls-8-conns-idle-2", true, 8, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, live := liveTopo(t)
			scheme, leafStart := "http", func(t *testing.T, tp *topo, leaf int) {
				startServer(t, tp.ServerNS, "127.0.0.1", leaf, runtimes[0].Server(t, "127.0.0.1", leaf, ""))
			}
			if tc.tls {
				scheme = "https"
				leafStart = func(t *testing.T, tp *topo, leaf int) {
					startServerURL(t, tp.ServerNS, fmt.Sprintf("https://127.0.0.1:%d/ready", leaf),
						[]string{"env", "DELAY_MS=10", tlspeer, "serve-http", fmt.Sprintf("127.0.0.1:%d", leaf)})
				}
			}
			checkContextsLeaf(t, tp, live, "go net/http "+tc.name, 1, 31, leafStart, func(t *testing.T, tp *topo, front, leaf int) *exec.Cmd {
				return startServer(t, tp.ServerNS, tp.ServerIP, front, []string{"env", fmt.Sprintf("CONNS=%d", tc.conns), fmt.Sprintf("IDLE=%d", tc.idle),
					bin, fmt.Sprintf("%s:%d", tp.ServerIP, front), fmt.Sprintf("%s://127.0.0.1:%d", scheme, leaf)})
			})
		})
	}
}
