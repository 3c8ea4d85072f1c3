package plugin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

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
		{"span_id", span.FormatSpanID(s.SpanID)},
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
	add("tls", true, s.Flags.Has(span.FlagTLS))
	add("tls_library", s.Flags.TLSLibrary(), s.Flags.TLSLibrary() != "")
	return t
}

// serviceTags are the span's resource: our keys, then the OpenTelemetry
// resource attributes of the same values (service.name, k8s.namespace.name,
// k8s.pod.name …), so that trace-to-logs/metrics queries written for
// OpenTelemetry data (${__span.tags["k8s.pod.name"]}) work unchanged.
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
	add("service.name", ServiceName(s))
	add("k8s.namespace.name", s.Namespace)
	add("k8s.pod.name", s.Pod)
	add("k8s.container.name", s.ContainerName)
	add(span.WorkloadResourceKey(s.WorkloadKind), s.Workload)
	add("k8s.node.name", s.Node)
	add("container.id", s.ContainerID)
	add("process.executable.name", s.ProcessName)
	return t
}

// instrumentationLibrary names what captured a span, in the trace view's
// "instrumentation library" slot.
func instrumentationLibrary(s *span.Span) string {
	switch s.SignalSource {
	case span.SourceEBPF:
		return "zerotrace-ebpf"
	case span.SourcePacket:
		return "zerotrace-packet"
	}
	return "zerotrace"
}

// inferredLinks are the evidence kinds that join a span to its parent by
// inference (timing, a wake-up) rather than by an identifier both sides
// carry; the trace view shows each such span with a warning.
var inferredLinks = map[trace.Evidence]string{
	trace.EvidenceContainment: "linked to its parent by containment: the only request its process had in flight covered this call (timing, not an identifier)",
	trace.EvidenceProxy:       "linked to its parent by proxy containment: the one forwarded request with this method and resource in flight (timing, not an identifier)",
	trace.EvidenceHandoff:     "linked to its parent by handoff: the request's thread woke the worker that made this call (scheduler evidence, not an identifier)",
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

// traceColumns are the trace frame's fields, one value per span.
type traceColumns struct {
	traceID, spanID, op, svc, kind, msg, lib []string
	parent                                   []*string
	svcTags, tags, logs, warnings            []json.RawMessage
	start, dur                               []float64
	code                                     []int64
}

// row fills span i of t.
func (c *traceColumns) row(t *trace.Trace, i int) {
	s := &t.Spans[i]
	c.traceID[i] = t.ID
	c.spanID[i] = span.FormatSpanID(s.SpanID)
	if p := t.Parents[i]; p >= 0 {
		id := span.FormatSpanID(t.Spans[p].SpanID)
		c.parent[i] = &id
	}
	// The name is the operation alone, so that span-name filters and
	// ${__span.name} see one name per operation; the tap side stays a tag
	// and the kind.
	c.op[i] = OperationName(s)
	c.svc[i] = ServiceName(s)
	c.svcTags[i] = jsonKV(serviceTags(s))
	c.start[i] = msf(s.StartNs)
	c.dur[i] = msf(s.EndNs - s.StartNs)
	st := spanTags(s)
	c.warnings[i] = json.RawMessage("[]")
	if i < len(t.Evidence) && t.Evidence[i] != "" {
		st = append(st, kv{"zerotrace.link", string(t.Evidence[i])})
		if w, ok := inferredLinks[t.Evidence[i]]; ok {
			c.warnings[i], _ = json.Marshal([]string{w})
		}
	}
	c.tags[i] = jsonKV(st)
	c.logs[i] = json.RawMessage("[]")
	c.kind[i] = spanKind(s.TapSide)
	c.lib[i] = instrumentationLibrary(s)
	if s.ResponseStatus.IsError() {
		c.code[i] = 2
		c.msg[i] = s.ResponseStatus.String()
		if s.ResponseCode != 0 {
			c.msg[i] = fmt.Sprintf("%s %d", s.ResponseStatus, s.ResponseCode)
		}
		if s.ResponseException != "" {
			c.msg[i] += ": " + s.ResponseException
		}
	}
}

// TraceFrame is the frame Grafana's trace view reads: one row per span,
// parents by span id (16 hex digits).
func TraceFrame(t *trace.Trace) *data.Frame {
	n := len(t.Spans)
	c := traceColumns{traceID: make([]string, n), spanID: make([]string, n), parent: make([]*string, n),
		op: make([]string, n), svc: make([]string, n), svcTags: make([]json.RawMessage, n), start: make([]float64, n),
		dur: make([]float64, n), tags: make([]json.RawMessage, n), logs: make([]json.RawMessage, n),
		warnings: make([]json.RawMessage, n), kind: make([]string, n), code: make([]int64, n), msg: make([]string, n),
		lib: make([]string, n)}
	for i := range t.Spans {
		c.row(t, i)
	}
	f := data.NewFrame("trace",
		data.NewField("traceID", nil, c.traceID),
		data.NewField("spanID", nil, c.spanID),
		data.NewField("parentSpanID", nil, c.parent),
		data.NewField("operationName", nil, c.op),
		data.NewField("serviceName", nil, c.svc),
		data.NewField("serviceTags", nil, c.svcTags),
		data.NewField("startTime", nil, c.start),
		data.NewField("duration", nil, c.dur),
		data.NewField("tags", nil, c.tags),
		data.NewField("logs", nil, c.logs),
		data.NewField("warnings", nil, c.warnings),
		data.NewField("kind", nil, c.kind),
		data.NewField("statusCode", nil, c.code),
		data.NewField("statusMessage", nil, c.msg),
		data.NewField("instrumentationLibraryName", nil, c.lib),
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
