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

// buildPeer builds one of collector/testpeers into a temporary directory,
// with extra go build flags.
func buildPeer(t *testing.T, name string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := append(append([]string{"build", "-o", bin}, flags...), "../testpeers/"+name)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

// grpcServer starts grpcpeer's health server in a new topology's server
// namespace and waits until it answers; check runs `grpcpeer check ADDR
// ARGS…` in the client namespace and returns its output's fields.
func grpcServer(t *testing.T) (tp *topo, port int, check func(args ...string) []string) {
	requireRoot(t)
	peer := buildPeer(t, "grpcpeer")
	tp = newTopo(t)
	port = nextPort()
	addr := fmt.Sprintf("%s:%d", tp.ServerIP, port)
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, peer, "serve", addr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	check = func(args ...string) []string {
		out, err := exec.Command("ip", append([]string{"netns", "exec", tp.ClientNS, peer, "check", addr}, args...)...).CombinedOutput()
		if err != nil {
			return []string{err.Error() + ": " + string(out)}
		}
		return strings.Fields(string(out))
	}
	for i := 0; i < 50; i++ {
		if out := check("reviews", "ready", "1"); len(out) == 1 && out[0] == "OK" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return tp, port, check
}

// TestCaptureGRPC: grpc-go client and server (separate processes, two
// namespaces), three unary calls on one connection and a NOT_FOUND call:
// one c-p and one s-p span per call, read through HPACK with the dynamic
// table the calls share, paired by stream id, equal sequence numbers.
func TestCaptureGRPC(t *testing.T) {
	tp, _, checkArgs := grpcServer(t)
	check := func(service, xrid string, n int) []string { return checkArgs(service, xrid, fmt.Sprint(n)) }
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
		c, s := sidesOf(spans, func(sp span.Span) bool { return sp.XRequestIDReq == tc.xrid })
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

// TestCaptureKafka: franz-go's client producing to and consuming from its
// kfake broker (separate processes, two namespaces): Produce and Fetch
// spans with the topic, version and correlation id, paired by it.
func TestCaptureKafka(t *testing.T) {
	requireRoot(t)
	peer := buildPeer(t, "kafkapeer")
	tp := newTopo(t)
	addr := fmt.Sprintf("%s:%d", tp.ServerIP, nextPort())
	srv := exec.Command("ip", "netns", "exec", tp.ServerNS, peer, "broker", addr, "orders")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	client := func(args ...string) string {
		out, _ := exec.Command("ip", append([]string{"netns", "exec", tp.ClientNS, peer}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for i := 0; i < 50 && client("produce", addr, "warmup", "0") != "OK"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if out := client("produce", addr, "orders", "3"); out != "OK" {
		t.Fatalf("produce: %q", out)
	}
	if out := client("consume", addr, "orders", "3"); out != "3" {
		t.Fatalf("consume: %q", out)
	}
	// Correlation ids count per connection (franz-go opens several, each
	// from 0): a connection is its client port, the same on both sides.
	type key struct {
		api  string
		tap  span.TapSide
		corr uint32
		conn uint16
	}
	spans := map[key][]span.Span{}
	for _, s := range live.Spans() {
		if s.L7Protocol == span.L7Kafka {
			k := key{s.RequestType, s.TapSide, s.StreamID, s.ClientPort}
			spans[k] = append(spans[k], s)
		}
	}
	// The consumer exits once it has its records, while its next Fetch (a
	// long poll) may be in flight: the last Fetch of a connection may end
	// unanswered, as a timeout on both sides.
	lastFetch := map[uint16]uint32{}
	for k := range spans {
		if k.api == "Fetch" {
			lastFetch[k.conn] = max(lastFetch[k.conn], k.corr)
		}
	}
	produces := 0
	for k, ss := range spans {
		if k.tap != span.TapClientProcess || (k.api != "Produce" && k.api != "Fetch") {
			continue
		}
		srvSide := spans[key{k.api, span.TapServerProcess, k.corr, k.conn}]
		if len(ss) != 1 || len(srvSide) != 1 {
			t.Errorf("%s correlation %d on client port %d: %d client and %d server spans", k.api, k.corr, k.conn, len(ss), len(srvSide))
			continue
		}
		c, s := ss[0], srvSide[0]
		if k.api == "Produce" {
			produces++
		}
		if k.api == "Fetch" && k.corr == lastFetch[k.conn] && c.ResponseStatus == span.StatusTimeout &&
			s.ResponseStatus == span.StatusTimeout && c.RespTCPSeq == 0 && s.RespTCPSeq == 0 {
			if c.ReqTCPSeq != s.ReqTCPSeq || c.ReqTCPSeq == 0 {
				t.Errorf("unanswered Fetch %d: seqs client %d server %d", k.corr, c.ReqTCPSeq, s.ReqTCPSeq)
			}
			continue
		}
		for _, sp := range []span.Span{c, s} {
			// Produce names its topic (by id from version 13); an incremental
			// Fetch of a fetch session may list none.
			named := sp.RequestResource == "orders" || strings.HasPrefix(sp.RequestResource, "topic-id:")
			if k.api == "Produce" && !named || sp.L7Version == "" ||
				sp.ResponseStatus != span.StatusOK || sp.EndNs < sp.StartNs || sp.Flags.Has(span.FlagNoRequest) {
				t.Errorf("%s %s: %+v", k.api, sp.TapSide, sp)
			}
		}
		if c.ReqTCPSeq != s.ReqTCPSeq || c.RespTCPSeq != s.RespTCPSeq || c.ReqTCPSeq == 0 {
			t.Errorf("%s %d: seqs client %d/%d server %d/%d", k.api, k.corr, c.ReqTCPSeq, c.RespTCPSeq, s.ReqTCPSeq, s.RespTCPSeq)
		}
	}
	if produces != 3 {
		t.Errorf("%d Produce exchanges, want 3; spans %v", produces, spans)
	}
	fetches := 0
	for k := range spans {
		if k.api == "Fetch" && k.tap == span.TapClientProcess {
			fetches++
		}
	}
	if fetches == 0 {
		t.Errorf("no Fetch spans")
	}
}

// TestCaptureGRPCConcurrent: grpc-go's client makes 64 Checks, 8 at a time,
// on one connection, each with service names padded to 2000 bytes, an
// x-request-id XRID-i and a traceparent whose trace id is i: the client's
// writes put several streams' HEADERS and DATA in one syscall, past the
// captured prefix (1024 bytes), so the framing of a direction is lost and
// found again. No span may carry another call's fields: a span with both
// headers read has the x-request-id and trace id of one call, every
// x-request-id is one the client sent. How many calls keep their fields
// is logged: with the default payload size few do after the first gap
// (docs/l7.md "The HPACK table after bytes not read"); with a payload size
// of 16383 bytes the writes are read whole, and at least half the calls
// must keep both headers on each side (64 of 64 measured).
func TestCaptureGRPCConcurrent(t *testing.T) {
	tp, port, check := grpcServer(t)
	for _, size := range []int{0, 16383} {
		grpcConcurrent(t, tp, port, size, check)
	}
}

func grpcConcurrent(t *testing.T, tp *topo, port, payload int, check func(...string) []string) {
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}, PayloadSize: payload})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	const calls = 64
	id := "cc" + nonce()
	out := check("svc", id, fmt.Sprint(calls), "8", "2000")
	if len(out) != calls {
		t.Fatalf("checks: %q", out)
	}
	for _, o := range out {
		if o != "NotFound" {
			t.Fatalf("checks: %q", out)
		}
	}
	sent := map[string]int{}
	for i := 1; i <= calls; i++ {
		sent[fmt.Sprintf("%s-%d", id, i)] = i
	}
	kept, partial := map[span.TapSide]int{}, map[span.TapSide]int{}
	for _, s := range live.Spans() {
		if int(s.ServerPort) != port || (s.L7Protocol != span.L7GRPC && s.L7Protocol != span.L7HTTP2) {
			continue
		}
		if s.Flags.Has(span.FlagPartial) {
			partial[s.TapSide]++
		}
		i, ok := sent[s.XRequestIDReq]
		if s.XRequestIDReq != "" && !ok {
			t.Errorf("%s stream %d: x-request-id %q, not one the client sent", s.TapSide, s.StreamID, s.XRequestIDReq)
			continue
		}
		var want span.TraceID
		want[15] = byte(i)
		switch {
		case ok && s.TraceID != (span.TraceID{}) && s.TraceID != want:
			t.Errorf("%s stream %d: x-request-id %q of call %d with trace id %x of another", s.TapSide, s.StreamID, s.XRequestIDReq, i, s.TraceID)
		case ok && s.TraceID == want:
			kept[s.TapSide]++
		}
	}
	t.Logf("payload size %d: calls with both headers read: client side %d, server side %d of %d; partial spans %v",
		payload, kept[span.TapClientProcess], kept[span.TapServerProcess], calls, partial)
	if payload > 0 && (kept[span.TapClientProcess] < calls/2 || kept[span.TapServerProcess] < calls/2) {
		t.Errorf("payload size %d: calls with both headers read: client side %d, server side %d of %d, want at least %d",
			payload, kept[span.TapClientProcess], kept[span.TapServerProcess], calls, calls/2)
	}
}
