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
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestCaptureGoTLSKeepAlive: a Go net/http client (collector/testpeers
// tlspeer seq) makes sequential requests on one kept-alive crypto/tls
// connection, gaps apart, to a Go crypto/tls server and to nginx (serving
// itself, and proxying a plain server as the demo's sidecars do), with
// small responses, responses larger than one TLS record, and heads
// flushed before their bodies (separate records). Ground truth is what the
// client got: each response's X-Request-ID (the server sets it to the
// request's path) and the time the client had it. Every client span must
// pair its own request and response: exactly one c-p span per path, status
// 200, X-Request-ID of the response its own path, ending no later than the
// client had the response (so before the next request began), and the
// same request and response sequence numbers as the server's s-p span.
func TestCaptureGoTLSKeepAlive(t *testing.T) {
	requireRoot(t)
	haveBins(t, "nginx", "openssl")
	bin := buildPeer(t, "tlspeer")
	tp, live := liveTopo(t)
	dir, cert, key := tlsCert(t, tp.ServerIP)
	// nginx's worker runs as nobody: the file in a directory all can read.
	big, err := os.MkdirTemp("", "zt-big")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(big) })
	os.Chmod(big, 0o755)
	if err := os.WriteFile(filepath.Join(big, "index.bin"), []byte(strings.Repeat("b", 40000)), 0o644); err != nil {
		t.Fatal(err)
	}
	seq := func(addr, marker, prefix string, n, gapMs int, env ...string) (string, error) {
		b := bin
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "TLSPEER="); ok {
				b = v
			}
		}
		cmd := exec.Command("ip", "netns", "exec", tp.ClientNS, b, "seq", addr, marker, strconv.Itoa(n), strconv.Itoa(gapMs))
		cmd.Env = append(append(os.Environ(), "PREFIX="+prefix), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	goServer := func(env ...string) string {
		port := nextPort()
		srv := exec.Command("ip", "netns", "exec", tp.ServerNS, bin, "serve-http", fmt.Sprintf("%s:%d", tp.ServerIP, port))
		srv.Env = append(append(os.Environ(), "DELAY_MS=5"), env...)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		return fmt.Sprintf("%s:%d", tp.ServerIP, port)
	}
	nginx := func(proxy string) string {
		port := nextPort()
		conf := nginxKeepAliveConf(t, dir, tp.ServerIP, port, cert, key, proxy, big)
		startTLSServer(t, live, tp.ServerNS, tp.ServerIP, port, []string{"nginx", "-c", conf})
		return fmt.Sprintf("%s:%d", tp.ServerIP, port)
	}
	plain := func(env ...string) string { // in the server's namespace, for nginx to proxy
		port := nextPort()
		srv := exec.Command("ip", "netns", "exec", tp.ServerNS, bin, "serve-plain", fmt.Sprintf("127.0.0.1:%d", port))
		srv.Env = append(append(os.Environ(), "DELAY_MS=5"), env...)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	goSmall := goServer()
	// Prime: the client's executable is attached on its first events.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := seq(goSmall, "prime", "/m/", 1, 0)
		if a, _ := live.c.GoTLSStats(); err == nil && a >= 1 {
			break
		}
		if time.Now().After(deadline) {
			a, f := live.c.GoTLSStats()
			t.Fatalf("not ready: client %v, %d executables attached, %d failed", err, a, f)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct {
		name, addr, prefix string
		n, gapMs           int
	}{
		// First, while the nginx servers are new to the capture: a copy of
		// the client (an executable not attached yet) whose probes are
		// attached during its first pause, while its connection's reader
		// goroutine is blocked in Read: that Read's plaintext is lost (its
		// entry was not seen); the requests after it keep their own.
		{"late-attach", nginx(""), "/m/", 5, 100},
		{"go-small-100ms", goSmall, "/m/", 6, 100},
		{"go-split-big-100ms", goServer("SPLIT=1", "SIZE=40000"), "/m/", 5, 100},
		// 20 ms, not 0: with no gap net/http's server sometimes reads the
		// next request's first byte on its background-read goroutine ("G",
		// then "ET /..." on the connection's): the server's session then
		// pairs request k with response k+1 (docs/tls-go.md, open).
		{"go-3k-20ms", goServer("SIZE=3000"), "/m/", 6, 20},
		{"nginx-small-no-gap", nginx(""), "/m/", 6, 0},
		{"nginx-small-100ms", nginx(""), "/m/", 6, 100},
		{"nginx-big-30ms", nginx(""), "/big/", 5, 30},
		{"nginx-proxy-100ms", nginx(plain()), "/m/", 6, 100},
		{"nginx-proxy-split-big-250ms", nginx(plain("SPLIT=1", "SIZE=20000")), "/m/", 4, 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker, from, env := "ka"+nonce(), 0, []string{}
			var attached func() // the late copy's probes are attached: its first pause ends
			if tc.name == "late-attach" {
				dir := t.TempDir()
				late, resume := filepath.Join(dir, "tlspeer-late"), filepath.Join(dir, "resume")
				if b, err := os.ReadFile(bin); err != nil || os.WriteFile(late, b, 0o755) != nil {
					t.Fatalf("copying %s: %v", bin, err)
				}
				// Requests 1 and 2 may be lost (1 before the attach; 2's
				// response read by the Read blocked meanwhile). The pause
				// lasts until the copy is attached: a fixed 2 s let a
				// loaded machine attach after it.
				from, env = 2, []string{"FIRST_PAUSE_UNTIL=" + resume, "TLSPEER=" + late}
				attached = func() {
					start := time.Now()
					waitFor(t, func() bool { a, _ := live.c.GoTLSStats(); return a >= 2 },
						func() string {
							a, f := live.c.GoTLSStats()
							return fmt.Sprintf("the copy not attached: %d attached, %d failed", a, f)
						})
					t.Logf("the copy attached %v after its start", time.Since(start).Round(time.Millisecond))
					if err := os.WriteFile(resume, nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			go func() { out, err := seq(tc.addr, marker, tc.prefix, tc.n, tc.gapMs, env...); done <- result{out, err} }()
			if attached != nil {
				attached()
			}
			r := <-done
			out, err := r.out, r.err
			if err != nil {
				t.Fatalf("client: %v\n%s", err, out)
			}
			_, port, _ := strings.Cut(tc.addr, ":")
			checkKeepAlive(t, live.Spans(), out, tc.prefix, port, tc.n, from)
			if tc.name == "late-attach" {
				if a, _ := live.c.GoTLSStats(); a != 2 {
					t.Errorf("%d executables attached, want 2 (the copy too)", a)
				}
			}
		})
	}
}

// checkKeepAlive matches the client's lines "NAME START END XRID BYTES"
// with the spans of paths PREFIX NAME on server port port (a proxying
// nginx makes spans of the same paths on its upstream connections).
// Requests before index from may have no span or one ending unanswered
// (FlagTruncated, no response), never another request's response.
func checkKeepAlive(t *testing.T, spans []span.Span, out, prefix, port string, n, from int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("client printed %d lines, want %d:\n%s", len(lines), n, out)
	}
	var sock uint64
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("client line %q", l)
		}
		path, xrid := prefix+f[0], f[3]
		start, _ := strconv.ParseInt(f[1], 10, 64)
		end, _ := strconv.ParseInt(f[2], 10, 64)
		var cs, ss []span.Span
		for _, sp := range spans {
			if sp.RequestResource == path && strconv.Itoa(int(sp.ServerPort)) == port {
				switch sp.TapSide {
				case span.TapClientProcess:
					cs = append(cs, sp)
				case span.TapServerProcess:
					ss = append(ss, sp)
				}
			}
		}
		if i < from {
			for _, c := range cs {
				if c.EndNs > end || (c.XRequestIDResp != xrid && (c.XRequestIDResp != "" || !c.Flags.Has(span.FlagTruncated))) {
					t.Errorf("%s (lost before the attach): c-p span ends %+d ns after the client had its response, response X-Request-ID %q, flags %b", path, c.EndNs-end, c.XRequestIDResp, c.Flags)
				}
			}
			continue
		}
		if len(cs) != 1 {
			t.Errorf("%s: %d c-p spans, want 1", path, len(cs))
			continue
		}
		c := cs[0]
		if i == from {
			sock = c.SocketID
		} else if c.SocketID != sock {
			t.Errorf("%s: socket %x, the first request's %x: not one kept-alive connection", path, c.SocketID, sock)
		}
		if c.RequestType != "GET" || c.ResponseCode != 200 || c.ResponseStatus != span.StatusOK || c.XRequestIDResp != xrid {
			t.Errorf("%s: c-p %s %q -> %d (%v), response X-Request-ID %q, want the client's %q", path, c.RequestType, c.RequestResource, c.ResponseCode, c.ResponseStatus, c.XRequestIDResp, xrid)
		}
		if c.StartNs < start || c.EndNs > end {
			t.Errorf("%s: c-p span [%d, %d] outside the client's request [%d, %d] (ends %+d ns after)", path, c.StartNs, c.EndNs, start, end, c.EndNs-end)
		}
		if len(ss) != 1 {
			t.Errorf("%s: %d s-p spans, want 1", path, len(ss))
			continue
		}
		if s := ss[0]; c.ReqTCPSeq != s.ReqTCPSeq || c.RespTCPSeq != s.RespTCPSeq || c.ReqTCPSeq == 0 || c.RespTCPSeq == 0 {
			t.Errorf("%s: seqs client %d/%d, server %d/%d", path, c.ReqTCPSeq, c.RespTCPSeq, s.ReqTCPSeq, s.RespTCPSeq)
		}
	}
}

// nginxKeepAliveConf: nginx serving HTTPS on host:port with keep-alive,
// X-Request-ID set to the request's path: "ok PATH" under /m/, a 40000-byte
// file under /big/ (big/index.bin); with proxy, /m/ is proxied to
// that plain HTTP server instead.
func nginxKeepAliveConf(t *testing.T, dir, host string, port int, cert, key, proxy, big string) string {
	t.Helper()
	m := `default_type text/plain; add_header X-Request-ID $uri always; return 200 "ok $uri";`
	if proxy != "" {
		m = "proxy_pass http://" + proxy + ";"
	}
	return nginxConf(t, dir, port, fmt.Sprintf(`listen %s:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location /m/ { %s }
    location /big/ { add_header X-Request-ID $request_uri always; root %s; try_files /index.bin =404; }
    location / { return 200 "ready"; }`, host, port, cert, key, m, big))
}
