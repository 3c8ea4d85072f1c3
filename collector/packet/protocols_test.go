//go:build linux

package packet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/ebpf"
	"github.com/zerotrace/zerotrace/collector/testpeers"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// protoBed is a client pod and a server pod namespace routed through a
// node namespace, with the packet capture on the host side of the client
// pod's veth (tap side c) and the eBPF capture on both pods at the same time:
// every protocol test runs a real client and server and compares the two.
//
//	client 10.205.N.2 ─ ch │ node │ sh ─ server 10.206.N.2
type protoBed struct {
	t                        *testing.T
	cns, sns, node, cip, sip string
	mu                       sync.Mutex
	pkt, bpf                 []span.Span
	pc                       *Capture
	bc                       *ebpf.Capture
}

var bedSeq atomic.Int32

func newProtoBed(t *testing.T) *protoBed {
	t.Helper()
	testenv.RequireRoot(t) // network namespaces, AF_PACKET sockets and BPF programs
	n := bedSeq.Add(1)
	id := fmt.Sprintf("zt-pp-%d-%d", os.Getpid(), n)
	b := &protoBed{t: t, cns: id + "-c", sns: id + "-s", node: id + "-n",
		cip: fmt.Sprintf("10.205.%d.2", n), sip: fmt.Sprintf("10.206.%d.2", n)}
	t.Cleanup(func() {
		for _, ns := range []string{b.cns, b.sns, b.node} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{b.cns, b.sns, b.node} {
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "netns", "exec", b.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, p := range []struct{ pod, host, ip, gw string }{
		{b.cns, "ch", b.cip, fmt.Sprintf("10.205.%d.1", n)},
		{b.sns, "sh", b.sip, fmt.Sprintf("10.206.%d.1", n)},
	} {
		sh(t, "ip", "-n", b.node, "link", "add", p.host, "type", "veth", "peer", "name", "eth0", "netns", p.pod)
		sh(t, "ip", "-n", b.node, "addr", "add", p.gw+"/24", "dev", p.host)
		sh(t, "ip", "-n", b.node, "link", "set", p.host, "up")
		sh(t, "ip", "-n", p.pod, "addr", "add", p.ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", p.pod, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", p.pod, "route", "add", "default", "via", p.gw)
	}
	var err error
	b.pc, err = Start(Options{Node: "test", Interfaces: []Interface{{Netns: "/run/netns/" + b.node, Name: "ch"}}},
		func(s *span.Span) { b.mu.Lock(); b.pkt = append(b.pkt, *s); b.mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.pc.Close() })
	b.bc, err = ebpf.Start(ebpf.Options{Node: "test", NetNS: []uint32{inodeOf(t, "/run/netns/"+b.cns), inodeOf(t, "/run/netns/"+b.sns)}},
		func(s *span.Span) { b.mu.Lock(); b.bpf = append(b.bpf, *s); b.mu.Unlock() })
	if err != nil {
		t.Fatalf("eBPF capture: %v", err)
	}
	t.Cleanup(func() { b.bc.Close() })
	return b
}

// start runs argv in the server namespace until the test ends.
func (b *protoBed) start(argv ...string) {
	b.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", b.sns}, argv...)...)
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("starting %v: %v", argv, err)
	}
	b.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// client runs argv in the client namespace and returns its output.
func (b *protoBed) client(argv ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", b.cns}, argv...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// until retries argv in the client namespace until its output contains want.
func (b *protoBed) until(want string, argv ...string) {
	b.t.Helper()
	var out string
	var err error
	for i := 0; i < 100; i++ {
		if out, err = b.client(argv...); err == nil && strings.Contains(out, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("%v: %v %q", argv, err, out)
}

// reset forgets the spans so far (those of readiness probes).
func (b *protoBed) reset() {
	b.pc.Flush()
	b.bc.Flush()
	b.mu.Lock()
	b.pkt, b.bpf = nil, nil
	b.mu.Unlock()
}

// spans returns the packet spans and the eBPF spans seen so far: both
// Flushes first take what their rings hold, and every frame and event of
// an exchange was written before its client received the response.
func (b *protoBed) spans() (pkt, bpf []span.Span) {
	b.pc.Flush()
	b.bc.Flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]span.Span(nil), b.pkt...), append([]span.Span(nil), b.bpf...)
}

// want describes one exchange expected from both captures.
type want struct {
	name     string
	match    func(*span.Span) bool
	proto    span.L7Protocol
	typ      string // request_type
	resource string
	status   span.ResponseStatus
	code     int32
}

// check finds exactly one packet span (client NIC), one eBPF client-process
// span and one eBPF server-process span of each exchange, all carrying the
// expected fields and the same request and response sequence numbers.
func (b *protoBed) check(ws ...want) {
	b.t.Helper()
	pkt, bpf := b.spans()
	for _, w := range ws {
		var got []span.Span
		count := map[span.TapSide]int{}
		for _, sp := range append(pkt, bpf...) {
			if w.match(&sp) {
				got = append(got, sp)
				count[sp.TapSide]++
			}
		}
		if count[span.TapClientNIC] != 1 || count[span.TapClientProcess] != 1 || count[span.TapServerProcess] != 1 {
			b.t.Errorf("%s: spans per tap side %v, want one packet (c), one c-p and one s-p; all %d packet spans:\n%s",
				w.name, count, len(pkt), dumpSpans(pkt))
			continue
		}
		for _, sp := range got {
			if sp.L7Protocol != w.proto || sp.RequestType != w.typ || sp.RequestResource != w.resource ||
				sp.ResponseStatus != w.status || sp.ResponseCode != w.code || sp.EndNs < sp.StartNs {
				b.t.Errorf("%s %s (%s): %s %q %q %s code %d exc %q, want %s %q %q %s code %d", w.name, sp.TapSide, sp.SignalSource,
					sp.L7Protocol, sp.RequestType, sp.RequestResource, sp.ResponseStatus, sp.ResponseCode, sp.ResponseException,
					w.proto, w.typ, w.resource, w.status, w.code)
			}
			if sp.ReqTCPSeq != got[0].ReqTCPSeq || sp.RespTCPSeq != got[0].RespTCPSeq {
				b.t.Errorf("%s: %s seqs %d/%d, %s %d/%d", w.name, sp.TapSide, sp.ReqTCPSeq, sp.RespTCPSeq,
					got[0].TapSide, got[0].ReqTCPSeq, got[0].RespTCPSeq)
			}
		}
	}
}

func dumpSpans(ss []span.Span) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s %s %q %q %s code=%d stream=%d seq=%d/%d flags=%d\n", s.TapSide, s.L7Protocol, s.RequestType,
			s.RequestResource, s.ResponseStatus, s.ResponseCode, s.StreamID, s.ReqTCPSeq, s.RespTCPSeq, s.Flags)
	}
	return b.String()
}

func needBins(t *testing.T, bins ...string) {
	t.Helper()
	testenv.RequireBinaries(t, bins...)
}

func buildPeer(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "../testpeers/"+name).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

// TestGRPCPackets: grpc-go client and server; the packet capture reads the
// same HTTP/2 frames as the eBPF capture.
func TestGRPCPackets(t *testing.T) {
	peer := buildPeer(t, "grpcpeer")
	b := newProtoBed(t)
	addr := b.sip + ":50051"
	b.start(peer, "serve", addr)
	b.until("OK", peer, "check", addr, "reviews", "ready")
	b.reset()
	if out, err := b.client(peer, "check", addr, "reviews", "call", "2"); err != nil || out != "OK\nOK" {
		t.Fatalf("check: %v %q", err, out)
	}
	if out, err := b.client(peer, "check", addr, "nope", "miss"); err != nil || out != "NotFound" {
		t.Fatalf("check: %v %q", err, out)
	}
	xrid := func(id string) func(*span.Span) bool {
		return func(s *span.Span) bool { return s.XRequestIDReq == id }
	}
	const path = "/grpc.health.v1.Health/Check"
	b.check(
		want{"call-1", xrid("call-1"), span.L7GRPC, "POST", path, span.StatusOK, 0},
		want{"call-2", xrid("call-2"), span.L7GRPC, "POST", path, span.StatusOK, 0},
		want{"miss-1", xrid("miss-1"), span.L7GRPC, "POST", path, span.StatusClientError, 5},
	)
}

// TestRedisPackets: redis-cli commands, an error reply, and a bounded
// redis-benchmark run (pipelined) against redis-server.
func TestRedisPackets(t *testing.T) {
	needBins(t, "redis-server", "redis-cli", "redis-benchmark")
	b := newProtoBed(t)
	b.start("redis-server", "--bind", b.sip, "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no")
	b.until("PONG", "redis-cli", "-h", b.sip, "PING")
	b.reset()
	for _, args := range [][]string{{"SET", "zt:user", "alice"}, {"GET", "zt:user"}, {"INCR", "zt:user"}} {
		if _, err := b.client(append([]string{"redis-cli", "-h", b.sip}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	cmd := func(c, key string) func(*span.Span) bool {
		return func(s *span.Span) bool { return s.RequestType == c && s.RequestResource == key }
	}
	b.check(
		want{"SET", cmd("SET", "zt:user"), span.L7Redis, "SET", "zt:user", span.StatusOK, 0},
		want{"GET", cmd("GET", "zt:user"), span.L7Redis, "GET", "zt:user", span.StatusOK, 0},
		want{"INCR", cmd("INCR", "zt:user"), span.L7Redis, "INCR", "zt:user", span.StatusClientError, 0},
	)
	// redis-benchmark: pipelined SETs (16 per round trip) on one
	// connection; every one is a span at each tap side.
	b.reset()
	if out, err := b.client("redis-benchmark", "-h", b.sip, "-c", "1", "-n", "200", "-P", "16", "-t", "set", "-q"); err != nil {
		// redis-benchmark's throughput timer can fire after its one client
		// has finished and been freed, and then exits 1 with this message
		// (redis/redis#4575; seen here under CI's parallel load). The SETs
		// were sent all the same: the counts below are the judge.
		if !strings.Contains(out, "All clients disconnected... aborting.") {
			t.Fatalf("redis-benchmark: %v %s", err, out)
		}
		t.Logf("redis-benchmark exited with %v after its client finished: %s", err, out)
	}
	pkt, bpf := b.spans()
	n := map[span.TapSide]int{}
	for _, s := range append(pkt, bpf...) {
		if s.L7Protocol == span.L7Redis && s.RequestType == "SET" && s.ResponseStatus == span.StatusOK {
			n[s.TapSide]++
		}
	}
	if n[span.TapClientNIC] < 200 || n[span.TapClientProcess] != n[span.TapClientNIC] || n[span.TapServerProcess] != n[span.TapClientNIC] {
		t.Errorf("redis-benchmark SETs per tap side: %v, want the same number, at least 200, at each", n)
	}
}

// TestDNSRealPackets: dig against dnsmasq: the answer and an NXDOMAIN.
func TestDNSRealPackets(t *testing.T) {
	needBins(t, "dnsmasq", "dig")
	b := newProtoBed(t)
	b.start("dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--listen-address="+b.sip, "--bind-interfaces",
		"--port=53", "--address=/details.zt.test/10.203.1.10", "--local=/zt.test/", "--pid-file=", "--user=root")
	dig := []string{"dig", "+short", "+tries=1", "+time=2", "@" + b.sip}
	b.until("10.203.1.10", append(dig, "details.zt.test", "A")...)
	b.reset()
	b.client(append(dig, "details.zt.test", "A")...)
	b.client(append(dig, "missing.zt.test", "AAAA")...)
	name := func(n string) func(*span.Span) bool {
		return func(s *span.Span) bool { return s.RequestResource == n }
	}
	b.check(
		want{"A", name("details.zt.test"), span.L7DNS, "A", "details.zt.test", span.StatusOK, 0},
		want{"NXDOMAIN", name("missing.zt.test"), span.L7DNS, "AAAA", "missing.zt.test", span.StatusClientError, 3},
	)
}

// startDB runs a database server of testpeers, or skips without it.
func startDB(t *testing.T, start func(dir, ns, ip string) (*testpeers.Server, error), ns, ip string) {
	t.Helper()
	s, err := start(t.TempDir(), ns, ip)
	if err != nil {
		if strings.HasPrefix(err.Error(), "needs ") {
			testenv.Skip(t, "%v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
}

func byEndpoint(s string) func(*span.Span) bool {
	return func(sp *span.Span) bool { return sp.Endpoint == s }
}

// TestMySQLPackets: the mariadb client against mariadbd.
func TestMySQLPackets(t *testing.T) {
	b := newProtoBed(t)
	startDB(t, testpeers.StartMariaDB, b.sns, b.sip)
	mysql := []string{"mariadb", "--no-defaults", "-h", b.sip, "-P", "3306", "-u", "root"}
	b.until("", append(mysql, "-e", "CREATE DATABASE IF NOT EXISTS shop")...)
	b.reset()
	if out, err := b.client(append(mysql, "-D", "shop", "-e", "CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2); SELECT id FROM t WHERE id > 0; SELECT x FROM nope")...); err == nil {
		t.Fatalf("script did not fail: %s", out)
	}
	b.check(
		want{"INSERT", byEndpoint("INSERT INTO t VALUES (?), (?)"), span.L7MySQL, "INSERT", "INSERT INTO t VALUES (?), (?)", span.StatusOK, 0},
		want{"SELECT", byEndpoint("SELECT id FROM t WHERE id > ?"), span.L7MySQL, "SELECT", "SELECT id FROM t WHERE id > ?", span.StatusOK, 0},
		want{"error", byEndpoint("SELECT x FROM nope"), span.L7MySQL, "SELECT", "SELECT x FROM nope", span.StatusClientError, 1146},
	)
}

// TestPostgreSQLPackets: psql against postgres.
func TestPostgreSQLPackets(t *testing.T) {
	b := newProtoBed(t)
	startDB(t, testpeers.StartPostgres, b.sns, b.sip)
	psql := []string{"psql", "-h", b.sip, "-p", "5432", "-U", "postgres"}
	b.until("", append(psql, "-d", "postgres", "-c", "CREATE DATABASE shop")...)
	b.reset()
	if out, err := b.client(append(psql, "-d", "shop", "-c", "CREATE TABLE t (id int)", "-c", "INSERT INTO t VALUES (1), (2)",
		"-c", "SELECT id FROM t WHERE id > 0", "-c", "SELECT x FROM nope")...); err == nil {
		t.Fatalf("psql did not fail: %s", out)
	}
	b.check(
		want{"INSERT", byEndpoint("INSERT INTO t VALUES (?), (?)"), span.L7PostgreSQL, "INSERT", "INSERT INTO t VALUES (?), (?)", span.StatusOK, 0},
		want{"SELECT", byEndpoint("SELECT id FROM t WHERE id > ?"), span.L7PostgreSQL, "SELECT", "SELECT id FROM t WHERE id > ?", span.StatusOK, 0},
		want{"error", byEndpoint("SELECT x FROM nope"), span.L7PostgreSQL, "SELECT", "SELECT x FROM nope", span.StatusClientError, 0},
	)
}

// TestKafkaPackets: franz-go's client against its kfake broker: Produce
// spans paired by correlation id.
func TestKafkaPackets(t *testing.T) {
	peer := buildPeer(t, "kafkapeer")
	b := newProtoBed(t)
	addr := b.sip + ":9092"
	b.start(peer, "broker", addr, "orders")
	b.until("OK", peer, "produce", addr, "warmup", "0")
	b.reset()
	if out, err := b.client(peer, "produce", addr, "orders", "2"); err != nil || out != "OK" {
		t.Fatalf("produce: %v %q", err, out)
	}
	pkt, bpf := b.spans()
	byCorr := map[uint32]map[span.TapSide]span.Span{}
	for _, s := range append(pkt, bpf...) {
		if s.L7Protocol == span.L7Kafka && s.RequestType == "Produce" {
			if byCorr[s.StreamID] == nil {
				byCorr[s.StreamID] = map[span.TapSide]span.Span{}
			}
			byCorr[s.StreamID][s.TapSide] = s
		}
	}
	if len(byCorr) != 2 {
		t.Fatalf("Produce correlation ids %v, want 2:\n%s", len(byCorr), dumpSpans(pkt))
	}
	for corr, taps := range byCorr {
		c := taps[span.TapClientNIC]
		for _, tap := range []span.TapSide{span.TapClientNIC, span.TapClientProcess, span.TapServerProcess} {
			s, ok := taps[tap]
			if !ok || s.ResponseStatus != span.StatusOK || !strings.HasPrefix(s.RequestResource, "topic-id:") && s.RequestResource != "orders" ||
				s.ReqTCPSeq != c.ReqTCPSeq || s.RespTCPSeq != c.RespTCPSeq || s.ReqTCPSeq == 0 {
				t.Errorf("correlation %d at %s: %v %+v", corr, tap, ok, s)
			}
		}
	}
}
