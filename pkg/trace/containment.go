package trace

import (
	"context"
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

type procKey struct {
	node string
	pid  uint32
}

// contained finds containment pairs (client index → server index in all)
// among spans of the set and of the processes looked up around them.
func contained(cfg *Config, all []*span.Span, now time.Time) map[int]int {
	byProc := map[procKey][]int{}
	for i, s := range all {
		if s.SignalSource == span.SourceEBPF && s.PID != 0 {
			k := procKey{s.Node, s.PID}
			byProc[k] = append(byProc[k], i)
		}
	}
	pairs := map[int]int{}
	settled := now.Add(-cfg.Settle).UnixNano()
	for _, idx := range byProc {
		for _, ci := range idx {
			c := all[ci]
			if c.TapSide != span.TapClientProcess || c.EndNs <= c.StartNs || c.EndNs > settled {
				continue
			}
			server, n := -1, 0
			for _, si := range idx {
				s := all[si]
				if s.TapSide != span.TapServerProcess || s.StartNs >= c.EndNs || s.EndNs <= c.StartNs {
					continue
				}
				n++
				server = si
			}
			if n != 1 {
				continue
			}
			s := all[server]
			if s.StartNs > c.StartNs || c.EndNs > s.EndNs || xridConflict(c, s) {
				continue
			}
			if id := c.SyscallTraceIDReq; id != 0 && id != s.SyscallTraceIDReq && id != s.SyscallTraceIDResp {
				continue
			}
			pairs[ci] = server
		}
	}
	return pairs
}

// containmentRound looks up the processes of the set's eBPF spans and adds
// the calls and server requests that containment relates to the set. It
// returns the spans added.
func containmentRound(ctx context.Context, src Source, cfg *Config, set map[uint64]*span.Span, order []uint64,
	pairs map[uint64]uint64, queried map[span.Key]bool) ([]span.Span, error) {
	var keys []span.Key
	var lo, hi int64
	for i, id := range order {
		s := set[id]
		if i == 0 || s.StartNs < lo {
			lo = s.StartNs
		}
		hi = max(hi, s.EndNs)
		if s.SignalSource != span.SourceEBPF || s.PID == 0 {
			continue
		}
		if k := span.ProcessKey(s.Node, s.PID); !queried[k] {
			queried[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	found, err := src.Lookup(ctx, lo-int64(cfg.Settle), hi, keys)
	if err != nil {
		return nil, err
	}
	all := make([]*span.Span, 0, len(order)+len(found))
	for _, id := range order {
		all = append(all, set[id])
	}
	for i := range found {
		if _, ok := set[found[i].SpanID]; !ok {
			all = append(all, &found[i])
		}
	}
	var added []span.Span
	for ci, si := range contained(cfg, all, cfg.Now()) {
		c, s := all[ci], all[si]
		_, cin := set[c.SpanID]
		_, sin := set[s.SpanID]
		switch {
		case cin && !sin:
			added = append(added, *s)
		case sin && !cin:
			added = append(added, *c)
		case !cin && !sin:
			continue
		}
		pairs[c.SpanID] = s.SpanID
	}
	return added, nil
}
