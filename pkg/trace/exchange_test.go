package trace

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/repeat"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// The false-link cases of reused ids (docs/assembly.md "Reused ids"), on a
// small pod written out span by span. Request r (span ids r*100+k):
//
//	client c-p (1) → [gateway s-p (2) → gateway c-p (3) →] proxy s-p (4) →
//	proxy c-p (5) → app s-p (6) → app c-p (7) → downstream s-p (8)
//
// The proxy (nginx-like, an event loop: its calls carry no context id) and
// the application share the pod's network namespace and talk over loopback;
// the application serves each request on a thread of its own (context id)
// and calls a downstream. The gateway, when there is one, sits in front.
// Ground truth: the span id says which request a span belongs to.

const (
	kClient, kGwIn, kGwOut, kProxyIn, kProxyOut, kAppIn, kAppOut, kDown = 1, 2, 3, 4, 5, 6, 7, 8
	kLegIn, kLegOut                                                     = 9, 10 // an app call through the proxy (nested leg)
)

type reqOpts struct {
	xrid     string        // the id the client sends ("": none; the proxy then makes one)
	trace    span.TraceID  // the traceparent the client sends
	client   uint32        // the client's pid (default 10)
	path     string        // default /front
	gateway  string        // a gateway in front that sets this constant id on its calls
	gwCtx    bool          // the gateway serves each request on a thread of its own
	lostCall bool          // the proxy's call to the application was not captured
	leg      bool          // the application forwards the id, calling out through the proxy
	proxy    bool          // the proxy is marked a proxy (span.FlagProxy)
	noID     bool          // the proxy neither makes nor passes an X-Request-ID
	at       time.Duration // start of the request
}

var (
	podNS, downNS = uint64(4026530001), uint64(4026530002)
	podIP         = netip.MustParseAddr("10.1.0.5")
	downIP        = netip.MustParseAddr("10.1.0.9")
	gwIP          = netip.MustParseAddr("10.1.0.2")
	cliIP         = netip.MustParseAddr("10.1.0.1")
	loop          = netip.MustParseAddr("127.0.0.1")
)

// xreq returns the spans of request r.
func xreq(r int, o reqOpts) []span.Span {
	if o.client == 0 {
		o.client = 10
	}
	if o.path == "" {
		o.path = "/front"
	}
	t := int64(o.at)
	us := func(n int64) int64 { return base + t + n*int64(time.Microsecond) }
	id := func(k int) uint64 { return uint64(r*100 + k) }
	seq := func(k int) uint32 { return uint32(r*100+k) * 7919 }
	mk := func(k int, tap span.TapSide, pid uint32, ns uint64, from, to int64, path string, seqK int, cli, srv netip.Addr, port uint16) span.Span {
		return span.Span{SpanID: id(k), Node: "n1", SignalSource: span.SourceEBPF, TapSide: tap, PID: pid, NetNS: ns,
			StartNs: us(from), EndNs: us(to), L7Protocol: span.L7HTTP1, RequestType: "GET", RequestResource: path,
			ReqTCPSeq: seq(seqK), RespTCPSeq: seq(seqK) + 1, ClientIP: cli, ClientPort: uint16(20000 + r*10 + k),
			ServerIP: srv, ServerPort: port, ResponseCode: 200, Service: map[uint32]string{20: "proxy", 30: "app", 40: "down", 50: "gateway"}[pid]}
	}
	proxyFlags := span.Flags(0)
	if o.proxy {
		proxyFlags = span.FlagProxy
	}
	var out []span.Span
	// The id the proxy receives, passes on and answers with.
	pid := o.xrid
	if o.gateway != "" {
		pid = o.gateway
	}
	rid := pid
	if rid == "" && !o.noID {
		rid = fmt.Sprintf("made-%d", r) // the proxy makes one
	}
	cl := mk(kClient, span.TapClientProcess, o.client, 0, 0, 1000, o.path, kClient, cliIP, podIP, 80)
	cl.XRequestIDReq, cl.XRequestIDResp, cl.TraceID = o.xrid, o.xrid, o.trace
	in := mk(kProxyIn, span.TapServerProcess, 20, podNS, 10, 990, o.path, kClient, cliIP, podIP, 80)
	if o.gateway != "" {
		cl.ServerIP, in.ClientIP = gwIP, gwIP
		cl.XRequestIDResp = o.gateway // the gateway answers with the id it set
		gin := mk(kGwIn, span.TapServerProcess, 50, 0, 5, 995, o.path, kClient, cliIP, gwIP, 80)
		gin.XRequestIDReq, gin.XRequestIDResp, gin.TraceID = o.xrid, o.gateway, o.trace
		gout := mk(kGwOut, span.TapClientProcess, 50, 0, 8, 992, o.path, kGwOut, gwIP, podIP, 80)
		gout.XRequestIDReq, gout.XRequestIDResp, gout.TraceID = o.gateway, o.gateway, o.trace
		if o.gwCtx {
			gin.SyscallTraceIDReq, gin.SyscallTraceIDResp, gout.SyscallTraceIDReq = uint64(5000+r), uint64(5000+r), uint64(5000+r)
		}
		in.ReqTCPSeq, in.RespTCPSeq = gout.ReqTCPSeq, gout.RespTCPSeq
		out = append(out, gin, gout)
	}
	in.XRequestIDReq, in.XRequestIDResp, in.TraceID, in.Flags = pid, rid, o.trace, proxyFlags
	pout := mk(kProxyOut, span.TapClientProcess, 20, podNS, 20, 980, o.path, kProxyOut, loop, loop, 9081)
	pout.XRequestIDReq, pout.TraceID, pout.Flags = rid, o.trace, proxyFlags
	app := mk(kAppIn, span.TapServerProcess, 30, podNS, 30, 970, o.path, kProxyOut, loop, loop, 9081)
	app.XRequestIDReq, app.TraceID = rid, o.trace
	app.SyscallTraceIDReq, app.SyscallTraceIDResp = uint64(9000+r), uint64(9000+r)
	call := mk(kAppOut, span.TapClientProcess, 30, podNS, 100, 500, "/down", kAppOut, podIP, downIP, 80)
	call.SyscallTraceIDReq, call.SyscallTraceIDResp = uint64(9000+r), uint64(9000+r)
	down := mk(kDown, span.TapServerProcess, 40, downNS, 110, 490, "/down", kAppOut, podIP, downIP, 80)
	out = append(out, cl, in)
	if !o.lostCall {
		out = append(out, pout)
	}
	if o.leg {
		// The application forwards the id and calls out through the proxy's
		// outbound listener: the proxy receives the id again, nested in the
		// inbound request.
		call.ServerIP, call.ServerPort, call.ClientIP, call.XRequestIDReq, call.XRequestIDResp = loop, 15001, loop, rid, rid
		leg := mk(kLegIn, span.TapServerProcess, 20, podNS, 105, 495, "/down", kAppOut, loop, loop, 15001)
		leg.XRequestIDReq, leg.XRequestIDResp, leg.Flags = rid, rid, proxyFlags
		legOut := mk(kLegOut, span.TapClientProcess, 20, podNS, 108, 492, "/down", kLegOut, podIP, downIP, 80)
		legOut.XRequestIDReq, legOut.Flags = rid, proxyFlags
		down.ReqTCPSeq, down.RespTCPSeq = legOut.ReqTCPSeq, legOut.RespTCPSeq
		out = append(out, leg, legOut)
	}
	return append(out, app, call, down)
}

// reqs builds requests; o(r) gives request r's options.
func reqs(n int, o func(r int) reqOpts) []span.Span {
	var out []span.Span
	for r := range n {
		out = append(out, xreq(r, o(r))...)
	}
	return out
}

// tree is the expected parent (by part k, 0: root) of each listed part of
// request r.
func tree(r int, parents map[int]int) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for k, p := range parents {
		out[uint64(r*100+k)] = 0
		if p != 0 {
			out[uint64(r*100+k)] = uint64(r*100 + p)
		}
	}
	return out
}

func merge(ts ...map[uint64]uint64) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, t := range ts {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

var (
	// A request's whole tree without a gateway, and with one.
	whole   = map[int]int{kClient: 0, kProxyIn: kClient, kProxyOut: kProxyIn, kAppIn: kProxyOut, kAppOut: kAppIn, kDown: kAppOut}
	wholeGw = map[int]int{kClient: 0, kGwIn: kClient, kGwOut: kGwIn, kProxyIn: kGwOut, kProxyOut: kProxyIn, kAppIn: kProxyOut,
		kAppOut: kAppIn, kDown: kAppOut}
	// What stays together when the proxy's call is linked to nothing: the
	// client's side, and the call's side.
	front = map[int]int{kClient: 0, kProxyIn: kClient}
	back  = map[int]int{kProxyOut: 0, kAppIn: kProxyOut, kAppOut: kAppIn, kDown: kAppOut}
)

type xcase struct {
	name   string
	spans  []span.Span
	cfg    Config
	seeds  []uint64            // every seed must give want
	want   map[uint64]uint64   // span → parent (0: root)
	reason map[uint64]Evidence // evidence of some links
	warn   string              // a warning the trace must carry ("" : none about reuse)
}

func runXCases(t *testing.T, cases []xcase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fill(t, []spangen.Trace{{Spans: c.spans}})
			for _, seed := range c.seeds {
				cfg := c.cfg
				cfg.Now = func() time.Time { return time.Unix(0, base).Add(10 * time.Minute) }
				got, err := Assemble(context.Background(), r, cfg, strconv.FormatUint(seed, 10), 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				checkTree(t, fmt.Sprintf("seed %d", seed), got, c.want, c.reason)
				warned := strings.Join(got.Warnings, "\n")
				if c.warn == "" && strings.Contains(warned, "reused") || !strings.Contains(warned, c.warn) {
					t.Errorf("seed %d: warnings %q, want %q", seed, got.Warnings, c.warn)
				}
			}
		})
	}
}

// checkTree compares a trace with the expected parents, exactly: the same
// spans, each with its parent.
func checkTree(t *testing.T, from string, got *Trace, want map[uint64]uint64, reason map[uint64]Evidence) {
	t.Helper()
	seen := map[uint64]bool{}
	for i := range got.Spans {
		s := &got.Spans[i]
		seen[s.SpanID] = true
		w, ok := want[s.SpanID]
		if !ok {
			t.Errorf("%s: span %d (request %d part %d) in the trace", from, s.SpanID, s.SpanID/100, s.SpanID%100)
			continue
		}
		var p uint64
		if got.Parents[i] >= 0 {
			p = got.Spans[got.Parents[i]].SpanID
		}
		if p != w {
			t.Errorf("%s: span %d: parent %d (%s), want %d", from, s.SpanID, p, got.Evidence[i], w)
		}
		if ev := reason[s.SpanID]; ev != "" && got.Evidence[i] != ev {
			t.Errorf("%s: span %d: evidence %q, want %q", from, s.SpanID, got.Evidence[i], ev)
		}
	}
	var missing []uint64
	for id := range want {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%s: spans %v missing", from, missing)
	}
}

// ids lists the span ids of request r's parts.
func ids(r int, parts map[int]int) []uint64 {
	var out []uint64
	for k := range parts {
		out = append(out, uint64(r*100+k))
	}
	slices.Sort(out)
	return out
}

func TestReusedRequestIDSequential(t *testing.T) {
	seq := func(r int) reqOpts { return reqOpts{xrid: "batch-7", at: time.Duration(r) * 2 * time.Second} }
	var cases []xcase
	for r := range 3 {
		cases = append(cases, xcase{
			name:   fmt.Sprintf("three requests seconds apart with one X-Request-ID: request %d's whole trace from each of its spans", r),
			spans:  reqs(3, seq),
			seeds:  ids(r, whole),
			want:   tree(r, whole),
			reason: map[uint64]Evidence{uint64(r*100 + kProxyOut): EvidenceXRequestID, uint64(r*100 + kAppOut): EvidenceSyscall},
		})
	}
	runXCases(t, append(cases, xcase{
		name:   "the proxy's call lost: the application's request hangs under the proxy's by the id, each in its own trace",
		spans:  reqs(3, func(r int) reqOpts { o := seq(r); o.lostCall = true; return o }),
		seeds:  []uint64{101, 106},
		want:   tree(1, map[int]int{kClient: 0, kProxyIn: kClient, kAppIn: kProxyIn, kAppOut: kAppIn, kDown: kAppOut}),
		reason: map[uint64]Evidence{106: EvidenceXRequestID},
	}, xcase{
		name:  "120 requests 100 ms apart with one id: each its own trace, and the trace says the id is reused",
		spans: reqs(120, func(r int) reqOpts { return reqOpts{xrid: "batch-7", at: time.Duration(r) * 100 * time.Millisecond} }),
		seeds: []uint64{7001, 7006},
		want:  tree(70, whole),
		warn:  `reused X-Request-ID "batch-7": 120 exchanges at proxy (pid 20 on n1) within 1 min (more than 100)`,
	}, xcase{
		name:  "a lower bound: three requests are already reuse",
		spans: reqs(3, seq),
		cfg:   Config{Repeat: repeat.Bound{Exchanges: 2, Window: 10 * time.Second}},
		seeds: []uint64{101},
		want:  tree(1, whole),
		warn:  `reused X-Request-ID "batch-7": 3 exchanges at`,
	}))
}

func TestReusedRequestIDConcurrent(t *testing.T) {
	// Two clients send the same id at once: the proxy holds both requests
	// when it calls the application.
	two := func(o reqOpts) func(r int) reqOpts {
		return func(r int) reqOpts {
			o := o
			o.xrid, o.client, o.at = "batch-7", uint32(10+r), time.Duration(r)*300*time.Microsecond
			return o
		}
	}
	runXCases(t, []xcase{{
		name:  "the proxy's call is linked to neither request: from the client, the client's side",
		spans: reqs(2, two(reqOpts{})),
		seeds: ids(0, front),
		want:  tree(0, front),
	}, {
		name:  "...and from the call, the call's side",
		spans: reqs(2, two(reqOpts{})),
		seeds: ids(0, back),
		want:  tree(0, back),
	}, {
		name:  "...the same for the second request",
		spans: reqs(2, two(reqOpts{})),
		seeds: []uint64{101, 104},
		want:  tree(1, front),
	}, {
		name:  "...from its call",
		spans: reqs(2, two(reqOpts{})),
		seeds: []uint64{105, 108},
		want:  tree(1, back),
	}, {
		name:  "...a proxy (FlagProxy) holding two requests with the same path: neither the id nor containment's forwarding picks one",
		spans: reqs(2, two(reqOpts{proxy: true})),
		seeds: []uint64{5},
		want:  tree(0, back),
	}, {
		name: "a proxy holding two requests with one id and different paths: each call forwards the one with its path",
		spans: reqs(2, func(r int) reqOpts {
			o := two(reqOpts{proxy: true})(r)
			o.path = []string{"/a", "/b"}[r]
			return o
		}),
		seeds:  []uint64{1, 5, 8},
		want:   tree(0, whole),
		reason: map[uint64]Evidence{5: EvidenceXRequestID},
	}, {
		name:  "the proxy's call lost: the application's request is not hung under either",
		spans: reqs(2, two(reqOpts{lostCall: true})),
		seeds: []uint64{6},
		want:  map[uint64]uint64{6: 0, 7: 6, 8: 7},
	}, {
		name: "one request's inbound message ended before the other's call began: the call is the other's alone",
		spans: reqs(2, func(r int) reqOpts {
			return reqOpts{xrid: "batch-7", client: uint32(10 + r), at: time.Duration(r) * 985 * time.Microsecond}
		}),
		seeds: []uint64{101},
		want:  tree(1, whole),
	}})
}

func TestApplicationForwardingTheID(t *testing.T) {
	// An application that forwards the id calls out through the proxy of
	// its pod: the proxy receives the id again, nested in the request
	// (as in the demo's keepalive variant). One request: whole.
	legTree := map[int]int{kClient: 0, kProxyIn: kClient, kProxyOut: kProxyIn, kAppIn: kProxyOut, kAppOut: kAppIn,
		kLegIn: kAppOut, kLegOut: kLegIn, kDown: kLegOut}
	runXCases(t, []xcase{{
		name:   "a proxy (FlagProxy): each of its calls forwards the one inbound message with its path",
		spans:  xreq(0, reqOpts{leg: true, proxy: true}),
		seeds:  ids(0, legTree),
		want:   tree(0, legTree),
		reason: map[uint64]Evidence{kProxyOut: EvidenceXRequestID, kLegOut: EvidenceXRequestID},
	}, {
		name:  "a process not known as a proxy: two of its inbound messages carry the id, its calls are linked to neither",
		spans: xreq(0, reqOpts{leg: true}),
		seeds: []uint64{kClient},
		want:  tree(0, front),
	}})
}

func TestConstantIDFromGateway(t *testing.T) {
	// A gateway sets one constant X-Request-ID on every request it passes
	// on (and answers with it); the pod's proxy passes it on.
	gw := func(r int, gap time.Duration, ctx bool) reqOpts {
		return reqOpts{gateway: "gw-constant", gwCtx: ctx, client: uint32(10 + r), at: time.Duration(r) * gap}
	}
	runXCases(t, []xcase{{
		name:   "sequential: whole separate traces, the gateway's call under its request by the id",
		spans:  reqs(3, func(r int) reqOpts { return gw(r, time.Second, false) }),
		seeds:  ids(1, wholeGw),
		want:   tree(1, wholeGw),
		reason: map[uint64]Evidence{103: EvidenceXRequestID, 105: EvidenceXRequestID},
	}, {
		name:  "concurrent, an event-loop gateway: the id identifies no exchange at the gateway or the proxy, no call is linked",
		spans: reqs(2, func(r int) reqOpts { return gw(r, 300*time.Microsecond, false) }),
		seeds: []uint64{1},
		want:  map[uint64]uint64{1: 0, 2: 1},
	}, {
		name:  "...from the gateway's call",
		spans: reqs(2, func(r int) reqOpts { return gw(r, 300*time.Microsecond, false) }),
		seeds: []uint64{3},
		want:  map[uint64]uint64{3: 0, 4: 3},
	}, {
		// The x-request-id conflict rule cannot tell the requests apart
		// (the ids are equal); the gateway's thread context can.
		name:   "concurrent, a thread-per-request gateway: its call under its own request by the thread's context",
		spans:  reqs(2, func(r int) reqOpts { return gw(r, 300*time.Microsecond, true) }),
		seeds:  []uint64{101, 104},
		want:   map[uint64]uint64{101: 0, 102: 101, 103: 102, 104: 103},
		reason: map[uint64]Evidence{103: EvidenceSyscall},
	}})
}

func TestReusedTraceparent(t *testing.T) {
	tid, _ := span.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	seq := func(r int) reqOpts { return reqOpts{trace: tid, noID: true, at: time.Duration(r) * 2 * time.Second} }
	// Under OpenTelemetry's rules, requests that share a trace id are one
	// trace: each request keeps its own tree, and the proxy's call hangs
	// under its inbound message by the trace id.
	three := merge(tree(0, whole), tree(1, whole), tree(2, whole))
	runXCases(t, []xcase{{
		name:   "three requests seconds apart with one traceparent: one trace of three trees",
		spans:  reqs(3, seq),
		seeds:  []uint64{1, 105, 208},
		want:   three,
		reason: map[uint64]Evidence{105: EvidenceTraceID},
	}, {
		name: "two concurrent requests with one traceparent: one trace, the proxy's calls under neither request",
		spans: reqs(2, func(r int) reqOpts {
			return reqOpts{trace: tid, noID: true, client: uint32(10 + r), at: time.Duration(r) * 300 * time.Microsecond}
		}),
		seeds: []uint64{1, 108},
		want:  merge(tree(0, front), tree(0, back), tree(1, front), tree(1, back)),
	}, {
		name:   "over the bound: the trace id joins nothing, the trace holds one request and says why",
		spans:  reqs(3, seq),
		cfg:    Config{Repeat: repeat.Bound{Exchanges: 2, Window: 10 * time.Second}},
		seeds:  []uint64{101, 108},
		want:   tree(1, whole),
		reason: map[uint64]Evidence{105: EvidenceTraceID},
		warn:   "reused trace id 4bf92f3577b34da6a3ce929d0e0e4736: 3 exchanges at",
	}, {
		name: "hundreds of unrelated requests with one traceparent: not one giant tree",
		spans: reqs(150, func(r int) reqOpts {
			return reqOpts{trace: tid, noID: true, at: time.Duration(r) * 100 * time.Millisecond}
		}),
		seeds: []uint64{9001, 9008},
		want:  tree(90, whole),
		warn:  "reused trace id 4bf92f3577b34da6a3ce929d0e0e4736: 150 exchanges at proxy (pid 20 on n1) within 1 min (more than 100); it joins no spans into one trace",
	}})
	// The reused trace id is not the trace's id: it would open all of them.
	r := fill(t, []spangen.Trace{{Spans: reqs(3, seq)}})
	got, err := Assemble(context.Background(), r, Config{Repeat: repeat.Bound{Exchanges: 2}, Now: func() time.Time { return time.Unix(0, base).Add(time.Hour) }}, "101", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == tid.String() || got.ID != DerivedID(101) {
		t.Errorf("trace id %s, want the derived id of the root %s", got.ID, DerivedID(101))
	}
	got, err = Assemble(context.Background(), r, Config{Now: func() time.Time { return time.Unix(0, base).Add(time.Hour) }}, "101", 0, 0)
	if err != nil || got.ID != tid.String() {
		t.Errorf("within the bound: trace id %v %v, want %s", got.ID, err, tid)
	}
	// Asked for by the reused id itself: what was asked for, every span
	// carrying it, as the three requests' separate trees, with the notice.
	got, err = Assemble(context.Background(), r, Config{Repeat: repeat.Bound{Exchanges: 2}, Now: func() time.Time { return time.Unix(0, base).Add(time.Hour) }}, tid.String(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, "by trace id", got, three, nil)
	if len(got.Warnings) != 1 || !strings.HasPrefix(got.Warnings[0], "reused trace id "+tid.String()) {
		t.Errorf("by trace id: warnings %q", got.Warnings)
	}
}

// Bookinfo with a client that sends one X-Request-ID on every request (the
// sidecars pass it on as far as productpage): sequential requests give each
// its whole 38-span tree, from every span; concurrent ones give no foreign
// span and no wrong parent.
func TestBookinfoReusedRequestID(t *testing.T) {
	gen := spangen.New(spangen.Config{Seed: 11, Start: t0, Interval: 1500 * time.Millisecond, ClientXRID: "batch-7"})
	seq := gen.Next(4)
	r := fill(t, seq)
	for _, tr := range seq {
		for _, seed := range tr.Spans {
			got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(seed.SpanID), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if found, correct := check(t, got, tr, true); found != 38 || correct != 38 || len(got.Spans) != 38 {
				t.Fatalf("trace %d from %d: %d spans, %d its own, %d with the right parent", tr.Index, seed.SpanID, len(got.Spans), found, correct)
			}
		}
	}

	conc := spangen.New(spangen.Config{Seed: 12, Start: t0, Interval: time.Millisecond, ClientXRID: "batch-7"}).Next(20)
	r = fill(t, conc)
	var found, total int
	for _, tr := range conc {
		want := map[uint64]uint64{}
		for i, s := range tr.Spans {
			if p := tr.Parents[i]; p >= 0 {
				want[s.SpanID] = tr.Spans[p].SpanID
			}
		}
		for _, seed := range []uint64{tr.Spans[0].SpanID, tr.Spans[len(tr.Spans)-1].SpanID} {
			got, err := Assemble(context.Background(), r, Config{}, fmt.Sprint(seed), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := check(t, got, tr, false)
			if f != len(got.Spans) {
				t.Errorf("trace %d from %d: %d spans, %d of them its own", tr.Index, seed, len(got.Spans), f)
			}
			for i, s := range got.Spans {
				if p := got.Parents[i]; p >= 0 && want[s.SpanID] != got.Spans[p].SpanID {
					t.Errorf("trace %d from %d: span %d under %d, want %d", tr.Index, seed, s.SpanID, got.Spans[p].SpanID, want[s.SpanID])
				}
			}
			found, total = found+f, total+len(tr.Spans)
		}
	}
	t.Logf("20 overlapping requests with one X-Request-ID: completeness %d/%d", found, total)
}

// A key is repeated exactly when more exchanges than the bound carry it at
// one point within the window: n carriers at one server process, 1 s apart,
// against bounds around n (repeated skips counting when the carriers are no
// more than the bound; this holds it to the count at the boundary), and
// the same carriers spread over two processes.
func TestRepeatedBoundary(t *testing.T) {
	tid, _ := span.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	k := span.Key{Kind: span.KeyTraceID, T: tid}
	carriers := func(n int, pids ...uint32) []*span.Span {
		var out []*span.Span
		for i := range n {
			out = append(out, &span.Span{SpanID: uint64(i + 1), TraceID: tid, SignalSource: span.SourceEBPF,
				TapSide: span.TapServerProcess, Node: "n1", PID: pids[i%len(pids)], StartNs: base + int64(i)*int64(time.Second)})
		}
		return out
	}
	for _, c := range []struct {
		n, bound int
		pids     []uint32
		want     int // the exchanges reported; 0: not repeated
	}{
		{3, 2, []uint32{20}, 3},
		{3, 3, []uint32{20}, 0},
		{4, 3, []uint32{20}, 4},
		{4, 4, []uint32{20}, 0},
		{4, 3, []uint32{20, 21}, 0}, // two exchanges at each process
		{6, 2, []uint32{20, 21}, 3},
	} {
		var sc Scratch
		sc.reset(&Config{Repeat: repeat.Bound{Exchanges: c.bound, Window: time.Minute}})
		sc.keys.add(carriers(c.n, c.pids...))
		for range 2 { // the second time from the memo
			r := sc.keys.repeated(k)
			switch {
			case c.want == 0 && r != nil:
				t.Errorf("%d carriers at %v, bound %d: repeated %+v, want not", c.n, c.pids, c.bound, *r)
			case c.want != 0 && (r == nil || r.Exchanges != c.want || r.Point.PID != c.pids[0]):
				t.Errorf("%d carriers at %v, bound %d: %+v, want %d exchanges at pid %d", c.n, c.pids, c.bound, r, c.want, c.pids[0])
			}
		}
	}
}
