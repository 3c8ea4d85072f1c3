package plugin

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
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

// ServiceName is the name a span shows: its service, else its process, else
// where a packet capture saw it.
func ServiceName(s *span.Span) string {
	switch {
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
	add("pod", s.Pod)
	add("container_id", s.ContainerID)
	add("process", s.ProcessName)
	add("node", s.Node)
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
	for _, w := range t.Warnings {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: w})
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

// ServiceMapFrames are the node graph's nodes and edges: services as nodes
// (calls served, error rate, p50 latency), calls between them as edges.
// Server process spans give the nodes; client process spans, paired with
// their server span by request tcp seq, give the edges.
func ServiceMapFrames(spans []span.Span) (nodes, edges *data.Frame) {
	serverOf := map[uint32]string{}
	nodeStats := map[string]*edgeStat{}
	for i := range spans {
		s := &spans[i]
		if s.TapSide == span.TapServerProcess {
			serverOf[s.ReqTCPSeq] = ServiceName(s)
			st := nodeStats[ServiceName(s)]
			if st == nil {
				st = &edgeStat{}
				nodeStats[ServiceName(s)] = st
			}
			st.add(s)
		}
	}
	type ekey struct{ from, to string }
	edgeStats := map[ekey]*edgeStat{}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapClientProcess {
			continue
		}
		to, ok := serverOf[s.ReqTCPSeq]
		if !ok {
			to = addrPort(s.ServerIP, s.ServerPort)
		}
		from := ServiceName(s)
		if nodeStats[from] == nil {
			nodeStats[from] = &edgeStat{}
		}
		if nodeStats[to] == nil {
			nodeStats[to] = &edgeStat{}
		}
		k := ekey{from, to}
		if edgeStats[k] == nil {
			edgeStats[k] = &edgeStat{}
		}
		edgeStats[k].add(s)
	}
	names := make([]string, 0, len(nodeStats))
	for n := range nodeStats {
		names = append(names, n)
	}
	sort.Strings(names)
	var id, title, mainStat, secStat []string
	var arcErr, arcOK []float64
	for _, n := range names {
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
	nb := int(to.Sub(from)/step) + 1
	if nb > 2000 {
		step = to.Sub(from) / 2000
		nb = 2001
	}
	type bucket struct {
		calls, errors int
		durs          []float64
	}
	per := map[string][]bucket{}
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapServerProcess {
			continue
		}
		b := int(time.Unix(0, s.StartNs).Sub(from) / step)
		if b < 0 || b >= nb {
			continue
		}
		name := ServiceName(s)
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
