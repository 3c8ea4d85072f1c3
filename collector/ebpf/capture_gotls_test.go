//go:build linux

package ebpf

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureGoTLS: Go crypto/tls clients and servers (collector/testpeers
// tlspeer, separate processes in two namespaces) over HTTP/1.1 and gRPC
// (h2), one build with its symbol table and one stripped (-s -w: offsets
// from the pclntab). Four concurrent requests per case, shown to overlap by
// the client's own clock; each request's path carries a marker the test
// chose: exactly one client and one server span per marker with that path,
// read from the plaintext, and the same TCP sequence number of the request
// on both sides (the client's write(2), the server's read(2)).
func TestCaptureGoTLS(t *testing.T) {
	requireRoot(t)
	full := buildPeer(t, "tlspeer")
	stripped := buildPeer(t, "tlspeer", "-ldflags=-s -w")
	tp, live := liveTopo(t)
	for _, tc := range []struct {
		name, bin, serve, client, prefix string
		proto                            span.L7Protocol
		files                            uint64 // executables attached once this case runs
	}{
		{"http", full, "serve-http", "get", "/m/", span.L7HTTP1, 1},
		{"grpc", full, "serve-grpc", "call", "/zt.Marker/", span.L7GRPC, 1},
		{"http-stripped", stripped, "serve-http", "get", "/m/", span.L7HTTP1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fmt.Sprintf("%s:%d", tp.ServerIP, nextPort())
			srv := exec.Command("ip", "netns", "exec", tp.ServerNS, tc.bin, tc.serve, addr)
			srv.Env = append(os.Environ(), "DELAY_MS=300")
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
			client := func(marker string, n int) (string, error) {
				out, err := exec.Command("ip", "netns", "exec", tp.ClientNS, tc.bin, tc.client, addr, marker, strconv.Itoa(n)).CombinedOutput()
				return string(out), err
			}
			// Prime: the server's first events make the capture find it and
			// attach its executable's probes.
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, err := client("prime", 1)
				if a, _ := live.c.GoTLSStats(); err == nil && a >= tc.files {
					break
				}
				if time.Now().After(deadline) {
					a, f := live.c.GoTLSStats()
					t.Fatalf("not ready: client %v, %d executables attached, %d failed", err, a, f)
				}
				time.Sleep(200 * time.Millisecond)
			}
			marker := "gotls" + nonce() + tc.name
			out, err := client(marker, 4)
			if err != nil {
				t.Fatalf("clients: %v\n%s", err, out)
			}
			checkOverlap(t, out, 4)
			checkTLSSpans(t, live.Spans(), tc.prefix+marker, tc.proto, 4)
		})
	}
	if a, f := live.c.GoTLSStats(); a != 2 || f != 0 {
		t.Errorf("%d executables attached, %d failed; want 2 and 0", a, f)
	}
}

// checkOverlap: the client's lines "NAME START END" show all n requests
// in flight at once.
func checkOverlap(t *testing.T, out string, n int) {
	t.Helper()
	var lastStart, firstEnd int64
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("client line %q", l)
		}
		s, _ := strconv.ParseInt(f[1], 10, 64)
		e, _ := strconv.ParseInt(f[2], 10, 64)
		lastStart = max(lastStart, s)
		if firstEnd == 0 || e < firstEnd {
			firstEnd = e
		}
	}
	if len(lines) != n || lastStart >= firstEnd {
		t.Fatalf("requests did not overlap (last start %d, first end %d):\n%s", lastStart, firstEnd, out)
	}
}

// checkTLSSpans: one client and one server span per request path
// PREFIX-i, of protocol proto, with equal nonzero request sequence numbers.
func checkTLSSpans(t *testing.T, spans []span.Span, prefix string, proto span.L7Protocol, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		path := fmt.Sprintf("%s-%d", prefix, i)
		side := map[span.TapSide][]span.Span{}
		for _, sp := range spans {
			if sp.RequestResource == path {
				side[sp.TapSide] = append(side[sp.TapSide], sp)
			}
		}
		c, s := side[span.TapClientProcess], side[span.TapServerProcess]
		if len(c) != 1 || len(s) != 1 {
			t.Errorf("%s: %d client and %d server spans, want 1 and 1", path, len(c), len(s))
			continue
		}
		for _, sp := range []span.Span{c[0], s[0]} {
			if sp.L7Protocol != proto || sp.ResponseStatus != span.StatusOK || sp.Flags.Has(span.FlagPartial) || sp.EndNs <= sp.StartNs {
				t.Errorf("%s %s: %+v", path, sp.TapSide, sp)
			}
		}
		if c[0].ReqTCPSeq != s[0].ReqTCPSeq || c[0].ReqTCPSeq == 0 || c[0].RespTCPSeq != s[0].RespTCPSeq || c[0].RespTCPSeq == 0 {
			t.Errorf("%s: seqs client %d/%d server %d/%d", path, c[0].ReqTCPSeq, c[0].RespTCPSeq, s[0].ReqTCPSeq, s[0].RespTCPSeq)
		}
		if s[0].StartNs < c[0].StartNs || s[0].EndNs > c[0].EndNs {
			t.Errorf("%s: server span [%d,%d] outside the client's [%d,%d]", path, s[0].StartNs, s[0].EndNs, c[0].StartNs, c[0].EndNs)
		}
	}
}

// TestCaptureGoTLSUnknownVersion: a Go program whose build information
// names a Go version gotls does not know (a copy of tlspeer with the
// version patched to go1.99): one log line naming the file, the failed
// counter at one, and its plain HTTP spans as before.
func TestCaptureGoTLSUnknownVersion(t *testing.T) {
	requireRoot(t)
	bin := patchGoVersion(t, buildPeer(t, "tlspeer"), "go1.99")
	tp, live, log := liveTopoLog(t)
	addr := fmt.Sprintf("%s:%d", tp.ServerIP, nextPort())
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, bin, "serve-plain", addr)
	srv.Env = append(os.Environ(), "DELAY_MS=300")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	client := func(marker string, n int) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", tp.ClientNS, bin, "get-plain", addr, marker, strconv.Itoa(n)).CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := client("prime", 1)
		if _, f := live.c.GoTLSStats(); err == nil && f >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: client %v, log:\n%s", err, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	marker := "gotlsold" + nonce()
	out, err := client(marker, 4)
	if err != nil {
		t.Fatalf("clients: %v\n%s", err, out)
	}
	checkOverlap(t, out, 4)
	checkTLSSpans(t, live.Spans(), "/m/"+marker, span.L7HTTP1, 4)
	if a, f := live.c.GoTLSStats(); a != 0 || f != 1 {
		t.Errorf("%d executables attached, %d failed; want 0 and 1", a, f)
	}
	if n := strings.Count(log.String(), "Go crypto/tls plaintext not read"); n != 1 || !strings.Contains(log.String(), "go1.99.") {
		t.Errorf("%d log lines, want 1 naming go1.99:\n%s", n, log.String())
	}
}

// patchGoVersion copies bin with the Go version in its build information
// (.go.buildinfo: a 32-byte header, then the version's length and bytes)
// changed to start with prefix (as long as "go1.NN").
func patchGoVersion(t *testing.T, bin, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "\xff Go buildinf:")
	if i < 0 || i+33+len(prefix) > len(b) || !strings.HasPrefix(string(b[i+33:]), "go1.") {
		t.Fatalf("no inline build information in %s", bin)
	}
	copy(b[i+33:], prefix)
	out := bin + "-patched"
	if err := os.WriteFile(out, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}
