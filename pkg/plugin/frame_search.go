package plugin

import (
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

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
