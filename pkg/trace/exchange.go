package trace

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/zerotrace/zerotrace/pkg/repeat"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Exchange keys (docs/assembly.md "Reused ids"). An X-Request-ID or a trace
// id is a header anyone can send: a batch job or a retry loop reuses one, a
// gateway may set a constant, a client may send a fixed traceparent. So an
// id links a proxy's inbound message to an outbound message only where it
// identifies one exchange:
//   - the outbound message is a call of the same process (or, its call span
//     lost, the request the process behind it received over loopback in its
//     network namespace), and carries the id as its request's;
//   - it lies inside the inbound message's lifetime;
//   - no other inbound message of that process with the id overlaps it
//     (for a proxy: no other with the method and resource it forwards — an
//     application that forwards the id calls out through the same sidecar,
//     whose inbound legs of one request then nest).
//
// Spans that carry an id at other points of the same message are the tcp
// relation's. A trace id also makes a trace (OpenTelemetry): spans sharing it
// join one trace, unless it is repeated — on more exchanges at one point
// than Config.Repeat allows — where it joins nothing and the trace says so.
// Whether an id is unique is judged on every span the assembly looked up
// under it, not only on those that joined the trace.

// keyIndex holds the spans carrying an X-Request-ID or a trace id that one
// assembly looked up.
type keyIndex struct {
	bound    repeat.Bound
	settle   int64
	seen     map[uint64]bool
	inbound  map[inboundKey][]*span.Span  // s-p spans by key and process
	calls    map[inboundKey][]*span.Span  // c-p spans by key and process
	carriers map[span.Key][]*span.Span    // exchanges (repeat.PointOf) by key
	looked   map[span.Key][2]int64        // the time range each key was looked up over
	unread   map[span.Key]map[string]bool // nodes a lookup of the key could not read
	memo     map[span.Key]repeatMemo
}

type inboundKey struct {
	key  span.Key
	node string
	pid  uint32
}

type repeatMemo struct {
	carriers int // len(carriers[key]) when counted
	r        *repeat.Repeated
}

// add indexes spans (each once). It keeps the pointers: the spans must
// not change while the assembly runs.
func (ix *keyIndex) add(spans []*span.Span) {
	var keys []span.Key
	for _, s := range spans {
		if ix.seen[s.SpanID] {
			continue
		}
		keys = repeat.Keys(s, keys[:0])
		if len(keys) == 0 {
			continue
		}
		ix.seen[s.SpanID] = true
		_, exchange := repeat.PointOf(s)
		for _, k := range keys {
			if exchange {
				ix.carriers[k] = append(ix.carriers[k], s)
			}
			if s.TapSide == span.TapServerProcess && s.PID != 0 {
				ik := inboundKey{k, s.Node, s.PID}
				ix.inbound[ik] = append(ix.inbound[ik], s)
			}
			if s.TapSide == span.TapClientProcess && s.SignalSource == span.SourceEBPF && s.PID != 0 {
				ik := inboundKey{k, s.Node, s.PID}
				ix.calls[ik] = append(ix.calls[ik], s)
			}
		}
	}
}

// lookedUp records that keys were looked up over [from, to], except on
// the nodes in unread (data that could not be read: a damaged shard).
func (ix *keyIndex) lookedUp(keys []span.Key, from, to int64, unread []string) {
	for _, k := range keys {
		if k.Kind != span.KeyXRequestID && k.Kind != span.KeyTraceID {
			continue
		}
		for _, n := range unread {
			if ix.unread[k] == nil {
				ix.unread[k] = map[string]bool{}
			}
			ix.unread[k][n] = true
		}
		if r, ok := ix.looked[k]; ok {
			from, to = min(from, r[0]), max(to, r[1])
		}
		ix.looked[k] = [2]int64{from, to}
	}
}

// requestKey is the key of kind (KeyXRequestID or KeyTraceID) that s
// carries as its request's.
func requestKey(kind span.KeyKind, s *span.Span) (span.Key, bool) {
	switch {
	case kind == span.KeyXRequestID && s.XRequestIDReq != "":
		return span.Key{Kind: kind, S: s.XRequestIDReq}, true
	case kind == span.KeyTraceID && !s.TraceID.IsZero():
		return span.Key{Kind: kind, T: s.TraceID}, true
	}
	return span.Key{}, false
}

func carries(s *span.Span, k span.Key) bool {
	if k.Kind == span.KeyTraceID {
		return s.TraceID == k.T
	}
	return s.XRequestIDReq == k.S || s.XRequestIDResp == k.S
}

// behind reports whether out is a request that the process behind proxy
// span in's process received over loopback in its network namespace: the
// proxy's outbound message seen where it arrived (its own call span lost).
func behind(in, out *span.Span) bool {
	return out.TapSide == span.TapServerProcess && out.SignalSource == span.SourceEBPF && out.Node == in.Node &&
		out.NetNS != 0 && out.NetNS == in.NetNS && out.PID != 0 && out.PID != in.PID && out.ClientIP.Unmap().IsLoopback()
}

// callSeen reports whether the proxy's call that out arrived from was
// captured after all: a call of in's process carrying k over loopback to
// out's port while out was in flight. Then out is that call's, by the tcp
// relation or not at all: hung under in by the id it would skip the call
// (a misplaced parent when the relation refused them, e.g. a sequence
// number the capture got wrong).
func (ix *keyIndex) callSeen(k span.Key, in, out *span.Span) bool {
	for _, c := range ix.calls[inboundKey{k, in.Node, in.PID}] {
		if c.ServerPort == out.ServerPort && c.ServerIP.Unmap().IsLoopback() && c.StartNs < out.EndNs && c.EndNs > out.StartNs {
			return true
		}
	}
	return false
}

// link reports whether a and b are a process's inbound message and an
// outbound message it sent for it, tied by a key of kind that identifies
// one exchange (the rule above), in either order.
func (ix *keyIndex) link(kind span.KeyKind, a, b *span.Span) bool {
	return ix.outbound(kind, a, b) || ix.outbound(kind, b, a)
}

func (ix *keyIndex) outbound(kind span.KeyKind, in, out *span.Span) bool {
	if in.TapSide != span.TapServerProcess || in.SignalSource != span.SourceEBPF || in.PID == 0 {
		return false
	}
	k, ok := requestKey(kind, out)
	if !ok || !carries(in, k) {
		return false
	}
	call := out.TapSide == span.TapClientProcess && out.Node == in.Node && out.PID == in.PID
	if !call && (!behind(in, out) || ix.callSeen(k, in, out)) {
		return false
	}
	if out.StartNs < in.StartNs || out.EndNs > in.EndNs {
		return false
	}
	return ix.only(k, in, out)
}

// only reports whether in is the one inbound message of its process with
// key k in flight while out was (for a proxy: the one out forwards). Every
// such message must have been looked up: k over out's time and Settle
// before it (the longest a request lasts).
func (ix *keyIndex) only(k span.Key, in, out *span.Span) bool {
	r, ok := ix.looked[k]
	if !ok || r[0] > out.StartNs-ix.settle || r[1] < out.EndNs || ix.unread[k][in.Node] {
		return false
	}
	n, nf, self, selfFwd := 0, 0, false, false
	for _, s := range ix.inbound[inboundKey{k, in.Node, in.PID}] {
		if s.StartNs >= out.EndNs || s.EndNs <= out.StartNs {
			continue
		}
		n++
		fwd := sameRequest(out, s)
		if fwd {
			nf++
		}
		if s.SpanID == in.SpanID {
			self, selfFwd = true, fwd
		}
	}
	if !self {
		return false // in was not looked up under its own key
	}
	return n == 1 || (in.Flags.Has(span.FlagProxy) && nf == 1 && selfFwd)
}

// sameRequest: out carries the method and resource that s received (what a
// proxy forwards).
func sameRequest(out, s *span.Span) bool {
	return out.RequestResource != "" && out.RequestType == s.RequestType && out.RequestResource == s.RequestResource &&
		out.L7Protocol == s.L7Protocol
}

// keyed reports whether call c carries a key that ties it to an inbound
// message of its process by the rule above (it is found by key), or one
// that was not looked up (not judged here); a call whose keys identify no
// exchange is as bare as one without keys.
func (ix *keyIndex) keyed(c *span.Span) bool {
	for _, kind := range [2]span.KeyKind{span.KeyXRequestID, span.KeyTraceID} {
		k, ok := requestKey(kind, c)
		if !ok {
			continue
		}
		if _, looked := ix.looked[k]; !looked || ix.unread[k][c.Node] {
			return true
		}
		for _, s := range ix.inbound[inboundKey{k, c.Node, c.PID}] {
			if ix.outbound(kind, s, c) {
				return true
			}
		}
	}
	return false
}

// repeated returns how key k repeats beyond the bound, or nil.
func (ix *keyIndex) repeated(k span.Key) *repeat.Repeated {
	cs := ix.carriers[k]
	// Most counts at most one exchange a carrier: with no more carriers
	// than the bound allows, the key is not repeated (the common case).
	if len(cs) <= ix.bound.Exchanges {
		return nil
	}
	if m, ok := ix.memo[k]; ok && m.carriers == len(cs) {
		return m.r
	}
	var r *repeat.Repeated
	if n, at, svc := repeat.Most(cs, ix.bound.Window); n > ix.bound.Exchanges {
		r = &repeat.Repeated{Key: k, Point: at, Service: svc, Exchanges: n}
	}
	ix.memo[k] = repeatMemo{len(cs), r}
	return r
}

// sameTrace: the trace relation of the search. Equal application trace ids
// (one trace, as OpenTelemetry has it) unless the id is repeated — then
// only where it identifies one exchange (link) — or an app span id that is
// the other's parent span id.
func (ix *keyIndex) sameTrace(a, b *span.Span) bool {
	if a.TraceID.IsZero() || a.TraceID != b.TraceID {
		return appParent(a, b)
	}
	return ix.repeated(span.Key{Kind: span.KeyTraceID, T: a.TraceID}) == nil || ix.link(span.KeyTraceID, a, b)
}

// appParent: an application-propagated span id that is the other's parent
// — within one trace id when both carry one (a span id names a span of its
// own trace only).
func appParent(a, b *span.Span) bool {
	if traceConflict(a, b) {
		return false
	}
	return (a.AppSpanID != 0 && a.AppSpanID == b.ParentSpanID) || (b.AppSpanID != 0 && b.AppSpanID == a.ParentSpanID)
}

// notices are the trace's warnings for the repeated keys its spans carry,
// one per key.
func (ix *keyIndex) notices(spans []*span.Span) []string {
	var out []string
	done := map[span.Key]bool{}
	var keys []span.Key
	for _, s := range spans {
		keys = repeat.Keys(s, keys[:0])
		for _, k := range keys {
			if done[k] {
				continue
			}
			done[k] = true
			r := ix.repeated(k)
			if r == nil {
				continue
			}
			where := r.Point.String()
			if r.Service != "" {
				where = r.Service + " (" + where + ")"
			}
			what, effect := fmt.Sprintf("X-Request-ID %q", k.S), "it links spans only where it identifies one exchange"
			if k.Kind == span.KeyTraceID {
				what, effect = "trace id "+k.T.String(), "it joins no spans into one trace"
			}
			out = append(out, fmt.Sprintf("reused %s: %d exchanges at %s within %s (more than %d); %s",
				what, r.Exchanges, where, fmtWindow(ix.bound.Window), ix.bound.Exchanges, effect))
		}
	}
	sort.Strings(out)
	return out
}

func fmtWindow(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}

// unreadNodes returns the nodes a failed lookup could not read, when every
// error it joins names its node (a damaged shard or node manifest): the
// lookup is then complete for every other node. ok is false when some
// error names none.
func unreadNodes(err error) (nodes []string, ok bool) {
	var walk func(error) bool
	walk = func(e error) bool {
		if n, is := e.(interface{ UnreadNode() string }); is {
			nodes = append(nodes, n.UnreadNode())
			return true
		}
		if j, is := e.(interface{ Unwrap() []error }); is {
			for _, e := range j.Unwrap() {
				if !walk(e) {
					return false
				}
			}
			return true
		}
		if u := errors.Unwrap(e); u != nil {
			return walk(u)
		}
		return false
	}
	return nodes, walk(err)
}
