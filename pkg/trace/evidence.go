package trace

import "github.com/zerotrace/zerotrace/pkg/span"

// Evidence names what joined a span to its parent. The trace frame shows it
// as the span tag "zerotrace.link", so a trace explains itself.
type Evidence string

const (
	// EvidenceTCP: the same message (equal TCP sequence numbers) seen at
	// two observation points.
	EvidenceTCP Evidence = "tcp"
	// EvidenceXRequestID: a proxy passed on the request id it received or
	// generated.
	EvidenceXRequestID Evidence = "x-request-id"
	// EvidenceTraceID: the application propagated a trace context.
	EvidenceTraceID Evidence = "trace-id"
	// EvidenceSyscall: the call was made by the thread holding the server
	// request, and only that one (docs/assembly.md "Syscall context").
	EvidenceSyscall Evidence = "syscall"
	// EvidenceHandoff: the call was made by a worker the request was handed
	// to (a confirmed handoff, or the request it handed the result to
	// claimed it; docs/assembly.md "Handoff").
	EvidenceHandoff Evidence = "handoff"
	// EvidenceTask: the call was made by an asyncio task that worked for the
	// request: the task that answered it, or one created by such a task
	// (docs/assembly.md "Tasks").
	EvidenceTask Evidence = "task"
	// EvidenceCallback: the call was written by a Node.js event loop in the
	// callback that ran its request's handler (docs/assembly.md "Node.js").
	EvidenceCallback Evidence = "callback"
	// EvidenceContainment: the call lies inside the one server request its
	// process had in flight (docs/assembly.md "Containment").
	EvidenceContainment Evidence = "containment"
	// EvidenceProxy: a proxy's call forwards the one server request with its
	// method and resource the proxy had in flight (docs/assembly.md
	// "Containment").
	EvidenceProxy Evidence = "proxy"
)

// syscallEvidence names how a context id shared by a call and its server
// request was carried over, when not by the thread holding the request: a
// handoff to a worker, an asyncio task or a Node.js callback ("": the
// thread itself).
func syscallEvidence(a, b *span.Span) Evidence {
	switch {
	case a.Flags.Has(span.FlagTask) || b.Flags.Has(span.FlagTask):
		return EvidenceTask
	case a.Flags.Has(span.FlagCallback) || b.Flags.Has(span.FlagCallback):
		return EvidenceCallback
	case a.Flags.Has(span.FlagHandoff) || b.Flags.Has(span.FlagHandoff):
		return EvidenceHandoff
	}
	return ""
}
