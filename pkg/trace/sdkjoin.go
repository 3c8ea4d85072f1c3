package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// Spans an OpenTelemetry SDK sent (signal source otel, pkg/otlp) join the
// captured spans of the same requests through the W3C trace context both
// sides carry (docs/assembly.md "SDK spans"):
//
//   - an SDK span whose parent span id is the span id of another SDK span
//     of the trace is its child (the SDK's own link, evidence "sdk");
//   - an eBPF client span (c-p) whose traceparent names an SDK span is that
//     span's child: the instrumented process made the call inside it
//     (evidence "traceparent"). Proxies pass the header on unchanged, so
//     their calls name the SDK span too: only a call of the SDK's own
//     workload (same pod, else same service) that is no proxy's joins;
//   - an SDK server span whose parent is named by the traceparent an eBPF
//     server span received is that span's child: the SDK handled the
//     request the socket received (evidence "traceparent").
//
// Ids alone could collide across traces, so both sides must carry the same
// trace id, and the parent must cover the child in time (with the clock
// skew tolerance).
const (
	// EvidenceSDK: an SDK's own parent link.
	EvidenceSDK Evidence = "sdk"
	// EvidenceTraceparent: an SDK span and a captured span joined by the
	// trace context the request carried.
	EvidenceTraceparent Evidence = "traceparent"
)

type appKey struct {
	trace span.TraceID
	span  uint64
}

// joinSDK sets the parents the rules above give, before the rules of the
// captured spans (process sets, links between sets) run; a child that
// already has a parent (a network chain's member) keeps it.
func joinSDK(cfg *Config, spans []*span.Span, parent []int, setParent func(child, p int, ev Evidence) bool) {
	sdk := map[appKey]int{}
	for i := range spans {
		if s := spans[i]; s.SignalSource == span.SourceOTel && s.AppSpanID != 0 && !s.TraceID.IsZero() {
			sdk[appKey{s.TraceID, s.AppSpanID}] = i
		}
	}
	if len(sdk) == 0 {
		return
	}
	covers := func(p, c *span.Span) bool {
		tol := int64(cfg.SameNodeSkew)
		if p.Node != c.Node {
			tol = int64(cfg.CrossNodeSkew)
		}
		return p.StartNs <= c.StartNs+tol && p.EndNs+tol >= c.EndNs
	}
	// The SDK's own links, and eBPF calls under the SDK span their
	// traceparent names.
	for i := range spans {
		s := spans[i]
		if parent[i] >= 0 || s.ParentSpanID == 0 || s.TraceID.IsZero() {
			continue
		}
		p, ok := sdk[appKey{s.TraceID, s.ParentSpanID}]
		switch {
		case !ok || p == i:
		case s.SignalSource == span.SourceOTel:
			setParent(i, p, EvidenceSDK)
		case s.SignalSource == span.SourceEBPF && s.TapSide == span.TapClientProcess && sameWorkload(spans[p], s) && covers(spans[p], s):
			setParent(i, p, EvidenceTraceparent)
		}
	}
	// SDK server spans under the captured server span that received their
	// parent's traceparent.
	for i := range spans {
		s := spans[i]
		if parent[i] >= 0 || s.SignalSource != span.SourceOTel || s.TapSide != span.TapServerApp || s.ParentSpanID == 0 {
			continue
		}
		best := -1
		for j := range spans {
			c := spans[j]
			if c.SignalSource == span.SourceOTel || !c.TapSide.IsServer() || c.ParentSpanID != s.ParentSpanID ||
				c.TraceID != s.TraceID || !covers(c, s) {
				continue
			}
			if best < 0 || receivedBetter(s, c, spans[best]) {
				best = j
			}
		}
		if best >= 0 {
			setParent(i, best, EvidenceTraceparent)
		}
	}
}

// receivedBetter: of two captured server spans that received the SDK span
// s's parent context (the same message seen at several points, or passed
// on by proxies), the one of s's own service, not a proxy, seen by its
// process, nearest the server, latest.
func receivedBetter(s, a, b *span.Span) bool {
	score := func(c *span.Span) int {
		n := 0
		if c.Service != "" && c.Service == s.Service {
			n += 4
		}
		if !c.Flags.Has(span.FlagProxy) {
			n += 2
		}
		if c.TapSide.IsProcess() {
			n++
		}
		return n
	}
	if sa, sb := score(a), score(b); sa != sb {
		return sa > sb
	}
	if a.TapSide.Rank() != b.TapSide.Rank() {
		return a.TapSide.Rank() > b.TapSide.Rank()
	}
	return a.StartNs > b.StartNs
}

// sameWorkload: the captured span c is of the workload that sent the SDK
// span s (the pod when both know it, else the service), and not a proxy's.
func sameWorkload(s, c *span.Span) bool {
	if c.Flags.Has(span.FlagProxy) {
		return false
	}
	if s.Pod != "" && c.Pod != "" {
		return s.Pod == c.Pod && (s.Namespace == "" || c.Namespace == "" || s.Namespace == c.Namespace)
	}
	return s.Service != "" && s.Service == c.Service
}

// traceConflict: a call and a server request that carry different
// application trace ids belong to different traces, whatever their timing
// says: containment never joins them (a process that propagates trace
// context, an SDK's among them, continues the trace it received). Spans
// without a trace id have no conflict.
func traceConflict(a, b *span.Span) bool {
	return !a.TraceID.IsZero() && !b.TraceID.IsZero() && a.TraceID != b.TraceID
}
