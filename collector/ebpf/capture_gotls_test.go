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
			markers := overlapBatches(t, "gotls"+nonce()+tc.name, 4, client)
			spans := live.Spans()
			for _, m := range markers {
				checkTLSSpans(t, spans, tc.prefix+m, tc.proto, 4)
			}
		})
	}
	if a, f := live.c.GoTLSStats(); a != 2 || f != 0 {
		t.Errorf("%d executables attached, %d failed; want 2 and 0", a, f)
	}
}

// overlapBatches sends batches of n concurrent requests (client(marker,
// n)), each under a new marker base-R, until one batch's requests were all
// in flight at once by the client's clock (its lines "NAME START END"): a
// loaded machine can run a batch almost one request at a time, which shows
// nothing about concurrency (docs/testing.md rule 4). It stops after
// overlapRounds batches, failing unless one overlapped, and returns every
// batch's marker: each batch's spans are checked.
func overlapBatches(t *testing.T, base string, n int, client func(marker string, n int) (string, error)) []string {
	t.Helper()
	var markers []string
	for round := 1; round <= overlapRounds; round++ {
		marker := fmt.Sprintf("%s-%d", base, round)
		out, err := client(marker, n)
		if err != nil {
			t.Fatalf("clients: %v\n%s", err, out)
		}
		markers = append(markers, marker)
		lastStart, firstEnd := clientSpan(t, out, n)
		if lastStart < firstEnd {
			return markers
		}
		t.Logf("batch %d: the %d requests were not all in flight at once (last start %d, first end %d):\n%s", round, n, lastStart, firstEnd, out)
	}
	t.Fatalf("no batch of %d requests in flight at once in %d batches", n, overlapRounds)
	return nil
}

// clientSpan reads the client's n lines "NAME START END": the last start
// and the first end.
func clientSpan(t *testing.T, out string, n int) (lastStart, firstEnd int64) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("%d client lines, want %d:\n%s", len(lines), n, out)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("client line %q", l)
		}
		s, err1 := strconv.ParseInt(f[1], 10, 64)
		e, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("client line %q", l)
		}
		lastStart = max(lastStart, s)
		if firstEnd == 0 || e < firstEnd {
			firstEnd = e
		}
	}
	return lastStart, firstEnd
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
	markers := overlapBatches(t, "gotlsold"+nonce(), 4, client)
	spans := live.Spans()
	for _, m := range markers {
		checkTLSSpans(t, spans, "/m/"+m, span.L7HTTP1, 4)
	}
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
