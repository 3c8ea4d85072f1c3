package otlp

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// Attribute keys Zerotrace adds beside OpenTelemetry's semantic conventions
// (docs/otlp.md).
const (
	AttrLink         = "zerotrace.link" // the evidence that joined a span to its parent
	AttrTapSide      = "zerotrace.tap_side"
	AttrSignalSource = "zerotrace.signal_source"
)

func putStr(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// setResource fills the resource of s's group: an SDK's own resource
// attributes first, then what Zerotrace knows of the span's workload where
// the SDK said nothing.
func setResource(m pcommon.Map, s *span.Span) {
	if s.Resource != "" {
		_ = putJSON(m, s.Resource) // written by Spans: a JSON object
	}
	put := func(k, v string) {
		if _, ok := m.Get(k); !ok && v != "" {
			m.PutStr(k, v)
		}
	}
	m.PutStr("service.name", s.ServiceName())
	put("k8s.namespace.name", s.Namespace)
	put("k8s.pod.name", s.Pod)
	put("k8s.container.name", s.ContainerName)
	put(span.WorkloadResourceKey(s.WorkloadKind), s.Workload)
	put("host.name", s.Node)
	put("k8s.node.name", s.Node)
	put("container.id", s.ContainerID)
	put("process.executable.name", s.ProcessName)
	if _, ok := m.Get("process.pid"); !ok && s.PID != 0 {
		m.PutInt("process.pid", int64(s.PID))
	}
}

// Kind is the OTLP span kind of s: the SDK's, else by tap side (a process's
// calls are client spans, its requests server spans; what a network
// interface saw is internal).
func Kind(s *span.Span) ptrace.SpanKind {
	if s.Kind != span.KindUnspecified {
		return ptrace.SpanKind(s.Kind)
	}
	switch {
	case s.SignalSource == span.SourcePacket:
		return ptrace.SpanKindInternal
	case s.TapSide.IsClient():
		return ptrace.SpanKindClient
	case s.TapSide.IsServer():
		return ptrace.SpanKindServer
	}
	return ptrace.SpanKindInternal
}

func setSpan(o ptrace.Span, s *span.Span, ev trace.Evidence, l *attrList) {
	o.SetName(s.OperationName())
	o.SetKind(Kind(s))
	o.SetStartTimestamp(pcommon.Timestamp(max(s.StartNs, 0)))
	o.SetEndTimestamp(pcommon.Timestamp(max(s.EndNs, s.StartNs, 0)))
	a := o.Attributes()
	if s.SignalSource == span.SourceOTel {
		if s.Attributes != "" {
			_ = putJSON(a, s.Attributes) // written by Spans: a JSON object
		}
		setStatus(o, s)
		putStr(a, AttrLink, string(ev))
		return
	}
	l.reset()
	l.str(AttrSignalSource, s.SignalSource.String())
	l.str(AttrTapSide, s.TapSide.String())
	l.str(AttrLink, string(ev))
	setNetwork(l, s)
	setL7(l, s)
	l.putTo(a)
	setStatus(o, s)
}

// setNetwork: the connection. The peer is the other end as the observed
// side sees it: the client of a server span, the server of a client span.
func setNetwork(l *attrList, s *span.Span) {
	l.str("network.transport", s.L4.String())
	switch s.IPVersion {
	case 4:
		l.str("network.type", "ipv4")
	case 6:
		l.str("network.type", "ipv6")
	}
	if s.TapSide.IsServer() {
		l.addr("network.peer.address", s.ClientIP)
		l.port("network.peer.port", s.ClientPort)
	} else {
		l.addr("network.peer.address", s.ServerIP)
		l.port("network.peer.port", s.ServerPort)
	}
	l.addr("client.address", s.ClientIP)
	l.port("client.port", s.ClientPort)
	if s.RequestDomain != "" && s.L7Protocol != span.L7MySQL && s.L7Protocol != span.L7PostgreSQL {
		l.str("server.address", s.RequestDomain)
	} else {
		l.addr("server.address", s.ServerIP)
	}
	l.port("server.port", s.ServerPort)
	if s.SignalSource == span.SourcePacket {
		l.str("network.interface.name", s.CaptureNIC)
		if s.TunnelType != span.TunnelNone {
			l.str("zerotrace.tunnel.type", s.TunnelType.String())
			l.addr("zerotrace.tunnel.outer_source", s.TunnelOuterSrc)
			l.addr("zerotrace.tunnel.outer_destination", s.TunnelOuterDst)
		}
	}
	if s.ReqTID != 0 {
		l.int("thread.id", int64(s.ReqTID))
	}
}

// setL7 maps the application protocol's fields to its semantic conventions.
func setL7(l *attrList, s *span.Span) {
	switch s.L7Protocol {
	case span.L7HTTP1, span.L7HTTP2:
		l.str("network.protocol.name", "http")
		l.str("network.protocol.version", s.L7Version)
		l.str("http.request.method", s.RequestType)
		path, query, _ := strings.Cut(s.RequestResource, "?")
		l.str("url.path", path)
		l.str("url.query", query)
		if s.ResponseCode != 0 {
			l.int("http.response.status_code", int64(s.ResponseCode))
		}
		if s.RequestBytes != 0 {
			l.int("http.request.size", s.RequestBytes)
		}
		if s.ResponseBytes != 0 {
			l.int("http.response.size", s.ResponseBytes)
		}
		l.str("zerotrace.endpoint", s.Endpoint)
	case span.L7GRPC:
		l.str("rpc.system", "grpc")
		svc, method := grpcMethod(s.RequestResource)
		l.str("rpc.service", svc)
		l.str("rpc.method", method)
		if s.ResponseCode != 0 || s.ResponseStatus == span.StatusOK {
			l.int("rpc.grpc.status_code", int64(s.ResponseCode))
		}
		l.str("url.path", s.RequestResource)
	case span.L7MySQL, span.L7PostgreSQL, span.L7Redis:
		l.str("db.system", s.L7Protocol.String())
		l.str("db.operation.name", s.RequestType)
		l.str("db.namespace", s.RequestDomain)
		// The statement as the collector stored it: redacted at capture
		// (literals replaced) before it reached a shard.
		q := s.RequestResource
		if s.L7Protocol == span.L7Redis && q != "" {
			q = s.RequestType + " " + q
		}
		l.str("db.query.text", q)
		if s.ResultCount != 0 {
			l.int("db.response.returned_rows", s.ResultCount)
		}
	case span.L7Kafka:
		l.str("messaging.system", "kafka")
		l.str("messaging.operation.name", s.RequestType)
		l.str("messaging.destination.name", s.RequestResource)
		if s.StreamID != 0 {
			l.int("messaging.kafka.correlation_id", int64(s.StreamID))
		}
	case span.L7DNS:
		l.str("network.protocol.name", "dns")
		l.str("dns.question.name", s.RequestResource)
		l.str("dns.question.type", s.RequestType)
		if s.ResultCount != 0 {
			l.int("dns.answers", s.ResultCount)
		}
	}
	if s.ResponseCode != 0 && s.L7Protocol != span.L7HTTP1 && s.L7Protocol != span.L7HTTP2 && s.L7Protocol != span.L7GRPC {
		l.int("zerotrace.response_code", int64(s.ResponseCode))
	}
	if s.ResponseStatus != span.StatusUnknown {
		l.str("zerotrace.response_status", s.ResponseStatus.String())
	}
	l.str("http.request.header.x-request-id", s.XRequestIDReq)
}

// grpcMethod splits "/package.Service/Method".
func grpcMethod(path string) (svc, method string) {
	p := strings.TrimPrefix(path, "/")
	svc, method, ok := strings.Cut(p, "/")
	if !ok {
		return "", ""
	}
	return svc, method
}

func setStatus(o ptrace.Span, s *span.Span) {
	if !s.ResponseStatus.IsError() {
		if s.SignalSource == span.SourceOTel && s.ResponseStatus == span.StatusOK {
			o.Status().SetCode(ptrace.StatusCodeOk)
		}
		return
	}
	o.Status().SetCode(ptrace.StatusCodeError)
	msg := s.ResponseException
	if s.SignalSource != span.SourceOTel {
		msg = s.ResponseStatus.String()
		if s.ResponseCode != 0 {
			msg = fmt.Sprintf("%s %d", s.ResponseStatus, s.ResponseCode)
		}
		if s.ResponseException != "" {
			msg += ": " + s.ResponseException
		}
	}
	o.Status().SetMessage(msg)
}
