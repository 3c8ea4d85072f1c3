package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

type kv struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func jsonKV(pairs []kv) json.RawMessage {
	if pairs == nil {
		pairs = []kv{}
	}
	b, _ := json.Marshal(pairs)
	return b
}

// ServiceName is the name a span shows: its service (a sidecar proxy's is
// "<workload> (proxy)", so that a workload and its proxy are two services),
// else its process, else where a packet capture saw it.
func ServiceName(s *span.Span) string {
	switch {
	case s.Service != "" && s.Flags.Has(span.FlagProxy):
		return s.Service + " (proxy)"
	case s.Service != "":
		return s.Service
	case s.ProcessName != "":
		return s.ProcessName
	case s.CaptureNIC != "":
		return s.CaptureNIC + "@" + s.Node
	}
	return s.Node
}

// OperationName is "METHOD resource" (or the endpoint) of a span.
func OperationName(s *span.Span) string {
	res := s.Endpoint
	if res == "" {
		res = s.RequestResource
	}
	switch {
	case s.RequestType != "" && res != "":
		return s.RequestType + " " + res
	case res != "":
		return res
	case s.RequestType != "":
		return s.RequestType
	}
	return s.L7Protocol.String()
}

func addrPort(a interface{ String() string }, p uint16) string {
	return a.String() + ":" + strconv.Itoa(int(p))
}

func spanTags(s *span.Span) []kv {
	t := []kv{
		{"tap_side", s.TapSide.String()},
		{"signal_source", s.SignalSource.String()},
		{"node", s.Node},
		{"client", addrPort(s.ClientIP, s.ClientPort)},
		{"server", addrPort(s.ServerIP, s.ServerPort)},
		{"l4", s.L4.String()},
		{"l7_protocol", s.L7Protocol.String()},
		{"response_status", s.ResponseStatus.String()},
		{"req_tcp_seq", s.ReqTCPSeq},
		{"resp_tcp_seq", s.RespTCPSeq},
		{"span_id", strconv.FormatUint(s.SpanID, 10)},
	}
	add := func(k string, v any, ok bool) {
		if ok {
			t = append(t, kv{k, v})
		}
	}
	add("capture_nic", s.CaptureNIC, s.CaptureNIC != "")
	add("pid", s.PID, s.PID != 0)
	add("req_tid", s.ReqTID, s.ReqTID != 0)
	add("resp_tid", s.RespTID, s.RespTID != 0)
	add("process_name", s.ProcessName, s.ProcessName != "")
	add("request_type", s.RequestType, s.RequestType != "")
	add("request_domain", s.RequestDomain, s.RequestDomain != "")
	add("request_resource", s.RequestResource, s.RequestResource != "")
	add("endpoint", s.Endpoint, s.Endpoint != "")
	add("response_code", s.ResponseCode, s.ResponseCode != 0)
	add("response_exception", s.ResponseException, s.ResponseException != "")
	add("syscall_trace_id_req", strconv.FormatUint(s.SyscallTraceIDReq, 10), s.SyscallTraceIDReq != 0)
	add("syscall_trace_id_resp", strconv.FormatUint(s.SyscallTraceIDResp, 10), s.SyscallTraceIDResp != 0)
	add("x_request_id_req", s.XRequestIDReq, s.XRequestIDReq != "")
	add("x_request_id_resp", s.XRequestIDResp, s.XRequestIDResp != "")
	add("trace_id", s.TraceID.String(), !s.TraceID.IsZero())
	add("tunnel_type", s.TunnelType.String(), s.TunnelType != span.TunnelNone)
	add("request_bytes", s.RequestBytes, s.RequestBytes != 0)
	add("response_bytes", s.ResponseBytes, s.ResponseBytes != 0)
	add("result_count", s.ResultCount, s.ResultCount != 0)
	add("stream_id", s.StreamID, s.StreamID != 0)
	return t
}

func serviceTags(s *span.Span) []kv {
	t := []kv{}
	add := func(k, v string) {
		if v != "" {
			t = append(t, kv{k, v})
		}
	}
	add("namespace", s.Namespace)
	add("workload", s.Workload)
	add("workload_kind", s.WorkloadKind)
	add("pod", s.Pod)
	add("container", s.ContainerName)
	add("container_id", s.ContainerID)
	add("process", s.ProcessName)
	add("node", s.Node)
	if s.Flags.Has(span.FlagProxy) {
		add("proxy", "true")
	}
	return t
}

func spanKind(t span.TapSide) string {
	switch {
	case t.IsClient():
		return "client"
	case t.IsServer():
		return "server"
	}
	return "internal"
}

func msf(ns int64) float64 { return float64(ns) / 1e6 }

// TraceFrame is the frame Grafana's trace view reads (DESIGN "Grafana
// contracts"): one row per span, parents by span id.
func TraceFrame(t *trace.Trace) *data.Frame {
	n := len(t.Spans)
	traceID := make([]string, n)
	spanID := make([]string, n)
	parent := make([]*string, n)
	op := make([]string, n)
	svc := make([]string, n)
	svcTags := make([]json.RawMessage, n)
	start := make([]float64, n)
	dur := make([]float64, n)
	tags := make([]json.RawMessage, n)
	logs := make([]json.RawMessage, n)
	kind := make([]string, n)
	code := make([]int64, n)
	msg := make([]string, n)
	for i := range t.Spans {
		s := &t.Spans[i]
		traceID[i] = t.ID
		spanID[i] = strconv.FormatUint(s.SpanID, 10)
		if p := t.Parents[i]; p >= 0 {
			id := strconv.FormatUint(t.Spans[p].SpanID, 10)
			parent[i] = &id
		}
		op[i] = fmt.Sprintf("%s [%s]", OperationName(s), s.TapSide)
		svc[i] = ServiceName(s)
		svcTags[i] = jsonKV(serviceTags(s))
		start[i] = msf(s.StartNs)
		dur[i] = msf(s.EndNs - s.StartNs)
		st := spanTags(s)
		if i < len(t.Evidence) && t.Evidence[i] != "" {
			st = append(st, kv{"zerotrace.link", string(t.Evidence[i])})
		}
		tags[i] = jsonKV(st)
		logs[i] = json.RawMessage("[]")
		kind[i] = spanKind(s.TapSide)
		if s.ResponseStatus.IsError() {
			code[i] = 2
			msg[i] = s.ResponseStatus.String()
			if s.ResponseCode != 0 {
				msg[i] = fmt.Sprintf("%s %d", s.ResponseStatus, s.ResponseCode)
			}
			if s.ResponseException != "" {
				msg[i] += ": " + s.ResponseException
			}
		}
	}
	f := data.NewFrame("trace",
		data.NewField("traceID", nil, traceID),
		data.NewField("spanID", nil, spanID),
		data.NewField("parentSpanID", nil, parent),
		data.NewField("operationName", nil, op),
		data.NewField("serviceName", nil, svc),
		data.NewField("serviceTags", nil, svcTags),
		data.NewField("startTime", nil, start),
		data.NewField("duration", nil, dur),
		data.NewField("tags", nil, tags),
		data.NewField("logs", nil, logs),
		data.NewField("kind", nil, kind),
		data.NewField("statusCode", nil, code),
		data.NewField("statusMessage", nil, msg),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTrace}
	seen := map[string]bool{}
	for _, w := range t.Warnings {
		for _, line := range strings.Split(w, "\n") {
			// Every assembly round that meets an unreadable shard says so:
			// one notice per shard.
			line = strings.TrimPrefix(line, "some spans could not be read: ")
			if line != "" && !seen[line] {
				seen[line] = true
				f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: line})
			}
		}
	}
	return f
}

// TraceLinkID is the id a search row links to: the application trace id, or
// the derived id of the row's span (the trace query assembles around it).
func TraceLinkID(s *span.Span) string {
	if !s.TraceID.IsZero() {
		return s.TraceID.String()
	}
	return trace.DerivedID(s.SpanID)
}

// SearchFrame is the table of calls, newest first; its traceID field links
// to the trace query in Explore.
func SearchFrame(spans []span.Span, dsUID, dsName string) *data.Frame {
	n := len(spans)
	tid := make([]string, n)
	start := make([]time.Time, n)
	svc := make([]string, n)
	ns := make([]string, n)
	op := make([]string, n)
	proto := make([]string, n)
	tap := make([]string, n)
	code := make([]int64, n)
	status := make([]string, n)
	dur := make([]float64, n)
	node := make([]string, n)
	client := make([]string, n)
	server := make([]string, n)
	for i := range spans {
		s := &spans[i]
		tid[i] = TraceLinkID(s)
		start[i] = time.Unix(0, s.StartNs).UTC()
		svc[i] = ServiceName(s)
		ns[i] = s.Namespace
		op[i] = OperationName(s)
		proto[i] = s.L7Protocol.String()
		tap[i] = s.TapSide.String()
		code[i] = int64(s.ResponseCode)
		status[i] = s.ResponseStatus.String()
		dur[i] = msf(s.EndNs - s.StartNs)
		node[i] = s.Node
		client[i] = addrPort(s.ClientIP, s.ClientPort)
		server[i] = addrPort(s.ServerIP, s.ServerPort)
	}
	tf := data.NewField("traceID", nil, tid)
	tf.Config = &data.FieldConfig{DisplayName: "Trace ID", Links: []data.DataLink{{
		Title: "Open trace",
		Internal: &data.InternalDataLink{DatasourceUID: dsUID, DatasourceName: dsName,
			Query: map[string]any{"queryType": QueryTrace, "traceId": "${__value.raw}"}},
	}}}
	df := data.NewField("duration", nil, dur)
	df.Config = &data.FieldConfig{Unit: "ms"}
	f := data.NewFrame("calls", tf,
		data.NewField("startTime", nil, start),
		data.NewField("service", nil, svc),
		data.NewField("namespace", nil, ns),
		data.NewField("operation", nil, op),
		data.NewField("protocol", nil, proto),
		data.NewField("tapSide", nil, tap),
		data.NewField("responseCode", nil, code),
		data.NewField("status", nil, status),
		df,
		data.NewField("node", nil, node),
		data.NewField("client", nil, client),
		data.NewField("server", nil, server),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}

type edgeStat struct {
	calls, errors int
	durs          []float64
}

func (e *edgeStat) add(s *span.Span) {
	e.calls++
	if s.ResponseStatus.IsError() {
		e.errors++
	}
	e.durs = append(e.durs, msf(s.EndNs-s.StartNs))
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// proxyServices are service names that mean "a proxy", not a service of
// its own (the service rules of a mesh name every sidecar alike).
var proxyServices = map[string]bool{"sidecar": true, "proxy": true, "envoy": true, "istio-proxy": true,
	"linkerd-proxy": true, "nginx": true}

// IsProxy reports whether a span was captured in a proxy (a sidecar).
func IsProxy(s *span.Span) bool {
	if s.Service != "" {
		return proxyServices[strings.ToLower(s.Service)]
	}
	return proxyServices[strings.ToLower(s.ProcessName)]
}

type podKey struct {
	node  string
	netns uint64
	pod   string
}

func podOf(s *span.Span) podKey {
	if s.Pod != "" {
		return podKey{pod: s.Namespace + "/" + s.Pod}
	}
	return podKey{node: s.Node, netns: s.NetNS}
}

// mapNames names the node of each span in a service map: a service's spans
// take the service; a proxy's take the service of the application in the
// same pod (by pod, or by node and network namespace when the pod is not
// known) with " (proxy)", else the pod's name with " (proxy)", else the
// proxy's name and network namespace. Never one node for every sidecar.
type mapNames struct {
	app map[podKey]string
}

func newMapNames(spans []span.Span) *mapNames {
	votes := map[podKey]map[string]int{}
	for i := range spans {
		s := &spans[i]
		if IsProxy(s) || !s.TapSide.IsProcess() || (s.Pod == "" && s.NetNS == 0) {
			continue
		}
		k := podOf(s)
		if votes[k] == nil {
			votes[k] = map[string]int{}
		}
		votes[k][appName(s)]++
	}
	m := &mapNames{app: map[podKey]string{}}
	for k, v := range votes {
		best := ""
		for name, n := range v {
			if best == "" || n > v[best] || (n == v[best] && name < best) {
				best = name
			}
		}
		m.app[k] = best
	}
	return m
}

// appName is a service's node: its service, else its pod, else its process.
func appName(s *span.Span) string {
	if s.Service == "" && s.Pod != "" {
		return s.Pod
	}
	return ServiceName(s)
}

func (m *mapNames) name(s *span.Span) string {
	if !IsProxy(s) {
		return appName(s)
	}
	if app := m.app[podOf(s)]; app != "" {
		return app + " (proxy)"
	}
	if s.Pod != "" {
		return s.Pod + " (proxy)"
	}
	if s.NetNS != 0 {
		return fmt.Sprintf("%s (netns %d on %s)", ServiceName(s), s.NetNS, s.Node)
	}
	return ServiceName(s)
}

// reqKey pairs a client span with the server span of the same request:
// the request's first tcp sequence number and the connection's addresses.
type reqKey struct {
	seq  uint32
	a, b netip.AddrPort
}

// ServiceMapFrames are the node graph's nodes and edges: services (and the
// proxies of their pods) as nodes with the calls they served, error rate
// and p50 latency; calls between them as edges. Server process spans give
// the nodes; client process spans, paired with the server span of the same
// request (tcp sequence plus addresses), give the edges. A client span
// without its server span ends at the server address. With service set, the
// map keeps that service's nodes and the edges that touch them, whole.
func ServiceMapFrames(spans []span.Span, service string) (nodes, edges *data.Frame) {
	names := newMapNames(spans)
	// Both addresses when no NAT sits between; one side each otherwise.
	full := map[reqKey]string{}
	byClient := map[reqKey]string{}
	byServer := map[reqKey]string{}
	nodeStats := map[string]*edgeStat{}
	members := map[string]map[string]bool{} // node → services of its spans
	note := func(node string, s *span.Span) {
		if members[node] == nil {
			members[node] = map[string]bool{}
		}
		members[node][s.Service] = true
		if nodeStats[node] == nil {
			nodeStats[node] = &edgeStat{}
		}
	}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapServerProcess {
			continue
		}
		n := names.name(s)
		note(n, s)
		nodeStats[n].add(s)
		if s.ReqTCPSeq != 0 {
			c, sv := netip.AddrPortFrom(s.ClientIP, s.ClientPort), netip.AddrPortFrom(s.ServerIP, s.ServerPort)
			full[reqKey{s.ReqTCPSeq, c, sv}] = n
			byClient[reqKey{seq: s.ReqTCPSeq, a: c}] = n
			byServer[reqKey{seq: s.ReqTCPSeq, b: sv}] = n
		}
	}
	type ekey struct{ from, to string }
	edgeStats := map[ekey]*edgeStat{}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapClientProcess {
			continue
		}
		c, sv := netip.AddrPortFrom(s.ClientIP, s.ClientPort), netip.AddrPortFrom(s.ServerIP, s.ServerPort)
		to, ok := "", false
		if s.ReqTCPSeq != 0 {
			if to, ok = full[reqKey{s.ReqTCPSeq, c, sv}]; !ok {
				if to, ok = byClient[reqKey{seq: s.ReqTCPSeq, a: c}]; !ok {
					to, ok = byServer[reqKey{seq: s.ReqTCPSeq, b: sv}]
				}
			}
		}
		if !ok {
			to = addrPort(s.ServerIP, s.ServerPort)
			if nodeStats[to] == nil {
				nodeStats[to] = &edgeStat{}
			}
		}
		from := names.name(s)
		note(from, s)
		k := ekey{from, to}
		if edgeStats[k] == nil {
			edgeStats[k] = &edgeStat{}
		}
		edgeStats[k].add(s)
	}
	if service != "" {
		match := func(n string) bool {
			return n == service || strings.HasPrefix(n, service+" (") || members[n][service]
		}
		keep := map[string]bool{}
		for n := range nodeStats {
			if match(n) {
				keep[n] = true
			}
		}
		for k := range edgeStats {
			if match(k.from) || match(k.to) {
				keep[k.from], keep[k.to] = true, true
			} else {
				delete(edgeStats, k)
			}
		}
		for n := range nodeStats {
			if !keep[n] {
				delete(nodeStats, n)
			}
		}
	}
	nodeNames := make([]string, 0, len(nodeStats))
	for n := range nodeStats {
		nodeNames = append(nodeNames, n)
	}
	sort.Strings(nodeNames)
	var id, title, mainStat, secStat []string
	var arcErr, arcOK []float64
	for _, n := range nodeNames {
		st := nodeStats[n]
		id = append(id, n)
		title = append(title, n)
		mainStat = append(mainStat, fmt.Sprintf("%d calls", st.calls))
		secStat = append(secStat, fmt.Sprintf("p50 %.2f ms", pct(st.durs, 0.5)))
		e := 0.0
		if st.calls > 0 {
			e = float64(st.errors) / float64(st.calls)
		}
		arcErr = append(arcErr, e)
		arcOK = append(arcOK, 1-e)
	}
	nodes = data.NewFrame("nodes",
		data.NewField("id", nil, id),
		data.NewField("title", nil, title),
		data.NewField("mainstat", nil, mainStat),
		data.NewField("secondarystat", nil, secStat),
		data.NewField("arc__errors", nil, arcErr).SetConfig(&data.FieldConfig{Color: map[string]any{"mode": "fixed", "fixedColor": "red"}}),
		data.NewField("arc__ok", nil, arcOK).SetConfig(&data.FieldConfig{Color: map[string]any{"mode": "fixed", "fixedColor": "green"}}),
	)
	nodes.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	keys := make([]ekey, 0, len(edgeStats))
	for k := range edgeStats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].from != keys[j].from {
			return keys[i].from < keys[j].from
		}
		return keys[i].to < keys[j].to
	})
	var eid, src, dst, emain, esec []string
	for _, k := range keys {
		st := edgeStats[k]
		eid = append(eid, k.from+"->"+k.to)
		src = append(src, k.from)
		dst = append(dst, k.to)
		emain = append(emain, fmt.Sprintf("%d calls, %.0f%% errors", st.calls, 100*float64(st.errors)/float64(st.calls)))
		esec = append(esec, fmt.Sprintf("p50 %.2f ms", pct(st.durs, 0.5)))
	}
	edges = data.NewFrame("edges",
		data.NewField("id", nil, eid),
		data.NewField("source", nil, src),
		data.NewField("target", nil, dst),
		data.NewField("mainstat", nil, emain),
		data.NewField("secondarystat", nil, esec),
	)
	edges.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	return nodes, edges
}

// MetricsFrames are RED series per service from server process spans:
// request rate (per second), error rate (fraction), p50 and p99 latency (ms),
// in buckets of step between from and to. One wide frame per metric.
func MetricsFrames(spans []span.Span, from, to time.Time, step time.Duration) []*data.Frame {
	if step <= 0 {
		step = time.Minute
	}
	width := max(to.Sub(from), 0) // saturates at 292 years
	if width/step > 2000 {
		step = width / 2000
	}
	nb := int(width/step) + 1 // at most 2001
	type bucket struct {
		calls, errors int
		durs          []float64
	}
	per := map[string][]bucket{}
	mapped := newMapNames(spans)
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapServerProcess {
			continue
		}
		b := int(time.Unix(0, s.StartNs).Sub(from) / step)
		if b < 0 || b >= nb {
			continue
		}
		name := mapped.name(s)
		if per[name] == nil {
			per[name] = make([]bucket, nb)
		}
		bk := &per[name][b]
		bk.calls++
		if s.ResponseStatus.IsError() {
			bk.errors++
		}
		bk.durs = append(bk.durs, msf(s.EndNs-s.StartNs))
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	times := make([]time.Time, nb)
	for i := range times {
		times[i] = from.Add(time.Duration(i) * step).UTC()
	}
	metric := func(name, unit string, val func(b bucket) *float64) *data.Frame {
		f := data.NewFrame(name, data.NewField("time", nil, times))
		for _, svc := range names {
			v := make([]*float64, nb)
			for i, b := range per[svc] {
				v[i] = val(b)
			}
			fld := data.NewField(name, data.Labels{"service": svc}, v)
			fld.Config = &data.FieldConfig{Unit: unit, DisplayNameFromDS: svc}
			f.Fields = append(f.Fields, fld)
		}
		f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeGraph}
		return f
	}
	fp := func(x float64) *float64 { return &x }
	return []*data.Frame{
		metric("request_rate", "reqps", func(b bucket) *float64 { return fp(float64(b.calls) / step.Seconds()) }),
		metric("error_rate", "percentunit", func(b bucket) *float64 {
			if b.calls == 0 {
				return nil
			}
			return fp(float64(b.errors) / float64(b.calls))
		}),
		metric("latency_p50", "ms", func(b bucket) *float64 {
			if b.calls == 0 {
				return nil
			}
			return fp(pct(b.durs, 0.5))
		}),
		metric("latency_p99", "ms", func(b bucket) *float64 {
			if b.calls == 0 {
				return nil
			}
			return fp(pct(b.durs, 0.99))
		}),
	}
}
