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
