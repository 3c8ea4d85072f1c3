//go:build linux

package ebpf

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TLS whose plaintext is not read (bpf/socket/opaque.h, collector/l4flight,
// docs/mesh.md "Without plaintext"): nginx excluded from TLS reading proxies
// plain HTTP to an upstream nginx over TLS 1.3, excluded too (the mesh
// demo's mtls-opaque hop). Ground truth: the flights on the wire, captured
// by dumpcap at the proxy's side.

// wireSeg is a TCP segment with payload seen by tshark.
type wireSeg struct {
	fromClient bool
	seq        uint32
	n          int64
	first      int // the content type of its first record (0: none starts in it)
}

// wireFlight is a run of segments of one direction: [seq, seq+n).
type wireFlight struct {
	fromClient bool
	seq        uint32
	n          int64
	first      int // the content type of its first segment's first record
}

// wireFlights reads a capture: per client port, the flights of the
// connection to server port srv in the order the vantage saw them, and
// the sequence numbers at which segments began.
func wireFlights(t *testing.T, pcap string, srv int) (map[uint16][]wireFlight, map[uint32]bool) {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-Y", "tcp.len>0", "-T", "fields", "-E", "separator=;",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.len", "-e", "tls.record.content_type").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	segs := map[uint16][]wireSeg{}
	starts := map[uint32]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ";")
		if len(f) != 5 {
			continue
		}
		first, _ := strconv.Atoi(strings.Split(f[4], ",")[0])
		sp, _ := strconv.Atoi(f[0])
		dp, _ := strconv.Atoi(f[1])
		seq, _ := strconv.ParseUint(f[2], 10, 32)
		n, _ := strconv.ParseInt(f[3], 10, 64)
		s := wireSeg{fromClient: dp == srv, seq: uint32(seq), n: n, first: first}
		port := uint16(sp)
		if !s.fromClient {
			port = uint16(dp)
		}
		segs[port] = append(segs[port], s)
		starts[s.seq] = true
	}
	flights := map[uint16][]wireFlight{}
	for port, ss := range segs {
		var fl []wireFlight
		for _, s := range ss {
			if k := len(fl) - 1; k >= 0 && fl[k].fromClient == s.fromClient {
				if end := fl[k].seq + uint32(fl[k].n); s.seq-fl[k].seq < uint32(fl[k].n) {
					continue // a retransmission
				} else if s.seq == end {
					fl[k].n += s.n
				}
				continue
			}
			fl = append(fl, wireFlight{fromClient: s.fromClient, seq: s.seq, n: s.n, first: s.first})
		}
		flights[port] = fl
	}
	return flights, starts
}

// wireCapture is dumpcap capturing TCP port port of a namespace into a
// file, through a pipe: dumpcap writes a pipe packet by packet (its file
// output is buffered, which showed 3–7 of 8 connections when a test waited
// on the file).
type wireCapture struct {
	t      *testing.T
	ns     string
	file   string
	mark   int // the UDP port of end marks, captured too
	cmd    *exec.Cmd
	mu     sync.Mutex
	buf    []byte // what the pipe gave so far
	copied chan struct{}
}

// startWire starts dumpcap on TCP port port in ns; it is stopped when the
// test ends or by stop.
func startWire(t *testing.T, ns string, port int) *wireCapture {
	t.Helper()
	w := &wireCapture{t: t, ns: ns, file: filepath.Join(t.TempDir(), "wire.pcapng"), mark: nextPort(), copied: make(chan struct{})}
	w.cmd = exec.Command("ip", "netns", "exec", ns, "dumpcap", "-q", "-i", "any",
		"-f", fmt.Sprintf("tcp port %d or udp port %d", port, w.mark), "-w", "-")
	var stderr strings.Builder
	w.cmd.Stderr = &syncWriter{w: &stderr}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("dumpcap: %v", err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("dumpcap: %v", err)
	}
	go func() {
		defer close(w.copied)
		b := make([]byte, 64<<10)
		for {
			n, err := out.Read(b)
			w.mu.Lock()
			w.buf = append(w.buf, b[:n]...)
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stderr.String(), "Capturing on"); {
		if time.Now().After(deadline) {
			t.Fatalf("dumpcap did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return w
}

// stop ends the capture and writes the file.
func (w *wireCapture) stop() {
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { w.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			w.cmd.Process.Kill()
			<-done
		}
	}
	<-w.copied
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.WriteFile(w.file, w.buf, 0o644); err != nil {
		w.t.Errorf("writing the capture: %v", err)
	}
}

// end sends a UDP datagram with a fresh mark from the namespace to dst,
// waits until the capture holds it, and stops the capture: every packet
// the namespace sent or received before the mark is in the file, which
// end returns.
func (w *wireCapture) end(dst string) string {
	w.t.Helper()
	mark := "zerotrace-wire-end-" + nonce()
	send := fmt.Sprintf("printf %%s %s > /dev/udp/%s/%d", mark, dst, w.mark)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if out, err := exec.Command("ip", "netns", "exec", w.ns, "bash", "-c", send).CombinedOutput(); err != nil {
			w.t.Fatalf("sending the capture's end mark: %v: %s", err, out)
		}
		for wait := time.Now().Add(time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
			w.mu.Lock()
			seen := bytes.Contains(w.buf, []byte(mark))
			w.mu.Unlock()
			if seen {
				w.stop()
				return w.file
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("dumpcap did not capture its end mark in 20 s")
		}
	}
}

// nginxProxyConf: plain HTTP on host:port proxied to https://up (one
// connection per request, TLS version vers, the upstream not verified).
func nginxProxyConf(t *testing.T, dir, host string, port int, up, vers string) string {
	t.Helper()
	return nginxConf(t, dir, port, fmt.Sprintf(`listen %s:%d;
    location /ready { return 200 "ready"; }
    location / { proxy_pass https://%s; proxy_ssl_verify off; proxy_ssl_protocols %s; }`, host, port, up, vers))
}

// TestCaptureTLSOpaque: per request through the proxy, one c-p L4 span
// of the proxy and one s-p L4 span of the upstream nginx on the upstream
// connection, each with the tls flag and no L7 fields, whose sequence
// ranges are the wire's request and response flights after the handshake
// (the client's: both exactly; the server's: the request exactly and the
// response's end, its start after the session tickets it wrote before);
// no span of the handshake or of the close; no context id on L4 spans.
func TestCaptureTLSOpaque(t *testing.T) {
	haveBins(t, "openssl", "curl", "nginx", "tshark", "dumpcap")
	tp, live := liveTopoExcluding(t, "nginx")
	dir, cert, key := tlsCert(t, tp.ServerIP)
	upPort := nextPort()
	wire := startWire(t, tp.ClientNS, upPort)
	upConf := nginxTLSConf(t, dir, tp.ServerIP, upPort, cert, key)
	b, err := os.ReadFile(upConf)
	if err != nil {
		t.Fatal(err)
	}
	// nginx 1.22 serves TLS 1.2 at most unless told (as the mesh demo's sidecars are).
	os.WriteFile(upConf, []byte(strings.Replace(string(b), "ssl_certificate ", "ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_certificate ", 1)), 0o644)
	startTLSServer(t, live, tp.ServerNS, tp.ServerIP, upPort, []string{"nginx", "-c", upConf})
	var paths []string
	for _, vers := range []string{"TLSv1.2", "TLSv1.3"} {
		// A proxy per version; its first connection makes a full handshake,
		// the next ones resume the session.
		pxPort := nextPort()
		startServerURL(t, tp.ClientNS, fmt.Sprintf("http://%s:%d/ready", tp.ClientIP, pxPort),
			[]string{"nginx", "-c", nginxProxyConf(t, dir, tp.ClientIP, pxPort, fmt.Sprintf("%s:%d", tp.ServerIP, upPort), vers)})
		for i := 0; i < 4; i++ {
			path := fmt.Sprintf("/%s/opaque/%s/%d", nonce(), vers, i)
			paths = append(paths, path)
			out := runClient(t, tp.ClientNS, []string{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{url_effective}\n",
				fmt.Sprintf("http://%s:%d%s", tp.ClientIP, pxPort, path)})
			if out[0].Status != 200 {
				t.Fatalf("curl: %+v", out)
			}
		}
	}
	pcap := wire.end(tp.ServerIP)
	spans := live.Spans()
	flights, segStarts := wireFlights(t, pcap, upPort)
	checkOpaqueSpans(t, spans, flights, segStarts, tp.ClientIP, upPort, paths)
}

// checkOpaqueSpans matches the L4 spans on upPort with the connections on
// the wire, which dumpcap saw at the proxies' side: by client port among
// the spans from the proxies' address, proxyIP. The upstream's readiness
// probes come from its own namespace's address and may have had the same
// client port (CI saw the like in TestCaptureTLSMidRecord).
func checkOpaqueSpans(t *testing.T, spans []span.Span, wire map[uint16][]wireFlight, segStarts map[uint32]bool, proxyIP string, upPort int, paths []string) {
	t.Helper()
	cl, sv := map[uint16][]span.Span{}, map[uint16][]span.Span{}
	var inbound []span.Span // the proxies' plaintext requests (curl's), by path
	for _, s := range spans {
		if s.TapSide == span.TapServerProcess && s.ProcessName == "nginx" && slices.Contains(paths, s.RequestResource) {
			inbound = append(inbound, s)
		}
		if int(s.ServerPort) != upPort || s.ProcessName != "nginx" {
			continue // the readiness probes' curl
		}
		t.Logf("%s L4 span of %d: request [%d,+%d) response [%d,+%d) context %x/%x", s.TapSide, s.ClientPort,
			s.ReqTCPSeq, s.RequestBytes, s.RespTCPSeq, s.ResponseBytes, s.SyscallTraceIDReq, s.SyscallTraceIDResp)
		if s.L7Protocol != span.L7Unknown || !s.Flags.Has(span.FlagTLS) || s.Flags&span.FlagsTLSLibrary != 0 || s.RequestResource != "" {
			t.Errorf("span on the upstream connection %d: protocol %v flags %b resource %q, want an L4 span with the tls flag",
				s.ClientPort, s.L7Protocol, s.Flags, s.RequestResource)
		}
		if s.ClientIP.Unmap().String() != proxyIP {
			continue // a readiness probe's connection, not on the wire
		}
		switch s.TapSide {
		case span.TapClientProcess:
			cl[s.ClientPort] = append(cl[s.ClientPort], s)
		case span.TapServerProcess:
			sv[s.ClientPort] = append(sv[s.ClientPort], s)
		}
	}
	conns := 0
	for port, fl := range wire {
		// After the handshake (flights that open with a handshake record,
		// 22): the client's bytes from S to E (the end of its last flight
		// that is not a lone alert, 21 or TLS 1.3's 24 bytes), the server's
		// from T to the end of its last flight; where flights begin.
		var S, E, T, R uint32
		seen, resp := false, false
		for _, w := range fl {
			if !seen && (!w.fromClient || w.first == 22) {
				continue
			}
			if w.fromClient && !seen {
				S, seen = w.seq, true
			}
			if w.fromClient && w.first != 21 && w.n != 24 {
				E = w.seq + uint32(w.n)
			}
			if !w.fromClient && !resp {
				T, resp = w.seq, true
			}
			if !w.fromClient {
				R = w.seq + uint32(w.n)
			}
		}
		if !seen || !resp {
			t.Errorf("connection %d: no exchange on the wire after the handshake: %+v", port, fl)
			continue
		}
		conns++
		t.Logf("connection %d: wire request [%d,%d) response [%d,%d); flights %+v", port, S, E, T, R, fl)
		if len(cl[port]) != 1 || len(sv[port]) != 1 {
			t.Errorf("connection %d: %d c-p and %d s-p L4 spans, want 1 and 1", port, len(cl[port]), len(sv[port]))
			continue
		}
		c, s := cl[port][0], sv[port][0]
		if c.ProcessName != "nginx" || s.ProcessName != "nginx" {
			t.Errorf("connection %d: processes %q and %q, want nginx", port, c.ProcessName, s.ProcessName)
		}
		inside := func(x span.Span) bool {
			return x.RespTCPSeq-T < R-T && x.RespTCPSeq+uint32(x.ResponseBytes)-T <= R-T && x.ResponseBytes > 0
		}
		// The client's request from S, or — its Finished written apart —
		// from the segment after it.
		if (c.ReqTCPSeq != S && (!segStarts[c.ReqTCPSeq] || c.ReqTCPSeq-S >= E-S)) || c.ReqTCPSeq+uint32(c.RequestBytes) != E || c.RespTCPSeq != T || !inside(c) {
			t.Errorf("connection %d: client L4 span request [%d,+%d) response [%d,+%d), want [%d,%d) (or from a segment's start after the Finished) and from %d inside [%d,%d)", port,
				c.ReqTCPSeq, c.RequestBytes, c.RespTCPSeq, c.ResponseBytes, S, E, T, T, R)
		}
		// The server's flights may start later than the client's (a
		// Finished read apart, session tickets written before the
		// response), at a segment the other side wrote.
		if !segStarts[s.ReqTCPSeq] || s.ReqTCPSeq+uint32(s.RequestBytes) != E || !segStarts[s.RespTCPSeq] || !inside(s) {
			t.Errorf("connection %d: server L4 span request [%d,+%d) response [%d,+%d), want from a segment's start to %d and a response from a segment's start inside [%d,%d)",
				port, s.ReqTCPSeq, s.RequestBytes, s.RespTCPSeq, s.ResponseBytes, E, T, R)
		}
		if cs, ss := c.RespTCPSeq, s.RespTCPSeq; !(ss-cs < uint32(c.ResponseBytes) || cs-ss < uint32(s.ResponseBytes)) {
			t.Errorf("connection %d: the response ranges do not overlap", port)
		}
		// No kernel request context on an L4 span (bpf/socket/opaque.h).
		// The one context the client's carries is the proxy's inbound
		// request it forwards (forward.go): the proxy read it, then
		// connected upstream; the upstream nginx forwards nothing.
		if s.SyscallTraceIDReq != 0 || s.SyscallTraceIDResp != 0 || c.SyscallTraceIDResp != 0 {
			t.Errorf("connection %d: L4 spans with context ids %x/%x and %x/%x, want only the client's request's", port,
				c.SyscallTraceIDReq, c.SyscallTraceIDResp, s.SyscallTraceIDReq, s.SyscallTraceIDResp)
		}
		var by []span.Span
		for _, in := range inbound {
			if in.StartNs <= c.StartNs && c.EndNs <= in.EndNs {
				by = append(by, in)
			}
		}
		if len(by) != 1 || c.SyscallTraceIDReq == 0 || c.SyscallTraceIDReq != by[0].SyscallTraceIDReq {
			t.Errorf("connection %d: client L4 span's context %x; the proxy's inbound requests around it: %d, want one with that context", port,
				c.SyscallTraceIDReq, len(by))
		}
	}
	if conns != len(paths) {
		t.Errorf("%d upstream connections on the wire, want %d", conns, len(paths))
	}
	for _, p := range paths {
		if len(byPath(spans, span.TapServerProcess, p)) != 1 {
			t.Errorf("%s: no plaintext s-p span at the proxy", p)
		}
	}
}

// liveTopoExcluding is liveTopo with the TLS calls of the processes named
// excluded from reading (config tls.exclude_processes).
func liveTopoExcluding(t *testing.T, names ...string) (*topo, *liveCapture) {
	t.Helper()
	tp := newTopo(t)
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}, TLSExclude: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	return tp, live
}

// startServerURL starts argv in ns and waits until url answers.
func startServerURL(t *testing.T, ns, url string, argv []string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	var stderr strings.Builder
	cmd.Stderr = &syncWriter{w: &stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	waitServing(t, ns, url, argv, done, &stderr)
}
