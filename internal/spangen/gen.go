package spangen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Config tunes the generator. The zero value generates non-overlapping,
// error-free traces starting at 2026-01-01T00:00:00Z.
type Config struct {
	Seed      uint64
	Start     time.Time     // start of the first trace (zero: 2026-01-01 UTC)
	Interval  time.Duration // between trace starts (default 100 ms); a trace lasts ~6-12 ms, so a smaller interval overlaps traces
	Namespace string        // Kubernetes-style namespace of the pods (default "bookinfo")

	// NodeSkew shifts every timestamp a node records (clock skew).
	NodeSkew map[string]time.Duration

	// DropRate is the probability that a packet span is lost (dropped packets).
	DropRate float64
	// DropPoints are observation-point labels (see Points) dropped from every trace.
	DropPoints []string
	// ErrorRate is the probability that ratings answers 503.
	ErrorRate float64
	// TimeoutRate is the probability that ratings never answers: its sidecar
	// gives up after ProxyTimeout and answers 504.
	TimeoutRate  float64
	ProxyTimeout time.Duration // default 1 s

	// ClientXRID, if set, is the X-Request-ID the client sends on every
	// request (a batch job's fixed correlation id); the sidecars pass it on
	// instead of making one, as Envoy does, up to the application.
	ClientXRID string
}

// Trace is one generated request with its ground truth.
type Trace struct {
	Index   int         // sequence number of the request, from 0
	Spans   []span.Span // in creation order (causal order)
	Labels  []string    // observation-point label of each span (see Points)
	Parents []int       // index in Spans of each span's expected parent, -1 for the root
}

// Generator produces Bookinfo traces. It is not safe for concurrent use.
type Generator struct {
	cfg     Config
	rnd     *rand.Rand
	pods    map[string]*Pod
	ids     map[string]*span.IDGenerator
	n       int // traces generated so far
	nextTID uint32
	sysSeed uint64 // per-CPU syscall-trace-id counter base

	// Syscall-trace-id replay state, carried across Next calls.
	ctx      causalState
	poolNext map[string]int

	drop map[string]bool

	// Memory carried from one Next to the next: the message events (the
	// same slice, emptied) and the spans per trace of the last call (to
	// size one slice for a call's spans). Neither changes what is
	// generated; they keep the generator's garbage, which set off garbage
	// collections a bench charged to the code it measures, small.
	events   []msgEvent
	perTrace int
}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "bookinfo"
	}
	if cfg.ProxyTimeout <= 0 {
		cfg.ProxyTimeout = time.Second
	}
	g := &Generator{
		cfg:      cfg,
		rnd:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		pods:     newPods(),
		ids:      map[string]*span.IDGenerator{},
		nextTID:  30000,
		sysSeed:  uint64(cfg.Start.UnixNano()) & (1<<56 - 1),
		ctx:      newCausalState(),
		poolNext: map[string]int{},
		drop:     map[string]bool{},
	}
	for _, n := range Nodes() {
		g.ids[n.Name] = span.NewIDGenerator(n.Name, cfg.Start)
	}
	for _, p := range cfg.DropPoints {
		g.drop[p] = true
	}
	return g
}

// Pods returns the pods of the topology by service name.
func (g *Generator) Pods() map[string]*Pod { return g.pods }

// Next generates the next n traces. Traces generated in one call share
// threads and proxies in time order (their syscall trace ids interleave as on
// a real machine); consecutive calls continue where the last one ended.
func (g *Generator) Next(n int) []Trace {
	b := &batch{g: g, events: g.events[:0]}
	traces := make([]Trace, n)
	// The call's spans, labels and parents in one slice each, trace after
	// trace; a trace that outgrows what is left gets slices of its own.
	room := n*g.perTrace + n*g.perTrace/8
	spans, labels, parents := make([]span.Span, 0, room), make([]string, 0, room), make([]int, 0, room)
	total := 0
	for i := range traces {
		idx := g.n
		g.n++
		start := g.cfg.Start.UnixNano() + int64(idx)*int64(g.cfg.Interval)
		t := &traces[i]
		t.Spans, t.Labels, t.Parents = spans[len(spans):], labels[len(labels):], parents[len(parents):]
		b.trace = t
		t.Index = idx
		b.traceNo = i
		b.request(start)
		k := len(t.Spans)
		total += k
		t.Spans, t.Labels, t.Parents = t.Spans[:k:k], t.Labels[:k:k], t.Parents[:k:k]
		if len(spans)+k <= cap(spans) && (k == 0 || &t.Spans[0] == &spans[len(spans) : len(spans)+1][0]) {
			spans, labels, parents = spans[:len(spans)+k], labels[:len(labels)+k], parents[:len(parents)+k]
		} else {
			spans, labels, parents = spans[:len(spans):len(spans)], labels[:len(labels):len(labels)], parents[:len(parents):len(parents)]
		}
	}
	g.perTrace = max(g.perTrace, (total+n-1)/max(n, 1))
	b.replaySyscallIDs(traces)
	g.events = b.events
	for i := range traces {
		g.finish(&traces[i])
	}
	return traces
}

// finish applies clock skew and drops, remapping expected parents to the
// nearest kept ancestor.
func (g *Generator) finish(t *Trace) {
	for i := range t.Spans {
		if sk := g.cfg.NodeSkew[t.Spans[i].Node]; sk != 0 {
			t.Spans[i].StartNs += int64(sk)
			t.Spans[i].EndNs += int64(sk)
		}
	}
	keep := make([]bool, len(t.Spans))
	any := false
	for i := range t.Spans {
		keep[i] = !g.drop[t.Labels[i]]
		if keep[i] && g.cfg.DropRate > 0 && t.Spans[i].SignalSource == span.SourcePacket && g.rnd.Float64() < g.cfg.DropRate {
			keep[i] = false
		}
		any = any || !keep[i]
	}
	if !any {
		return
	}
	newIdx := make([]int, len(t.Spans))
	out := Trace{Index: t.Index}
	for i := range t.Spans {
		newIdx[i] = -1
		if !keep[i] {
			continue
		}
		p := t.Parents[i]
		for p >= 0 && !keep[p] {
			p = t.Parents[p]
		}
		if p >= 0 {
			p = newIdx[p]
		}
		newIdx[i] = len(out.Spans)
		out.Spans = append(out.Spans, t.Spans[i])
		out.Labels = append(out.Labels, t.Labels[i])
		out.Parents = append(out.Parents, p)
	}
	*t = out
}

// msgEvent is one message on one thread, replayed to assign syscall trace ids.
type msgEvent struct {
	thread uint64 // pid<<32 | tid
	t      int64
	egress bool
	sock   uint64
	server bool // sock is the accepted (server) side
	trace  int
	span   int
	resp   bool // the response-side field of the span
}

type batch struct {
	g       *Generator
	trace   *Trace
	traceNo int
	events  []msgEvent
}

// Latencies of the model, in nanoseconds.
const (
	loLat     = 25_000 // loopback one way
	proxyWork = 180_000
	vethLat   = 8_000
	nodeLat   = 6_000
	wireLat   = 45_000
	writeDur  = 5_000
)

// request models one curl run against the loadgen sidecar.
func (b *batch) request(t0 int64) {
	g := b.g
	curlPID := 40000 + uint32(b.trace.Index%20000)
	caller := caller{pod: g.pods["loadgen"], pid: curlPID, tid: curlPID, comm: "curl", proc: "curl",
		cmdline: "curl -s -H Host:productpage http://127.0.0.1:15001/productpage", parent: -1}
	path := fmt.Sprintf("/productpage?u=%s", [...]string{"normal", "test"}[b.trace.Index%2])
	b.call(caller, g.pods["productpage"], path, t0)
}

type caller struct {
	pod      *Pod
	pid, tid uint32
	comm     string
	proc     string
	cmdline  string
	parent   int // span index of the caller's s-p (-1: none)
}

type result struct {
	end       int64 // caller app finished reading the response
	code      int32
	responded bool
}

// handler runs callee's application logic from the time its s-p span starts
// (the request has been read) and returns when it writes the response.
func (b *batch) handle(callee *Pod, tid uint32, sp int, t int64) (tResp int64, code int32, respond bool) {
	g := b.g
	me := caller{pod: callee, pid: callee.AppPID, tid: tid, comm: comm(callee, tid), proc: callee.ProcessName,
		cmdline: callee.Cmdline, parent: sp}
	id := g.rnd.IntN(10)
	switch callee.App {
	case "productpage":
		t += 900_000 + g.rnd.Int64N(400_000)
		r := b.call(me, g.pods["details"], fmt.Sprintf("/details/%d", id), t)
		t = r.end + 300_000 + g.rnd.Int64N(200_000)
		r = b.call(me, g.pods["reviews"], fmt.Sprintf("/reviews/%d", id), t)
		t = r.end + 1_500_000 + g.rnd.Int64N(500_000)
		return t, 200, true
	case "reviews":
		t += 600_000 + g.rnd.Int64N(300_000)
		r := b.call(me, g.pods["ratings"], fmt.Sprintf("/ratings/%d", id), t)
		t = r.end + 400_000 + g.rnd.Int64N(200_000)
		return t, 200, true
	case "ratings":
		t += 250_000 + g.rnd.Int64N(150_000)
		u := g.rnd.Float64()
		switch {
		case u < g.cfg.TimeoutRate:
			return t, 0, false
		case u < g.cfg.TimeoutRate+g.cfg.ErrorRate:
			return t, 503, true
		}
		return t, 200, true
	default: // details
		t += 700_000 + g.rnd.Int64N(300_000)
		return t, 200, true
	}
}

var respBytes = map[string]int64{"productpage": 5183, "details": 178, "reviews": 358, "ratings": 48}

// call models: caller app → caller's sidecar (outbound) → callee's sidecar
// (inbound) → callee app, and the way back. t0 is the caller's first write.
func (b *batch) call(c caller, callee *Pod, path string, t0 int64) result {
	g := b.g
	cp := c.pod
	hop := cp.App + ">" + callee.App + ": "
	ns := g.cfg.Namespace
	host := callee.App
	endpoint := endpointOf(path)
	reqBytes := int64(180 + len(path) + g.rnd.IntN(40))
	rid := newRequestID(g.rnd)
	clientRID := "" // the id the caller sends
	if c.parent < 0 && g.cfg.ClientXRID != "" {
		rid, clientRID = g.cfg.ClientXRID, g.cfg.ClientXRID
	}

	// Connections: app→own proxy (loopback), proxy→proxy (pod network), proxy→app (loopback).
	conn1 := b.conn(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), OutboundPort)
	conn2 := b.conn(cp.IP, callee.IP, InboundPort)
	conn3 := b.conn(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), AppPort)

	// Forward path.
	a := t0 + loLat     // caller proxy read the request
	bb := a + proxyWork // caller proxy writes upstream
	pc := bb + vethLat  // packet at caller vNIC
	cross := cp.Node != callee.Node
	pcnd, psnd, ps := int64(0), int64(0), pc+2*vethLat
	if cross {
		pcnd = pc + nodeLat
		psnd = pcnd + wireLat
		ps = psnd + nodeLat
	}
	d := ps + vethLat  // callee proxy read
	e := d + proxyWork // callee proxy writes to app
	f := e + loLat     // callee app read
	calleeTID := b.thread(callee)
	proc := func(pod *Pod, pid, tid uint32, comm, name, cmd string) span.Span {
		return span.Span{SignalSource: span.SourceEBPF, Node: pod.Node, NetNS: pod.NetNS, PID: pid,
			ReqTID: tid, RespTID: tid, Comm: comm, ProcessName: name, Cmdline: cmd,
			ContainerID: pod.ContainerID, Pod: pod.Name, Namespace: ns, Service: pod.App}
	}
	// Spans are appended in causal order; indices fixed now, times filled later.
	i1 := b.add(hop+c.pod.App+" c-p", c.parent, proc(cp, c.pid, c.tid, c.comm, c.proc, c.cmdline), span.TapClientProcess, conn1)
	i2 := b.add(hop+cp.App+"-proxy s-p", i1, proc(cp, cp.ProxyPID, cp.ProxyPID, "nginx", "nginx", "nginx: worker process"), span.TapServerProcess, conn1)
	i3 := b.add(hop+cp.App+"-proxy c-p", i2, proc(cp, cp.ProxyPID, cp.ProxyPID, "nginx", "nginx", "nginx: worker process"), span.TapClientProcess, conn2)
	pkt := func(node, nic string, tap span.TapSide, tunnel bool) span.Span {
		s := span.Span{SignalSource: span.SourcePacket, Node: node, CaptureNIC: nic, NetNS: nodes[node].NetNS, TapSide: tap}
		if tunnel {
			s.TunnelType = span.TunnelVXLAN
			s.TunnelOuterSrc = nodes[cp.Node].Underlay
			s.TunnelOuterDst = nodes[callee.Node].Underlay
		}
		return s
	}
	ic := b.add(hop+cp.App+"-vnic c", i3, pkt(cp.Node, cp.VNIC, span.TapClientNIC, false), span.TapClientNIC, conn2)
	last := ic
	icnd, isnd := -1, -1
	if cross {
		icnd = b.add(hop+nodes[cp.Node].Name+"-nic c-nd", ic, pkt(cp.Node, nodes[cp.Node].NIC, span.TapClientNode, true), span.TapClientNode, conn2)
		isnd = b.add(hop+nodes[callee.Node].Name+"-nic s-nd", icnd, pkt(callee.Node, nodes[callee.Node].NIC, span.TapServerNode, true), span.TapServerNode, conn2)
		last = isnd
	}
	is := b.add(hop+callee.App+"-vnic s", last, pkt(callee.Node, callee.VNIC, span.TapServerNIC, false), span.TapServerNIC, conn2)
	i4 := b.add(hop+callee.App+"-proxy s-p", is, proc(callee, callee.ProxyPID, callee.ProxyPID, "nginx", "nginx", "nginx: worker process"), span.TapServerProcess, conn2)
	i5 := b.add(hop+callee.App+"-proxy c-p", i4, proc(callee, callee.ProxyPID, callee.ProxyPID, "nginx", "nginx", "nginx: worker process"), span.TapClientProcess, conn3)
	i6 := b.add(hop+callee.App+" s-p", i5, proc(callee, callee.AppPID, calleeTID, comm(callee, calleeTID), callee.ProcessName, callee.Cmdline), span.TapServerProcess, conn3)

	gResp, code, responded := b.handle(callee, calleeTID, i6, f)

	// Return path.
	var h, i int64
	proxyCode := code
	if responded {
		h = gResp + loLat // callee proxy read the response
		i = h + proxyWork // callee proxy writes downstream
	} else {
		h = e + int64(g.cfg.ProxyTimeout) // callee proxy gives up
		i = h + 50_000
		proxyCode = 504
	}
	rs := i + vethLat // response packet at callee vNIC
	rsnd, rcnd, rc := int64(0), int64(0), rs+2*vethLat
	if cross {
		rsnd = rs + nodeLat
		rcnd = rsnd + wireLat
		rc = rcnd + nodeLat
	}
	j := rc + vethLat // caller proxy read the response
	k := j + proxyWork
	l := k + loLat // caller app read the response

	respSize := respBytes[callee.App] + 160 + int64(len(rid))
	if !responded || proxyCode != 200 {
		respSize = 150
	}
	s := b.trace.Spans
	set := func(idx int, start, end int64, reqX, respX string, code int32, respSz int64) {
		sp := &s[idx]
		sp.StartNs, sp.EndNs = start, end
		sp.L4, sp.L7Protocol, sp.L7Version = span.L4TCP, span.L7HTTP1, "1.1"
		sp.RequestType, sp.RequestDomain, sp.RequestResource, sp.Endpoint = "GET", host, path, endpoint
		sp.XRequestIDReq, sp.XRequestIDResp = reqX, respX
		sp.RequestBytes = reqBytes
		if code != 0 {
			sp.ResponseCode = code
			sp.ResponseStatus = statusOf(code)
			sp.ResponseBytes = respSz
		} else {
			sp.ResponseStatus = span.StatusTimeout
			sp.RespTCPSeq = 0
			sp.RespTID = 0
		}
	}
	// Sidecars: the caller's makes rid (or passes on the client's fixed
	// id, ClientXRID); the callee's takes rid. Both add rid to the response
	// they send downstream.
	set(i1, t0, l, clientRID, rid, proxyCode, respSize)
	set(i2, a, k+writeDur, clientRID, rid, proxyCode, respSize)
	set(i3, bb, j, rid, rid, proxyCode, respSize)
	set(ic, pc, rc, rid, rid, proxyCode, respSize)
	if cross {
		set(icnd, pcnd, rcnd, rid, rid, proxyCode, respSize)
		set(isnd, psnd, rsnd, rid, rid, proxyCode, respSize)
	}
	set(is, ps, rs, rid, rid, proxyCode, respSize)
	set(i4, d, i+writeDur, rid, rid, proxyCode, respSize)
	if responded {
		set(i5, e, h, rid, "", code, respSize-int64(len(rid))-16)
		set(i6, f, gResp+writeDur, rid, "", code, respSize-int64(len(rid))-16)
	} else {
		set(i5, e, h, rid, "", 0, 0)
		set(i6, f, f+int64(g.cfg.ProxyTimeout), rid, "", 0, 0)
	}

	// Syscall messages: (span, side, thread, time, direction, socket).
	thr := func(pid, tid uint32) uint64 { return uint64(pid)<<32 | uint64(tid) }
	cproxy := thr(cp.ProxyPID, cp.ProxyPID)
	sproxy := thr(callee.ProxyPID, callee.ProxyPID)
	b.msg(thr(c.pid, c.tid), t0, true, conn1.cliSock, false, i1, false)
	b.msg(thr(c.pid, c.tid), l, false, conn1.cliSock, false, i1, true)
	b.msg(cproxy, a, false, conn1.srvSock, true, i2, false)
	b.msg(cproxy, k, true, conn1.srvSock, true, i2, true)
	b.msg(cproxy, bb, true, conn2.cliSock, false, i3, false)
	b.msg(cproxy, j, false, conn2.cliSock, false, i3, true)
	b.msg(sproxy, d, false, conn2.srvSock, true, i4, false)
	b.msg(sproxy, i, true, conn2.srvSock, true, i4, true)
	b.msg(sproxy, e, true, conn3.cliSock, false, i5, false)
	if responded {
		b.msg(sproxy, h, false, conn3.cliSock, false, i5, true)
		b.msg(thr(callee.AppPID, calleeTID), gResp, true, conn3.srvSock, true, i6, true)
	}
	b.msg(thr(callee.AppPID, calleeTID), f, false, conn3.srvSock, true, i6, false)
	return result{end: l, code: proxyCode, responded: true}
}

func comm(p *Pod, tid uint32) string {
	if p.App == "reviews" {
		return fmt.Sprintf("pool-1-thread-%d", tid%8+1)
	}
	return p.ProcessName
}

type conn struct {
	cli, srv         netip.Addr
	cliPort, srvPort uint16
	reqSeq, respSeq  uint32
	cliSock, srvSock uint64
}

func (b *batch) conn(cli, srv netip.Addr, port uint16) conn {
	r := b.g.rnd
	return conn{cli: cli, srv: srv, cliPort: uint16(32768 + r.IntN(28000)), srvPort: port,
		reqSeq: r.Uint32() | 1, respSeq: r.Uint32() | 1, cliSock: r.Uint64(), srvSock: r.Uint64()}
}

func (b *batch) add(label string, parent int, s span.Span, tap span.TapSide, c conn) int {
	s.SpanID = b.g.ids[s.Node].Next()
	s.TapSide = tap
	s.IPVersion = 4
	s.ClientIP, s.ClientPort, s.ServerIP, s.ServerPort = c.cli, c.cliPort, c.srv, c.srvPort
	s.ReqTCPSeq, s.RespTCPSeq = c.reqSeq, c.respSeq
	t := b.trace
	t.Spans = append(t.Spans, s)
	t.Labels = append(t.Labels, label)
	t.Parents = append(t.Parents, parent)
	return len(t.Spans) - 1
}

func (b *batch) msg(thread uint64, t int64, egress bool, sock uint64, server bool, spanIdx int, resp bool) {
	b.events = append(b.events, msgEvent{thread: thread, t: t, egress: egress, sock: sock, server: server, trace: b.traceNo, span: spanIdx, resp: resp})
}

// thread picks the thread that serves a request in pod p.
func (b *batch) thread(p *Pod) uint32 {
	g := b.g
	switch {
	case p.eventLoop:
		return p.AppPID
	case p.pool > 0:
		n := g.poolNext[p.App]
		g.poolNext[p.App] = (n + 1) % p.pool
		return p.AppPID + 1 + uint32(n)
	}
	g.nextTID++
	if g.nextTID > 4_000_000 {
		g.nextTID = 30000
	}
	return g.nextTID
}

// replaySyscallIDs applies the collector's request-context rule
// (bpf/socket/causality.h) to every message in time order.
func (b *batch) replaySyscallIDs(traces []Trace) {
	g := b.g
	ev := b.events
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].t < ev[j].t })
	for _, e := range ev {
		id := g.ctx.message(e.thread, e.sock, e.server, e.egress, func() uint64 {
			g.sysSeed++
			return uint64(g.rnd.IntN(2))<<56 | g.sysSeed&(1<<56-1)
		})
		s := &traces[e.trace].Spans[e.span]
		if e.resp {
			s.SyscallTraceIDResp = id
		} else {
			s.SyscallTraceIDReq = id
		}
	}
	// Sockets are not reused across requests: they close.
	g.ctx.closeAll()
}

func statusOf(code int32) span.ResponseStatus {
	switch {
	case code >= 500:
		return span.StatusServerError
	case code >= 400:
		return span.StatusClientError
	case code > 0:
		return span.StatusOK
	}
	return span.StatusTimeout
}

// endpointOf normalises a path: the query is cut and numeric segments become
// "{id}".
func endpointOf(path string) string {
	out := make([]byte, 0, len(path))
	seg := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' || path[i] == '?' {
			s := path[seg:i]
			if isNumber(s) {
				out = append(out, "{id}"...)
			} else {
				out = append(out, s...)
			}
			if i == len(path) || path[i] == '?' {
				break
			}
			out = append(out, '/')
			seg = i + 1
		}
	}
	return string(out)
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// newRequestID returns an nginx-style $request_id: 32 hex digits.
func newRequestID(r *rand.Rand) string {
	const hexdig = "0123456789abcdef"
	var b [32]byte
	x, y := r.Uint64(), r.Uint64()
	for i := 0; i < 16; i++ {
		b[i] = hexdig[x>>(60-4*i)&0xf]
		b[16+i] = hexdig[y>>(60-4*i)&0xf]
	}
	return string(b[:])
}
