//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureRedis: redis-cli against redis-server in two namespaces: one
// c-p and one s-p span per command with the command, the key, the reply's
// status (an error reply is client_error with its message) and equal
// sequence numbers.
func TestCaptureRedis(t *testing.T) {
	testenv.RequireBinaries(t, "redis-server", "redis-cli")
	tp, live := liveTopo(t)
	port := nextPort()
	cli := startRedis(t, tp, port)
	key := "k" + nonce()
	if out := cli("SET", key, "hello"); out != "OK" {
		t.Fatalf("SET: %q", out)
	}
	if out := cli("GET", key); out != "hello" {
		t.Fatalf("GET: %q", out)
	}
	if out := cli("INCR", key); !strings.Contains(out, "ERR") {
		t.Fatalf("INCR on a string: %q", out)
	}
	spans := live.Spans()
	for _, tc := range []struct {
		cmd    string
		status span.ResponseStatus
	}{{"SET", span.StatusOK}, {"GET", span.StatusOK}, {"INCR", span.StatusClientError}} {
		c, s := sidesOf(spans, func(sp span.Span) bool { return sp.RequestResource == key && sp.RequestType == tc.cmd })
		if len(c) != 1 || len(s) != 1 {
			t.Errorf("%s: %d client and %d server spans, want 1 and 1", tc.cmd, len(c), len(s))
			continue
		}
		for _, sp := range []span.Span{c[0], s[0]} {
			if sp.L7Protocol != span.L7Redis || sp.ResponseStatus != tc.status || sp.Endpoint != tc.cmd || sp.EndNs <= sp.StartNs {
				t.Errorf("%s %s: %+v", tc.cmd, sp.TapSide, sp)
			}
		}
		if c[0].ReqTCPSeq != s[0].ReqTCPSeq || c[0].RespTCPSeq != s[0].RespTCPSeq || c[0].ReqTCPSeq == 0 {
			t.Errorf("%s: seqs client %d/%d server %d/%d", tc.cmd, c[0].ReqTCPSeq, c[0].RespTCPSeq, s[0].ReqTCPSeq, s[0].RespTCPSeq)
		}
		if tc.status == span.StatusClientError && !strings.Contains(c[0].ResponseException, "ERR") {
			t.Errorf("INCR exception %q", c[0].ResponseException)
		}
	}
}

// startRedis starts redis-server in tp's server namespace on port, killed
// in t.Cleanup, and returns a redis-cli from the client's namespace
// (output trimmed) once the server answers PING.
func startRedis(t *testing.T, tp *topo, port int) func(args ...string) string {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, "redis-server", "--bind", tp.ServerIP, "--port", fmt.Sprint(port),
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	cli := func(args ...string) string {
		a := append([]string{"netns", "exec", tp.ClientNS, "redis-cli", "-h", tp.ServerIP, "-p", fmt.Sprint(port)}, args...)
		out, _ := exec.Command("ip", a...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for i := 0; i < 50 && cli("PING") != "PONG"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	return cli
}
