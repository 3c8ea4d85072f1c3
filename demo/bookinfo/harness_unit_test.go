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
		remote: {{"a", 1, "productpage>reviews"}, {"b", 2, "productpage>reviews"}, {"c", 3, "productpage>reviews"}},
		loopA:  {{"a", 1, "productpage>details"}},
		loopB:  {{"x", 1, "reviews>ratings"}},
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
	write("productpage", "truth.log", "ZTGT m-1 127.0.0.1 5000 127.0.0.1 15001 1 reviews\nZTGT m-10 127.0.0.1 5000 127.0.0.1 15001 2 details\n")
	write("productpage", "app.log", "READY\nZTGT - 127.0.0.1 6000 127.0.0.1 9081 1\n")
	write("reviews", "truth.log", "ZTGT m-1 127.0.0.1 5000 127.0.0.1 15001 1\n")
	truth, err := readTruth(run)
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	k := makeConnKey("productpage", netip.AddrPortFrom(lo, 5000), netip.AddrPortFrom(lo, 15001))
	if got := truth[k]; len(got) != 2 || got[0].marker != "m-1" || got[1].marker != "m-10" ||
		got[0].hop != "productpage>reviews" || got[1].hop != "productpage>details" {
		t.Errorf("productpage's connection: %v, want m-1 to reviews, m-10 to details (by Host)", got)
	}
	// the application's line: its caller calls it; a sidecar's outbound
	// line without a Host: no hop
	app := makeConnKey("productpage", netip.AddrPortFrom(lo, 6000), netip.AddrPortFrom(lo, 9081))
	rv := makeConnKey("reviews", netip.AddrPortFrom(lo, 5000), netip.AddrPortFrom(lo, 15001))
	if got := truth[app]; len(got) != 1 || got[0].hop != "loadgen>productpage" {
		t.Errorf("productpage's application: %v, want loadgen>productpage", got)
	}
	if got := truth[rv]; len(got) != 1 || got[0].hop != "" {
		t.Errorf("reviews' outbound line without a Host: %v, want no hop", got)
	}
	if len(truth) != 3 {
		t.Errorf("%d connections, want 3", len(truth))
	}
	write("details", "truth.log", "ZTGT m 10.203.2.11 7000 10.203.1.10 9080 2\n")
	if _, err := readTruth(run); err == nil || !strings.Contains(err.Error(), "position 2") {
		t.Errorf("a connection starting at position 2: %v", err)
	}
	write("details", "truth.log", "ZTGT m 10.203.2.11 7000\n")
	if _, err := readTruth(run); err == nil || !strings.Contains(err.Error(), "7 or 8 fields") {
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
	truth := map[connKey][]truthLine{hop: {{"a", 1, "productpage>reviews"}}, app: {{"a", 1, "productpage>details"}}}
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

// TestLabelUnresolved: a span whose resource names no hop (productpage's
// sidecar's server span on its outbound listener, whose request plaintext
// was not read: a response alone) is labelled with the hop of the logged
// request it is attributed to, so the judge places it at its own point:
// alone in a trace it is a missing link (clean, one span found); at its
// place in its request's whole trace it is clean; under the wrong parent,
// or in another request's trace, it still fails. Without the ground truth's
// hop (before observe) the outbound listener cannot name it (two hops).
func TestLabelUnresolved(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	toDetails := makeConnKey("productpage", netip.AddrPortFrom(lo, 41000), netip.AddrPortFrom(lo, 15001))
	toReviews := makeConnKey("productpage", netip.AddrPortFrom(lo, 41002), netip.AddrPortFrom(lo, 15001))
	truth := map[connKey][]truthLine{
		toDetails: {{"a", 1, truthHop("productpage", toDetails.server, "details")}},
		toReviews: {{"a", 1, truthHop("productpage", toReviews.server, "reviews")}},
	}
	mk := func(id uint64, k connKey, resource string, f span.Flags) span.Span {
		return span.Span{SpanID: id, SignalSource: span.SourceEBPF, TapSide: span.TapServerProcess, NetNS: 1, ProcessName: "nginx",
			L7Protocol: span.L7HTTP1, RequestResource: resource, Flags: f, StartNs: 10, EndNs: 20,
			ClientIP: lo, ClientPort: k.client.Port(), ServerIP: lo, ServerPort: 15001}
	}
	parsed := mk(1, toDetails, "/details/0", span.FlagTLS|span.FlagTLSOpenSSL)
	unread := mk(2, toReviews, "", span.FlagTLS|span.FlagTLSOpenSSL|span.FlagNoRequest)
	d := &demo{inode: map[uint64]string{1: "productpage"}, encrypted: true}
	const point = "productpage>reviews: productpage-proxy s-p"
	if got := d.label(unread); got != ": productpage-proxy s-p" {
		t.Errorf("without the ground truth's hop: label %q, want none for the hop", got)
	}
	a := d.attribute([]span.Span{parsed, unread}, truth)
	d.truthHop = a.hop
	if a.marker[2] != "a" {
		t.Fatalf("the unread span: request %q, want a", a.marker[2])
	}
	for _, c := range []struct {
		s    span.Span
		want string
	}{{unread, point}, {parsed, "productpage>details: productpage-proxy s-p"}} {
		if got := d.label(c.s); got != c.want {
			t.Errorf("span %d: label %q, want %q", c.s.SpanID, got, c.want)
		}
	}
	// The resource comes first: a span whose resource names another hop
	// than its logged request's keeps the resource's (and is judged there).
	wrong := mk(3, toReviews, "/details/0", span.FlagTLS)
	if got := d.label(wrong); got != "productpage>details: productpage-proxy s-p" {
		t.Errorf("a resource of another hop: label %q, want the resource's hop", got)
	}

	tree := expectedTree()
	// in checks the verdict of a trace judged for request marker.
	in := func(name, marker string, spans []traceSpan, found, foreign, misplaced int) {
		t.Helper()
		v := judge(tree, marker, spans)
		if v.found != found || len(v.foreign) != foreign || len(v.misplace) != misplaced {
			t.Errorf("%s: found %d, foreign %q, misplaced %q; want %d, %d, %d", name, v.found, v.foreign, v.misplace, found, foreign, misplaced)
		}
	}
	own := traceSpan{id: "1000", stored: true, label: d.label(unread), marker: a.marker[unread.SpanID]}
	in("alone", "a", []traceSpan{own}, 1, 0, 0)
	// at its point in the whole trace of its request, in place of the
	// span the tree has there
	place := func(parentLabel string) []traceSpan {
		s := wholeTrace("a", 0)
		old, parent := "", ""
		for _, x := range s {
			switch x.label {
			case point:
				old = x.id
			case parentLabel:
				parent = x.id
			}
		}
		for i := range s {
			switch {
			case s[i].id == old:
				s[i].id, s[i].parent, s[i].label = own.id, parent, own.label
			case s[i].parent == old: // the point's children hang under it
				s[i].parent = own.id
			}
		}
		return s
	}
	in("at its point", "a", place(tree[point]), 38, 0, 0)
	in("under the wrong parent", "a", place("productpage>details: productpage c-p"), 38, 0, 1)
	other := append(wholeTrace("b", 100), traceSpan{id: own.id, parent: "101", stored: true, label: own.label, marker: own.marker})
	in("in another request's trace", "b", other, 38, 1, 0)
}
