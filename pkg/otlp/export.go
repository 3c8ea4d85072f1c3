package otlp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// Scope names of the spans Zerotrace captured (an SDK span keeps its own).
const (
	ScopeEBPF   = "zerotrace-ebpf"
	ScopePacket = "zerotrace-packet"
)

// TraceIDOf is the OTLP trace id of an assembled trace id (32 hex digits:
// an application's trace id or a Zerotrace derived id).
func TraceIDOf(id string) (pcommon.TraceID, error) {
	var t pcommon.TraceID
	if len(id) != 32 {
		return t, fmt.Errorf("trace id %q: want 32 hex digits", id)
	}
	if _, err := hex.Decode(t[:], []byte(id)); err != nil {
		return t, fmt.Errorf("trace id %q: %w", id, err)
	}
	if t.IsEmpty() {
		return t, fmt.Errorf("trace id %q is zero", id)
	}
	return t, nil
}

// SpanIDOf is the OTLP span id of a Zerotrace span id (big-endian, as
// span.FormatSpanID prints it).
func SpanIDOf(id uint64) pcommon.SpanID {
	var s pcommon.SpanID
	binary.BigEndian.PutUint64(s[:], id)
	return s
}

// Mapper appends assembled traces to a ptrace.Traces, grouping spans by
// resource and scope. It keeps its groups across calls until Reset, so that
// a batch of many traces has one ResourceSpans per resource. Not safe for
// concurrent use.
type Mapper struct {
	td     ptrace.Traces
	groups map[groupKey]ptrace.SpanSlice
	spans  int
	attrs  attrList // scratch of setSpan
}

type groupKey struct {
	service, namespace, pod, workload, kind, container, containerID, node, process, resource string
	pid                                                                                      uint32
	scope                                                                                    string
}

// NewMapper returns an empty mapper.
func NewMapper() *Mapper {
	return &Mapper{td: ptrace.NewTraces(), groups: map[groupKey]ptrace.SpanSlice{}}
}

// Traces returns what was appended since the last Reset.
func (m *Mapper) Traces() ptrace.Traces { return m.td }

// Spans is the number of spans appended since the last Reset.
func (m *Mapper) Spans() int { return m.spans }

// Reset starts a new, empty ptrace.Traces (the previous one is the
// caller's).
func (m *Mapper) Reset() {
	m.td = ptrace.NewTraces()
	clear(m.groups)
	m.spans = 0
}

func scopeOf(s *span.Span) string {
	switch s.SignalSource {
	case span.SourceEBPF:
		return ScopeEBPF
	case span.SourcePacket:
		return ScopePacket
	}
	return s.Scope
}

func (m *Mapper) slice(s *span.Span) ptrace.SpanSlice {
	k := groupKey{service: s.ServiceName(), namespace: s.Namespace, pod: s.Pod, workload: s.Workload, kind: s.WorkloadKind,
		container: s.ContainerName, containerID: s.ContainerID, node: s.Node, process: s.ProcessName, pid: s.PID,
		resource: s.Resource, scope: scopeOf(s)}
	if ss, ok := m.groups[k]; ok {
		return ss
	}
	rs := m.td.ResourceSpans().AppendEmpty()
	setResource(rs.Resource().Attributes(), s)
	sc := rs.ScopeSpans().AppendEmpty()
	name, version, _ := strings.Cut(k.scope, "@")
	sc.Scope().SetName(name)
	sc.Scope().SetVersion(version)
	ss := sc.Spans()
	m.groups[k] = ss
	return ss
}

// AppendTrace appends the spans of t (Spans or Refs) at the indexes in which (nil: all)
// under traceID. A span's parent is its parent in t (also when that parent
// is not appended: exported before); a root has none.
func (m *Mapper) AppendTrace(traceID pcommon.TraceID, t *trace.Trace, which []int) {
	add := func(i int) {
		s := t.Span(i)
		o := m.slice(s).AppendEmpty()
		o.SetTraceID(traceID)
		o.SetSpanID(SpanIDOf(s.SpanID))
		if p := t.Parents[i]; p >= 0 {
			o.SetParentSpanID(SpanIDOf(t.Span(p).SpanID))
		}
		var ev trace.Evidence
		if i < len(t.Evidence) {
			ev = t.Evidence[i]
		}
		setSpan(o, s, ev, &m.attrs)
		m.spans++
	}
	if which == nil {
		for i := range t.Len() {
			add(i)
		}
		return
	}
	for _, i := range which {
		add(i)
	}
}
