package otlp

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Limits bound what one OTLP request may hold. Zero values take the
// defaults.
type Limits struct {
	MaxSpans      int // spans per request (default 10000): more refuses the request
	MaxAttributes int // attributes kept per span and per resource (default 128)
	MaxValueBytes int // bytes kept of a string or bytes value (default 4096)
	MaxNameBytes  int // bytes kept of a span name (default 256)
}

func (l *Limits) defaults() {
	if l.MaxSpans <= 0 {
		l.MaxSpans = 10000
	}
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = 128
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = 4096
	}
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = 256
	}
}

// Result tells what became of one request's spans.
type Result struct {
	Accepted int
	Rejected int      // spans refused (their reasons in Errors)
	Limited  int      // attributes or values dropped or cut to the limits
	Errors   []string // the first few reasons, "span <id>: …"
}

// maxErrors bounds the reasons a Result keeps.
const maxErrors = 5

func (r *Result) reject(format string, args ...any) {
	r.Rejected++
	if len(r.Errors) < maxErrors {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// Message is the partial-success message of a result with rejected spans.
func (r *Result) Message() string {
	if r.Rejected == 0 {
		return ""
	}
	more := ""
	if r.Rejected > len(r.Errors) {
		more = fmt.Sprintf(" (and %d more)", r.Rejected-len(r.Errors))
	}
	return fmt.Sprintf("%d span(s) rejected: %s%s", r.Rejected, strings.Join(r.Errors, "; "), more)
}

// ErrTooManySpans reports a request beyond Limits.MaxSpans.
type ErrTooManySpans struct{ Spans, Max int }

func (e *ErrTooManySpans) Error() string {
	return fmt.Sprintf("request holds %d spans, more than the limit of %d: send smaller batches", e.Spans, e.Max)
}

// Spans converts what an SDK sent into spans of signal source otel seen on
// node, appending them to dst. A span without a valid trace id, span id or
// time range is rejected alone (Result says why); a request beyond
// MaxSpans is refused whole with *ErrTooManySpans and converts nothing.
func Spans(dst []span.Span, td ptrace.Traces, node string, lim Limits) ([]span.Span, Result, error) {
	lim.defaults()
	var res Result
	if n := td.SpanCount(); n > lim.MaxSpans {
		return dst, res, &ErrTooManySpans{Spans: n, Max: lim.MaxSpans}
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		var base span.Span
		resourceFields(&base, rs.Resource().Attributes(), node, lim, &res)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sc := sss.At(j)
			base.Scope = cut(sc.Scope().Name(), lim.MaxNameBytes)
			if v := sc.Scope().Version(); v != "" {
				base.Scope += "@" + cut(v, lim.MaxNameBytes)
			}
			spans := sc.Spans()
			for k := 0; k < spans.Len(); k++ {
				s := base
				if err := spanFields(&s, spans.At(k), lim, &res); err != "" {
					res.reject("span %s: %s", spans.At(k).SpanID(), err)
					continue
				}
				dst = append(dst, s)
				res.Accepted++
			}
		}
	}
	return dst, res, nil
}

func cut(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

func strAttr(m pcommon.Map, keys ...string) string {
	for _, k := range keys {
		if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
			return v.Str()
		}
	}
	return ""
}

func intAttr(m pcommon.Map, keys ...string) (int64, bool) {
	for _, k := range keys {
		v, ok := m.Get(k)
		if !ok {
			continue
		}
		switch v.Type() {
		case pcommon.ValueTypeInt:
			return v.Int(), true
		case pcommon.ValueTypeDouble:
			if f := v.Double(); f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int64(f), true
			}
		}
	}
	return 0, false
}

// resourceFields fills what the resource tells of every span under it.
func resourceFields(s *span.Span, m pcommon.Map, node string, lim Limits, res *Result) {
	s.SignalSource = span.SourceOTel
	s.Node = node
	s.Service = cut(strAttr(m, "service.name"), lim.MaxNameBytes)
	if s.Service == "" {
		s.Service = "unknown_service"
	}
	s.Namespace = cut(strAttr(m, "k8s.namespace.name"), lim.MaxNameBytes)
	s.Pod = cut(strAttr(m, "k8s.pod.name"), lim.MaxNameBytes)
	s.ContainerName = cut(strAttr(m, "k8s.container.name"), lim.MaxNameBytes)
	s.ContainerID = cut(strAttr(m, "container.id"), lim.MaxNameBytes)
	s.ProcessName = cut(strAttr(m, "process.executable.name"), lim.MaxNameBytes)
	if pid, ok := intAttr(m, "process.pid"); ok && pid > 0 && pid <= math.MaxUint32 {
		s.PID = uint32(pid)
	}
	for _, w := range span.WorkloadKinds() {
		if v := strAttr(m, w.Key); v != "" {
			s.Workload, s.WorkloadKind = cut(v, lim.MaxNameBytes), w.Kind
			break
		}
	}
	var n int
	s.Resource, n = attrsJSON(m, lim.MaxAttributes, lim.MaxValueBytes)
	res.Limited += n
}

// tapOfKind: where along a hop an SDK span stands.
var tapOfKind = [...]span.TapSide{span.TapApp, span.TapApp, span.TapServerApp, span.TapClientApp, span.TapClientApp, span.TapServerApp}

// spanFields fills one span; a non-empty return is why it is rejected.
func spanFields(s *span.Span, o ptrace.Span, lim Limits, res *Result) string {
	tid, sid := o.TraceID(), o.SpanID()
	if tid.IsEmpty() {
		return "trace id is missing or zero"
	}
	if sid.IsEmpty() {
		return "span id is missing or zero"
	}
	start, end := uint64(o.StartTimestamp()), uint64(o.EndTimestamp())
	switch {
	case start == 0:
		return "start time is missing"
	case start > math.MaxInt64 || end > math.MaxInt64:
		return "time beyond the year 2262"
	case end < start:
		return "ends before it starts"
	}
	s.TraceID = span.TraceID(tid)
	s.SpanID = binary.BigEndian.Uint64(sid[:])
	s.AppSpanID = s.SpanID
	if p := o.ParentSpanID(); !p.IsEmpty() {
		s.ParentSpanID = binary.BigEndian.Uint64(p[:])
		if s.ParentSpanID == s.SpanID {
			return "is its own parent"
		}
	}
	s.StartNs, s.EndNs = int64(start), int64(end)
	kind := o.Kind()
	if kind < 0 || int(kind) >= len(tapOfKind) {
		kind = ptrace.SpanKindUnspecified
	}
	s.Kind = span.SpanKind(kind)
	s.TapSide = tapOfKind[kind]
	s.Name = cut(o.Name(), lim.MaxNameBytes)
	a := o.Attributes()
	var n int
	s.Attributes, n = attrsJSON(a, lim.MaxAttributes, lim.MaxValueBytes)
	res.Limited += n
	protocolFields(s, a, lim)
	switch o.Status().Code() {
	case ptrace.StatusCodeError:
		s.ResponseStatus = span.StatusServerError
		if s.ResponseCode >= 400 && s.ResponseCode < 500 {
			s.ResponseStatus = span.StatusClientError
		}
		s.ResponseException = cut(o.Status().Message(), lim.MaxValueBytes)
	case ptrace.StatusCodeOk:
		s.ResponseStatus = span.StatusOK
	}
	return ""
}

// protocolFields copies the semantic-convention attributes that Zerotrace
// searches and shows by into span fields (current names, then the older
// ones SDKs still send).
func protocolFields(s *span.Span, a pcommon.Map, lim Limits) {
	method := strAttr(a, "http.request.method", "http.method")
	switch {
	case strAttr(a, "rpc.system") == "grpc":
		s.L7Protocol = span.L7GRPC
		if svc, m := strAttr(a, "rpc.service"), strAttr(a, "rpc.method"); svc != "" || m != "" {
			s.RequestResource = "/" + svc + "/" + m
		}
		if c, ok := intAttr(a, "rpc.grpc.status_code"); ok {
			s.ResponseCode = int32(c)
		}
	case method != "":
		s.L7Protocol = span.L7HTTP1
		if v := strAttr(a, "network.protocol.version", "http.flavor"); v == "2" || v == "2.0" {
			s.L7Protocol = span.L7HTTP2
		}
		s.RequestType = method
		s.RequestResource = strAttr(a, "url.path", "http.target")
		if q := strAttr(a, "url.query"); q != "" {
			s.RequestResource += "?" + q
		}
		s.Endpoint = strAttr(a, "http.route")
		if c, ok := intAttr(a, "http.response.status_code", "http.status_code"); ok && c > 0 && c < 1000 {
			s.ResponseCode = int32(c)
			if c >= 500 {
				s.ResponseStatus = span.StatusServerError
			} else if c >= 400 {
				s.ResponseStatus = span.StatusClientError
			}
		}
	default:
		if db := strAttr(a, "db.system.name", "db.system"); db != "" {
			if p, err := span.ParseL7Protocol(db); err == nil {
				s.L7Protocol = p
			}
			s.RequestType = strAttr(a, "db.operation.name", "db.operation")
			s.RequestResource = strAttr(a, "db.query.text", "db.statement")
			s.RequestDomain = strAttr(a, "db.namespace", "db.name")
		} else if strAttr(a, "messaging.system") == "kafka" {
			s.L7Protocol = span.L7Kafka
			s.RequestType = strAttr(a, "messaging.operation.name", "messaging.operation")
			s.RequestResource = strAttr(a, "messaging.destination.name")
		}
	}
	if s.RequestDomain == "" {
		s.RequestDomain = strAttr(a, "server.address", "net.peer.name")
	}
	s.RequestType = cut(s.RequestType, lim.MaxNameBytes)
	s.RequestResource = cut(s.RequestResource, lim.MaxValueBytes)
	s.RequestDomain = cut(s.RequestDomain, lim.MaxNameBytes)
	s.Endpoint = cut(s.Endpoint, lim.MaxNameBytes)
	if s.Endpoint == "" && s.RequestResource != "" && s.L7Protocol != span.L7MySQL && s.L7Protocol != span.L7PostgreSQL {
		s.Endpoint, _, _ = strings.Cut(s.RequestResource, "?")
	}
	peer, _ := netip.ParseAddr(strAttr(a, "network.peer.address", "net.sock.peer.addr"))
	port, _ := intAttr(a, "network.peer.port", "net.sock.peer.port")
	if port < 0 || port > math.MaxUint16 {
		port = 0
	}
	switch {
	case s.TapSide.IsServer():
		s.ClientIP, s.ClientPort = peer.Unmap(), uint16(port)
	case s.TapSide.IsClient():
		s.ServerIP, s.ServerPort = peer.Unmap(), uint16(port)
	}
}
