//go:build linux

package packet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/testenv"
	pk "github.com/zerotrace/zerotrace/pkg/packet"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// tlsServer is a Python HTTPS server (keep-alive, HTTP/1.1) answering
// /size/N with N bytes and logging one line per request to stderr; with
// a CA file it requires a client certificate (mutual TLS).
const tlsServer = `
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        n = int(self.path.rsplit("/", 1)[1])
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(b"x" * n)
    def log_message(self, fmt, *args):
        sys.stderr.write("REQ %s\n" % self.path)
        sys.stderr.flush()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
ctx.load_verify_locations(sys.argv[2])
ctx.verify_mode = ssl.CERT_REQUIRED
srv = http.server.ThreadingHTTPServer((sys.argv[1], 8443), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
`

// TestTLSFlights: real TLS conversations (Python's ssl server, curl) across
// a veth pair between two namespaces, captured by the real AF_PACKET path at
// the client's and the server's vNIC. Each connection makes several
// requests over keep-alive; the ground truth is what the client asked (the
// sizes of the responses) and the server's own log. Every request must be
// one tls span at each point, in order, with a response of its size and the
// same sequence numbers at both points; handshakes make no span.
func TestTLSFlights(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinaries(t, "openssl", "curl", testenv.SysPython)
	id := fmt.Sprintf("zt-tls-%d", os.Getpid())
	cns, sns, node := id+"-c", id+"-s", id+"-n"
	t.Cleanup(func() {
		for _, ns := range []string{cns, sns, node} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{cns, sns, node} {
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, p := range []struct{ pod, host, ip, gw string }{{cns, "ch", "10.207.1.2", "10.207.1.1"}, {sns, "sh", "10.207.2.2", "10.207.2.1"}} {
		sh(t, "ip", "-n", node, "link", "add", p.host, "type", "veth", "peer", "name", "eth0", "netns", p.pod)
		sh(t, "ip", "-n", node, "addr", "add", p.gw+"/24", "dev", p.host)
		sh(t, "ip", "-n", node, "link", "set", p.host, "up")
		sh(t, "ip", "-n", p.pod, "addr", "add", p.ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", p.pod, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", p.pod, "route", "add", "default", "via", p.gw)
	}
	dir := t.TempDir()
	crt, key, script := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "srv.py")
	sh(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
		"-subj", "/CN=zt-test", "-addext", "subjectAltName=IP:10.207.2.2", "-keyout", key, "-out", crt)
	if err := os.WriteFile(script, []byte(tlsServer), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var logMu sync.Mutex
	srv := exec.Command("ip", "netns", "exec", sns, testenv.SysPython, script, "10.207.2.2", crt, key)
	srv.Stderr = writerFunc(func(b []byte) { logMu.Lock(); log.Write(b); logMu.Unlock() })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	curl := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", cns, "curl", "-sS", "--cacert", crt, "--cert", crt, "--key", key,
			"-w", "%{size_download} %{num_connects}\n"}, args...)...).CombinedOutput()
		return string(out[:min(len(out), 2000)]), err
	}
	for i := 0; ; i++ { // the server is up when a request succeeds
		if _, err := curl("-o", "/dev/null", "https://10.207.2.2:8443/size/1"); err == nil {
			break
		} else if i == 50 {
			t.Fatalf("server not up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var mu sync.Mutex
	var spans []span.Span
	c, err := Start(Options{Node: "test", Interfaces: []Interface{{Netns: "/run/netns/" + node, Name: "ch"}, {Netns: "/run/netns/" + node, Name: "sh"}}},
		func(s *span.Span) { mu.Lock(); spans = append(spans, *s); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	logMu.Lock()
	log.Reset()
	logMu.Unlock()

	// Ground truth: each connection's responses, by size, in order.
	conns := []struct {
		name  string
		flags []string
		sizes []int
	}{
		{"TLS 1.3, mutual", []string{"--tlsv1.3"}, []int{1000, 40000, 3000, 150000, 10}},
		{"TLS 1.2, mutual", []string{"--tlsv1.2", "--tls-max", "1.2"}, []int{70000, 200, 9000}},
	}
	requests := 0
	for _, cn := range conns {
		args := append([]string(nil), cn.flags...)
		for _, n := range cn.sizes {
			args = append(args, "-o", "/dev/null", fmt.Sprintf("https://10.207.2.2:8443/size/%d", n))
		}
		out, err := curl(args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", cn.name, err, out)
		}
		var got []string
		for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
			got = append(got, l)
			if want := fmt.Sprintf("%d %d", cn.sizes[i], map[bool]int{true: 1, false: 0}[i == 0]); l != want {
				t.Fatalf("%s: curl says %q for request %d, want %q (one connection)", cn.name, l, i, want)
			}
		}
		requests += len(cn.sizes)
	}
	// Flush takes what the rings hold and ends the last response flight
	// (it would otherwise end after tlsFlightIdle).
	c.Flush()
	logMu.Lock()
	served := strings.Count(log.String(), "REQ /size/")
	logMu.Unlock()
	if served != requests {
		t.Fatalf("server logged %d requests, the client made %d", served, requests)
	}
	mu.Lock()
	defer mu.Unlock()
	byNIC := map[string][]span.Span{}
	for _, s := range spans {
		if !s.Flags.Has(span.FlagTLS) || s.ServerPort != 8443 {
			t.Errorf("unexpected span %+v", s)
			continue
		}
		byNIC[s.CaptureNIC] = append(byNIC[s.CaptureNIC], s)
	}
	for nic, ss := range byNIC {
		if len(ss) != requests {
			t.Errorf("%s: %d tls spans, the client made %d requests:\n%s", nic, len(ss), requests, dumpSpans(ss))
			continue
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].StartNs < ss[j].StartNs })
		k := 0
		for _, cn := range conns {
			for i, n := range cn.sizes {
				s := ss[k]
				k++
				// The response flight: the HTTP head and n body bytes, record
				// headers and tags; the first of a TLS 1.3 connection also its
				// session tickets.
				hi := int64(n + n/100 + 600)
				if i == 0 && strings.HasPrefix(cn.name, "TLS 1.3") {
					hi += 2000
				}
				if s.ResponseBytes < int64(n) || s.ResponseBytes > hi || s.RequestBytes < 60 || s.RequestBytes > 400 ||
					s.ReqTCPSeq == 0 || s.RespTCPSeq == 0 || s.Flags.Has(span.FlagTruncated) {
					t.Errorf("%s %s request %d (%d bytes): %+v", nic, cn.name, i, n, s)
				}
			}
		}
	}
	// Both points saw the same flights.
	if a, b := byNIC["ch"], byNIC["sh"]; len(a) == requests && len(b) == requests {
		for i := range a {
			if a[i].ReqTCPSeq != b[i].ReqTCPSeq || a[i].RespTCPSeq != b[i].RespTCPSeq || a[i].RequestBytes != b[i].RequestBytes ||
				a[i].ResponseBytes != b[i].ResponseBytes || a[i].TapSide != span.TapClientNIC || b[i].TapSide != span.TapServerNIC {
				t.Errorf("exchange %d differs between the points:\n%+v\n%+v", i, a[i], b[i])
			}
		}
	} else if len(byNIC) != 2 {
		t.Errorf("spans at %d points, want 2", len(byNIC))
	}
}

type writerFunc func([]byte)

func (w writerFunc) Write(b []byte) (int, error) { w(b); return len(b), nil }

// BenchmarkHandleTLS: what the capture's hot path pays per segment for TLS
// flows. "miss": a segment of a connection the capture does not follow (the
// cost every such segment gains); "flow": a segment of a followed TLS flow.
func BenchmarkHandleTLS(b *testing.B) {
	cli, srv := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		name    string
		payload []byte
	}{{"miss", make([]byte, 10)}, {"flow", append([]byte{23, 3, 3, 0x05, 0x9b}, make([]byte, 1435)...)}} {
		b.Run(tc.name, func(b *testing.B) {
			frame := pk.Ether(pk.EtherIPv4, pk.IP(cli, srv, pk.ProtoTCP, pk.TCP(40000, 443, 1, 1, pk.FlagACK, tc.payload)))
			var p pk.Packet
			if err := p.Decode(frame); err != nil {
				b.Fatal(err)
			}
			rs := &ringState{c: &Capture{opt: Options{Timeout: time.Second}, emit: func(*span.Span) {}, ids: span.NewIDGenerator("b", time.Now())}}
			src, dst := netip.AddrPortFrom(cli, 40000), netip.AddrPortFrom(srv, 443)
			k := flowKey{src, dst}
			f := &Frame{Data: frame, Len: len(frame), TimeNs: 1}
			if tc.name == "flow" {
				rs.tls = map[flowKey]*tlsFlow{k: {fl: flow{client: src}, server: dst}}
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p.Seq = uint32(1 + i*len(tc.payload)) // the flow's next segment
				rs.handleTLS(&p, f, k, src, dst, p.Payload(frame))
			}
		})
	}
}
