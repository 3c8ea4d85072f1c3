//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// buildPeer builds one of collector/testpeers into a temporary directory.
func buildPeer(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "../testpeers/"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

// TestCaptureGRPC: grpc-go client and server (separate processes, two
// namespaces), three unary calls on one connection and a NOT_FOUND call:
// one c-p and one s-p span per call, read through HPACK with the dynamic
// table the calls share, paired by stream id, equal sequence numbers.
func TestCaptureGRPC(t *testing.T) {
	requireRoot(t)
	peer := buildPeer(t, "grpcpeer")
	tp := newTopo(t)
	port := nextPort()
	addr := fmt.Sprintf("%s:%d", tp.ServerIP, port)
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, peer, "serve", addr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	check := func(service, xrid string, n int) []string {
		out, err := exec.Command("ip", "netns", "exec", tp.ClientNS, peer, "check", addr, service, xrid, fmt.Sprint(n)).CombinedOutput()
		if err != nil {
			return []string{err.Error() + ": " + string(out)}
		}
		return strings.Fields(string(out))
	}
	for i := 0; i < 50; i++ {
		if out := check("reviews", "ready", 1); len(out) == 1 && out[0] == "OK" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	id := nonce()
	if out := check("reviews", "ok"+id, 3); strings.Join(out, " ") != "OK OK OK" {
		t.Fatalf("checks: %q", out)
	}
	if out := check("nope", "nf"+id, 1); strings.Join(out, " ") != "NotFound" {
		t.Fatalf("check of an unknown service: %q", out)
	}
	spans := live.Spans()
	for _, tc := range []struct {
		xrid   string
		stream uint32
		code   int32
		status span.ResponseStatus
	}{
		{"ok" + id + "-1", 1, 0, span.StatusOK},
		{"ok" + id + "-2", 3, 0, span.StatusOK},
		{"ok" + id + "-3", 5, 0, span.StatusOK},
		{"nf" + id + "-1", 1, 5, span.StatusClientError},
	} {
		var c, s []span.Span
		for _, sp := range spans {
			if sp.XRequestIDReq != tc.xrid {
				continue
			}
			switch sp.TapSide {
			case span.TapClientProcess:
				c = append(c, sp)
			case span.TapServerProcess:
				s = append(s, sp)
			}
		}
		if len(c) != 1 || len(s) != 1 {
			t.Errorf("%s: %d client and %d server spans, want 1 and 1", tc.xrid, len(c), len(s))
			continue
		}
		for _, sp := range []span.Span{c[0], s[0]} {
			if sp.L7Protocol != span.L7GRPC || sp.RequestType != "POST" || sp.RequestResource != "/grpc.health.v1.Health/Check" ||
				sp.StreamID != tc.stream || sp.ResponseCode != tc.code || sp.ResponseStatus != tc.status ||
				sp.L7Version != "2" || sp.EndNs <= sp.StartNs || sp.Flags.Has(span.FlagPartial) {
				t.Errorf("%s %s: %+v", tc.xrid, sp.TapSide, sp)
			}
		}
		if c[0].ReqTCPSeq != s[0].ReqTCPSeq || c[0].RespTCPSeq != s[0].RespTCPSeq || c[0].ReqTCPSeq == 0 {
			t.Errorf("%s: seqs client %d/%d server %d/%d", tc.xrid, c[0].ReqTCPSeq, c[0].RespTCPSeq, s[0].ReqTCPSeq, s[0].RespTCPSeq)
		}
		if s[0].StartNs < c[0].StartNs || s[0].EndNs > c[0].EndNs {
			t.Errorf("%s: server span [%d,%d] outside the client's [%d,%d]", tc.xrid, s[0].StartNs, s[0].EndNs, c[0].StartNs, c[0].EndNs)
		}
	}
}
