//go:build linux

package bookinfo

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestAttribute checks the ground-truth mapping on written-down spans: order
// on a keep-alive connection, a point that lost a span (mapped by time), an
// ambiguous span (left out), and loopback connections with the same 4-tuple
// in two pods.
func TestAttribute(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	pp, rv := netip.MustParseAddr("10.203.2.11"), netip.MustParseAddr("10.203.1.11")
	remote := makeConnKey("", netip.AddrPortFrom(pp, 40000), netip.AddrPortFrom(rv, 9080))
	loopA := makeConnKey("productpage", netip.AddrPortFrom(lo, 50000), netip.AddrPortFrom(lo, 15001))
	loopB := makeConnKey("reviews", netip.AddrPortFrom(lo, 50000), netip.AddrPortFrom(lo, 15001))
	truth := map[connKey][]truthLine{
		remote: {{"a", 1}, {"b", 2}, {"c", 3}},
		loopA:  {{"a", 1}},
		loopB:  {{"x", 1}},
	}
	d := &demo{inode: map[uint64]string{1: "productpage", 2: "reviews"}}
	var id uint64
	mk := func(k connKey, netns uint64, src span.SignalSource, tap span.TapSide, nic string, start, end int64) span.Span {
		id++
		return span.Span{SpanID: id, SignalSource: src, TapSide: tap, NetNS: netns, CaptureNIC: nic, StartNs: start, EndNs: end,
			L7Protocol: span.L7HTTP1, ClientIP: k.client.Addr(), ClientPort: k.client.Port(), ServerIP: k.server.Addr(), ServerPort: k.server.Port()}
	}
	var all []span.Span
	want := map[uint64]string{}
	add := func(s span.Span, marker string) {
		all = append(all, s)
		if marker != "" {
			want[s.SpanID] = marker
		}
	}
	// three requests on one keep-alive connection, seen by the client
	// process and the server process (complete), listed out of order
	for _, m := range []string{"c", "a", "b"} {
		at := map[string]int64{"a": 100, "b": 200, "c": 300}[m]
		add(mk(remote, 1, span.SourceEBPF, span.TapClientProcess, "", at, at+50), m)
		add(mk(remote, 2, span.SourceEBPF, span.TapServerProcess, "", at+10, at+40), m)
	}
	// a NIC that lost request a's frames: b and c by time
	add(mk(remote, 0, span.SourcePacket, span.TapClientNIC, "v-productpage", 205, 245), "b")
	add(mk(remote, 0, span.SourcePacket, span.TapClientNIC, "v-productpage", 305, 345), "c")
	// a NIC whose one span spans two requests: not attributable
	amb := mk(remote, 0, span.SourcePacket, span.TapServerNIC, "v-reviews", 140, 220)
	add(amb, "")
	// the same loopback 4-tuple in two pods
	add(mk(loopA, 1, span.SourceEBPF, span.TapClientProcess, "", 10, 20), "a")
	add(mk(loopB, 2, span.SourceEBPF, span.TapClientProcess, "", 10, 20), "x")
	// a connection nobody logged
	add(mk(makeConnKey("", netip.AddrPortFrom(pp, 1), netip.AddrPortFrom(rv, 2)), 0, span.SourcePacket, span.TapClientNIC, "v-x", 1, 2), "")

	a := d.attribute(all, truth)
	for _, s := range all {
		if got, w := a.marker[s.SpanID], want[s.SpanID]; got != w {
			t.Errorf("span %d (%s %s [%d,%d]): request %q, want %q", s.SpanID, s.TapSide, s.CaptureNIC, s.StartNs, s.EndNs, got, w)
		}
	}
	if len(a.unattributed) != 1 || a.unattributed[0].SpanID != amb.SpanID {
		t.Errorf("unattributed %v, want the ambiguous span %d", a.unattributed, amb.SpanID)
	}
	if a.unknownConn != 1 {
		t.Errorf("spans on no logged connection: %d, want 1", a.unknownConn)
	}
}

// TestReadTruth reads ZTGT lines of sidecars and applications and refuses
// positions that do not run 1, 2, … on a connection.
func TestReadTruth(t *testing.T) {
	run := t.TempDir()
	write := func(pod, file, text string) {
		os.MkdirAll(filepath.Join(run, pod), 0o755)
		if err := os.WriteFile(filepath.Join(run, pod, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		write(p, "truth.log", "")
	}
	write("productpage", "truth.log", "ZTGT m-1 127.0.0.1 5000 127.0.0.1 15001 1\nZTGT m-10 127.0.0.1 5000 127.0.0.1 15001 2\n")
	write("productpage", "app.log", "READY\nZTGT - 127.0.0.1 6000 127.0.0.1 9081 1\n")
	write("reviews", "truth.log", "ZTGT m-1 127.0.0.1 5000 127.0.0.1 15001 1\n")
	truth, err := readTruth(run)
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	k := makeConnKey("productpage", netip.AddrPortFrom(lo, 5000), netip.AddrPortFrom(lo, 15001))
	if got := truth[k]; len(got) != 2 || got[0].marker != "m-1" || got[1].marker != "m-10" {
		t.Errorf("productpage's connection: %v", got)
	}
	if len(truth) != 3 {
		t.Errorf("%d connections, want 3", len(truth))
	}
	write("details", "truth.log", "ZTGT m 10.203.2.11 7000 10.203.1.10 9080 2\n")
	if _, err := readTruth(run); err == nil || !strings.Contains(err.Error(), "position 2") {
		t.Errorf("a connection starting at position 2: %v", err)
	}
	write("details", "truth.log", "ZTGT m 10.203.2.11 7000\n")
	if _, err := readTruth(run); err == nil || !strings.Contains(err.Error(), "7 fields") {
		t.Errorf("a short line: %v", err)
	}
}

// TestAttributeEncrypted checks the TLS variants' rule on written-down
// spans: a span without L7 on a logged connection (a packet span of TLS
// records, a proxy's unread ciphertext) is attributed and placed by its
// server address in a TLS variant, and left out elsewhere, as before.
func TestAttributeEncrypted(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	pp, rv := netip.MustParseAddr("10.203.2.11"), netip.MustParseAddr("10.203.1.11")
	hop := makeConnKey("", netip.AddrPortFrom(pp, 40000), netip.AddrPortFrom(rv, 9080))
	app := makeConnKey("details", netip.AddrPortFrom(lo, 41000), netip.AddrPortFrom(lo, 9081))
	truth := map[connKey][]truthLine{hop: {{"a", 1}}, app: {{"a", 1}}}
	wire := span.Span{SpanID: 1, SignalSource: span.SourcePacket, TapSide: span.TapClientNIC, CaptureNIC: "v-productpage",
		StartNs: 10, EndNs: 20, ClientIP: pp, ClientPort: 40000, ServerIP: rv, ServerPort: 9080}
	proxy := span.Span{SpanID: 2, SignalSource: span.SourceEBPF, TapSide: span.TapClientProcess, NetNS: 3, ProcessName: "nginx",
		StartNs: 10, EndNs: 20, ClientIP: lo, ClientPort: 41000, ServerIP: lo, ServerPort: 9081}
	all := []span.Span{wire, proxy}
	inode := map[uint64]string{3: "details"}

	plain := &demo{inode: inode}
	if a := plain.attribute(all, truth); len(a.marker) != 0 || a.unknownConn != 2 {
		t.Errorf("plain variant: attributed %v, %d on no logged connection; want none, 2", a.marker, a.unknownConn)
	}
	tls := &demo{inode: inode, encrypted: true}
	a := tls.attribute(all, truth)
	if a.marker[1] != "a" || a.marker[2] != "a" || a.unknownConn != 0 {
		t.Errorf("TLS variant: attributed %v, %d on no logged connection; want both to a, 0", a.marker, a.unknownConn)
	}
	for _, c := range []struct {
		s    span.Span
		want string
	}{{wire, "productpage>reviews: productpage-vnic c"}, {proxy, "productpage>details: details-proxy c-p"}} {
		if got := tls.label(c.s); got != c.want {
			t.Errorf("span %d: label %q, want %q", c.s.SpanID, got, c.want)
		}
	}
	if got := serverHop("productpage", lo, 15001); got != "" {
		t.Errorf("productpage's outbound listener: hop %q, want none (it serves two hops)", got)
	}
}

// TestConcurrentBatches: batches are sent until one reaches the floor, at
// most overlapRounds, each one short of it logged; the largest overlap is
// what the caller judges.
func TestConcurrentBatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		overlaps   []int // what each batch showed
		best, sent int
		logged     int
	}{
		{"the first reaches it", []int{12, 30, 30}, 12, 1, 0},
		{"the second reaches it", []int{6, 29, 30}, 29, 2, 1},
		{"the last reaches it", []int{6, 3, 13}, 13, 3, 2},
		{"none reaches it", []int{6, 11, 3}, 11, 3, 3},
	} {
		var logged int
		best, sent := concurrentBatches(func(string, ...any) { logged++ }, 12, func(round int) int { return tc.overlaps[round-1] })
		if best != tc.best || sent != tc.sent || logged != tc.logged {
			t.Errorf("%s: best %d in %d batches, %d logged; want %d in %d, %d logged", tc.name, best, sent, logged, tc.best, tc.sent, tc.logged)
		}
	}
}
