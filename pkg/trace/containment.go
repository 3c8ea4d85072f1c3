package trace

import (
	"context"
	"sort"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// Containment: a call a process makes while it has exactly one server
// request in flight belongs to that request. It is the evidence for services
// that hand calls to other threads (pools, executors, goroutines), where no
// thread holds the request. It refuses:
//   - a call that overlaps two or more server requests of its process
//     (concurrency: which one caused it is unknown);
//   - a call not inside the server request's time range;
//   - a call that carries a context id (it was made by a thread holding a
//     request) other than the server request's, or a conflicting request id;
//   - a call that ended less than Settle ago: a server request still in
//     flight is not stored yet, so "exactly one" cannot be known.

// containedIn is the server request (span id) a call was found inside, and
// the evidence.
type containedIn struct {
	server uint64
	ev     Evidence
}

type procKey struct {
	node string
	pid  uint32
}

// contained finds containment pairs (client index → server index in all)
// among spans of the set and of the processes looked up around them.
func contained(cfg *Config, all []*span.Span, now time.Time, judged func(c *span.Span) bool) map[int]pair {
	byProc := map[procKey][]int{}
	for i, s := range all {
		if s.SignalSource == span.SourceEBPF && s.PID != 0 {
			k := procKey{s.Node, s.PID}
			byProc[k] = append(byProc[k], i)
		}
	}
	pairs := map[int]pair{}
	settled := now.Add(-cfg.Settle).UnixNano()
	for _, idx := range byProc {
		for _, ci := range idx {
			c := all[ci]
			if c.TapSide != span.TapClientProcess || c.EndNs <= c.StartNs || c.EndNs > settled || orphan(c) || !judged(c) {
				continue
			}
			// In flight during the call: every server request, and those a
			// proxy's call forwards (same method and resource).
			server, n, fwd, nf, leg, nl := -1, 0, -1, 0, -1, 0
			for _, si := range idx {
				s := all[si]
				if s.TapSide != span.TapServerProcess || s.StartNs >= c.EndNs || s.EndNs <= c.StartNs {
					continue
				}
				n++
				server = si
				if forwards(c, s) {
					nf++
					fwd = si
				}
				if otherLeg(c, s) { // l4flight.go
					nl++
					leg = si
				}
			}
			ev := EvidenceContainment
			if n != 1 {
				switch {
				case nf == 1:
					server, ev = fwd, EvidenceProxy
				case nf == 0 && nl == 1:
					server, ev = leg, EvidenceProxy
				default:
					continue
				}
			}
			s := all[server]
			if s.StartNs > c.StartNs || c.EndNs > s.EndNs || xridConflict(c, s) || traceConflict(c, s) {
				continue
			}
			if id := c.SyscallTraceIDReq; id != 0 && id != s.SyscallTraceIDReq && id != s.SyscallTraceIDResp {
				continue
			}
			pairs[ci] = pair{server, ev}
		}
	}
	return pairs
}

// pair is a containment link: the server request's index and the evidence.
type pair struct {
	server int
	ev     Evidence
}

// forwards reports whether call c of a proxy process passes on server
// request s: a proxy forwards the method and resource it received. Only
// for processes the collector marks as proxies (span.FlagProxy): an
// application may call a downstream with the path it was called with for
// another request.
func forwards(c, s *span.Span) bool {
	return c.Flags.Has(span.FlagProxy) && s.Flags.Has(span.FlagProxy) && c.RequestResource != "" &&
		c.RequestType == s.RequestType && c.RequestResource == s.RequestResource && c.L7Protocol == s.L7Protocol
}

// anchored reports whether a server request already has a call, or a call
// already has a server request, in the set by thread or header evidence:
// its process need not be looked up (the lookup reads every span of the
// process around the set, the costliest lookup assembly makes).
func anchored(cfg *Config, s *span.Span, members []*span.Span) bool {
	if s.TapSide != span.TapServerProcess && s.TapSide != span.TapClientProcess {
		return true
	}
	for _, o := range members {
		if o.Node != s.Node || o.PID != s.PID || o.TapSide == s.TapSide {
			continue
		}
		if syscallRelated(s, o) || cfg.keys.link(span.KeyXRequestID, s, o) || cfg.keys.sameTrace(s, o) {
			return true
		}
	}
	return false
}

// bare reports whether a call carries no evidence but its time: no context
// id, and no request id or trace id that ties it to an inbound message of
// its process (a reused one does not, exchange.go).
func bare(cfg *Config, s *span.Span) bool {
	return s.SyscallTraceIDReq == 0 && s.SyscallTraceIDResp == 0 && !cfg.keys.keyed(s)
}

// insideServer reports whether call c lies inside a server request of its
// process in the set.
func insideServer(c *span.Span, members []*span.Span) bool {
	for _, s := range members {
		if s.TapSide == span.TapServerProcess && s.Node == c.Node && s.PID == c.PID && s.StartNs <= c.StartNs && c.EndNs <= s.EndNs {
			return true
		}
	}
	return false
}

// containmentRound finds the calls and server requests that containment
// relates to the set, directly or through each other, and records the
// links in pairs. Two lookups: the calls a process made during its server
// requests of the set, then, for calls without a thread or header anchor,
// the server requests in flight around them (the "exactly one" check).
// Looked-up spans are kept in pool across rounds; procs batches the lookups
// and knows what each covered.
func containmentRound(ctx context.Context, src Source, cfg *Config, members []*span.Span,
	pairs map[uint64]containedIn, procs *procLookups, pool map[uint64]*span.Span) ([]*span.Span, error) {
	// 1. Calls during the set's server requests.
	for _, s := range members {
		// Every server request: one of its calls may be anchored by a thread
		// context and another, handed to a pool, not. The window is the
		// request's own time, so the lookup stays small.
		if s.TapSide != span.TapServerProcess || s.SignalSource != span.SourceEBPF || s.PID == 0 {
			continue
		}
		procs.want(span.ProcessKey(s.Node, s.PID, false), s.StartNs, s.EndNs)
	}
	if err := procs.run(ctx, src, pool); err != nil {
		return nil, err
	}
	// 2. Server requests in flight around the unanchored calls of the set
	// and of step 1.
	calls := make([]*span.Span, 0, len(members)+len(pool))
	in := map[uint64]bool{}
	for _, s := range members {
		calls = append(calls, s)
		in[s.SpanID] = true
	}
	for id := range pool {
		if !in[id] {
			calls = append(calls, pool[id])
		}
	}
	for _, s := range calls {
		if s.TapSide != span.TapClientProcess || s.SignalSource != span.SourceEBPF || s.PID == 0 {
			continue
		}
		if in[s.SpanID] {
			if anchored(cfg, s, members) {
				continue
			}
		} else if !bare(cfg, s) || !insideServer(s, members) {
			// A call of step 1 that carries evidence of its own is found by
			// key; one outside the set's requests cannot be contained in them.
			continue
		}
		procs.want(span.ProcessKey(s.Node, s.PID, true), s.StartNs-int64(cfg.Settle), s.EndNs)
	}
	if err := procs.run(ctx, src, pool); err != nil {
		return nil, err
	}
	all := make([]*span.Span, 0, len(members)+len(pool))
	all = append(all, members...)
	for id := range pool {
		if !in[id] {
			all = append(all, pool[id])
		}
	}
	// Only calls whose process's server requests were looked up over the
	// call's time (and Settle before it) can be judged: a server request
	// missing from the pool would make "exactly one" wrong.
	found := contained(cfg, all, cfg.Now(), func(c *span.Span) bool {
		return procs.covers(span.ProcessKey(c.Node, c.PID, true), c.StartNs-int64(cfg.Settle), c.EndNs)
	})
	var added []*span.Span
	for grew := true; grew; {
		grew = false
		for ci, p := range found {
			c, s := all[ci], all[p.server]
			if in[c.SpanID] == in[s.SpanID] {
				continue
			}
			n := c
			if in[c.SpanID] {
				n = s
			}
			in[n.SpanID] = true
			added = append(added, n)
			grew = true
		}
	}
	for ci, p := range found {
		if c, s := all[ci], all[p.server]; in[c.SpanID] && in[s.SpanID] {
			pairs[c.SpanID] = containedIn{s.SpanID, p.ev}
		}
	}
	sort.Slice(added, func(i, j int) bool { return added[i].SpanID < added[j].SpanID })
	return added, nil
}
