package plugin

import (
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// SearchFrame is the table of matching spans (tableType spans), newest
// first; its traceID field links to the trace query in Explore.
func SearchFrame(spans []span.Span, link TraceLink) *data.Frame {
	n := len(spans)
	tid := make([]string, n)
	sid := make([]string, n)
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
	pod := make([]string, n)
	client := make([]string, n)
	server := make([]string, n)
	for i := range spans {
		s := &spans[i]
		tid[i] = trace.LinkID(s)
		sid[i] = span.FormatSpanID(s.SpanID)
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
		pod[i] = s.Pod
		client[i] = addrPort(s.ClientIP, s.ClientPort)
		server[i] = addrPort(s.ServerIP, s.ServerPort)
	}
	tf := link.field("traceID", tid)
	tf.Config.DisplayName = "Trace ID"
	f := data.NewFrame("spans", tf,
		data.NewField("spanID", nil, sid),
		data.NewField("startTime", nil, start),
		data.NewField("service", nil, svc),
		data.NewField("namespace", nil, ns),
		data.NewField("operation", nil, op),
		data.NewField("protocol", nil, proto),
		data.NewField("tapSide", nil, tap),
		data.NewField("responseCode", nil, code),
		data.NewField("status", nil, status),
		data.NewField("duration", nil, dur).SetConfig(&data.FieldConfig{Unit: "ms"}),
		data.NewField("node", nil, node),
		data.NewField("pod", nil, pod),
		data.NewField("client", nil, client),
		data.NewField("server", nil, server),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}

// TraceHit is one trace a search found: the assembled trace and how many of
// its spans match the filters and start within the time range.
type TraceHit struct {
	Trace   *trace.Trace
	Matched int
}

// root is the trace's earliest root span.
func root(t *trace.Trace) *span.Span {
	var r *span.Span
	for i, p := range t.Parents {
		if p < 0 && (r == nil || t.Spans[i].StartNs < r.StartNs) {
			r = &t.Spans[i]
		}
	}
	return r
}

// TracesFrame is the table of traces (tableType traces), in the order
// given (newest first): one row per trace with its root service and
// operation, start, duration, span count, matching spans and error spans;
// traceID links to the trace query in Explore.
func TracesFrame(hits []TraceHit, link TraceLink) *data.Frame {
	n := len(hits)
	tid := make([]string, n)
	start := make([]time.Time, n)
	rootSvc := make([]string, n)
	rootOp := make([]string, n)
	dur := make([]float64, n)
	spans := make([]int64, n)
	matched := make([]int64, n)
	errs := make([]int64, n)
	for i, h := range hits {
		t := h.Trace
		tid[i] = t.ID
		first, last := t.Spans[0].StartNs, t.Spans[0].EndNs
		for j := range t.Spans {
			s := &t.Spans[j]
			first, last = min(first, s.StartNs), max(last, s.EndNs)
			if s.ResponseStatus.IsError() {
				errs[i]++
			}
		}
		start[i] = time.Unix(0, first).UTC()
		dur[i] = msf(last - first)
		if r := root(t); r != nil {
			rootSvc[i], rootOp[i] = ServiceName(r), OperationName(r)
		}
		spans[i], matched[i] = int64(len(t.Spans)), int64(h.Matched)
	}
	tf := link.field("traceID", tid)
	tf.Config.DisplayName = "Trace ID"
	f := data.NewFrame("traces", tf,
		data.NewField("startTime", nil, start),
		data.NewField("rootService", nil, rootSvc),
		data.NewField("rootOperation", nil, rootOp),
		data.NewField("duration", nil, dur).SetConfig(&data.FieldConfig{Unit: "ms"}),
		data.NewField("spans", nil, spans),
		data.NewField("matched", nil, matched),
		data.NewField("errors", nil, errs),
	)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}
