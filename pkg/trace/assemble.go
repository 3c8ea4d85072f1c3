package trace

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/zerotrace/zerotrace/pkg/repeat"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Source is what assembly needs from a store (pkg/store's Reader has it).
type Source interface {
	// Lookup returns spans carrying any of keys, starting within [fromNs, toNs].
	Lookup(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]span.Span, error)
	// Get returns spans by id (fromNs = toNs = 0: anywhere).
	Get(ctx context.Context, fromNs, toNs int64, ids []uint64) ([]span.Span, error)
}

// Config tunes assembly. Zero values take the defaults.
type Config struct {
	Rounds        int           // search rounds (default 30)
	Window        time.Duration // lookup window around the set (default 1 min)
	SameNodeSkew  time.Duration // tcp relation: start difference on one node (default 50 ms)
	CrossNodeSkew time.Duration // tcp relation: start difference across nodes (default 60 ms: 50 + 10)
	// QueueDelay is how much later than the point before it (by tap side) a
	// point may see a message: socket buffers and a busy receiver delay the
	// read by more than any clock skew (default 1 s).
	QueueDelay time.Duration
	MaxSpans   int // size cap (default 2000)
	// Settle is how long after a call ended containment may judge it: every
	// server request in flight during the call has ended (or timed out) and
	// been stored by then. It is also the longest server request
	// containment looks back for (default 15 s: the collector's 10-s request
	// timeout plus batching and sealing).
	Settle time.Duration
	// Now is the clock Settle is measured against (default time.Now).
	Now func() time.Time
	// Repeat is when an X-Request-ID or trace id counts as reused: on more
	// exchanges at one point within a window (default 100 within 1 min).
	// The trace names such keys, and a reused trace id joins nothing
	// (exchange.go).
	Repeat repeat.Bound
	// Refs: the trace holds the source's own spans (Trace.Refs), not
	// copies (Trace.Spans stays nil); a TLS flight the trace names after
	// its message is a copy, the source's span unchanged. For a caller
	// whose source is a trace.RefSource that never changes a span it
	// handed out (pkg/export's window): a span is 688 bytes.
	Refs bool
	// Scratch, when set, is reused by each assembly under this Config
	// (which then must not run two at a time); nil: each makes its own.
	Scratch *Scratch

	keys *keyIndex // one assembly's looked-up keys (set by AssembleFrom)
}

func (c *Config) defaults() {
	if c.Rounds <= 0 {
		c.Rounds = 30
	}
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.SameNodeSkew <= 0 {
		c.SameNodeSkew = 50 * time.Millisecond
	}
	if c.CrossNodeSkew <= 0 {
		c.CrossNodeSkew = 60 * time.Millisecond
	}
	if c.QueueDelay <= 0 {
		c.QueueDelay = time.Second
	}
	if c.MaxSpans <= 0 {
		c.MaxSpans = 2000
	}
	if c.Settle <= 0 {
		c.Settle = 15 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Trace is an assembled trace: spans sorted by start time, each with the
// index of its parent (-1 for a root).
type Trace struct {
	ID       string
	Spans    []span.Span
	Refs     []*span.Span // instead of Spans when Config.Refs was set
	Parents  []int
	Evidence []Evidence // what joined each span to its parent ("" for a root)
	Warnings []string
}

// RefSource is a Source that also hands out the spans it holds by
// reference (pkg/export's window): assembly then copies none of them until
// it builds the trace. The spans must not change while an assembly runs.
type RefSource interface {
	// LookupRefs is Lookup without copies.
	LookupRefs(ctx context.Context, fromNs, toNs int64, keys []span.Key) ([]*span.Span, error)
}

// lookupRefs looks keys up by reference when src can, else by Lookup.
func lookupRefs(ctx context.Context, src Source, fromNs, toNs int64, keys []span.Key) ([]*span.Span, error) {
	if r, ok := src.(RefSource); ok {
		return r.LookupRefs(ctx, fromNs, toNs, keys)
	}
	found, err := src.Lookup(ctx, fromNs, toNs, keys)
	return refs(found), err
}

// refs points at each span of spans.
func refs(spans []span.Span) []*span.Span {
	if len(spans) == 0 {
		return nil
	}
	out := make([]*span.Span, len(spans))
	for i := range spans {
		out[i] = &spans[i]
	}
	return out
}

// Len is the number of spans of t.
func (t *Trace) Len() int {
	if t.Refs != nil {
		return len(t.Refs)
	}
	return len(t.Spans)
}

// Span is span i of t (of Refs or Spans).
func (t *Trace) Span(i int) *span.Span {
	if t.Refs != nil {
		return t.Refs[i]
	}
	return &t.Spans[i]
}

// ErrNotFound reports a seed that is not in the store.
var ErrNotFound = errors.New("trace not found")

// derivedMarker marks trace ids Zerotrace derives from a span id: the high 64
// bits of the 128-bit id, the span id in the low 64.
const derivedMarker = 0x7a74_0000_0000_0000 // "zt"

// DerivedID is the stable trace id of a trace without an application trace
// id: derived from its root span, so links keep working as spans arrive.
func DerivedID(spanID uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], derivedMarker)
	binary.BigEndian.PutUint64(b[8:], spanID)
	return hex.EncodeToString(b[:])
}

// ParseID reads a trace id: a derived id gives its span id; any other 16 or
// 32 hex digits are an application trace id. A plain decimal number is taken
// as a span id.
func ParseID(s string) (spanID uint64, tid span.TraceID, err error) {
	if t, ok := span.ParseTraceID(s); ok {
		if binary.BigEndian.Uint64(t[:8]) == derivedMarker {
			return binary.BigEndian.Uint64(t[8:]), span.TraceID{}, nil
		}
		return 0, t, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && n != 0 {
		return n, span.TraceID{}, nil
	}
	return 0, span.TraceID{}, fmt.Errorf("trace id %q: want 32 hex digits, or a span id", s)
}

// Assemble builds the trace of a span id or a trace id (see ParseID) found
// within [fromNs, toNs] (0, 0: anywhere).
func Assemble(ctx context.Context, src Source, cfg Config, id string, fromNs, toNs int64) (*Trace, error) {
	sid, tid, err := ParseID(id)
	if err != nil {
		return nil, err
	}
	var seeds []span.Span
	var serr error
	if sid != 0 {
		seeds, serr = src.Get(ctx, fromNs, toNs, []uint64{sid})
	} else {
		if toNs == 0 {
			toNs = int64(^uint64(0) >> 1)
		}
		seeds, serr = src.Lookup(ctx, fromNs, toNs, []span.Key{{Kind: span.KeyTraceID, T: tid}})
	}
	if len(seeds) == 0 {
		if serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	t, err := AssembleFrom(ctx, src, cfg, seeds)
	if t != nil && serr != nil {
		t.Warnings = append(t.Warnings, serr.Error())
	}
	return t, err
}

// AssembleFrom builds the trace around the given seed spans.
func AssembleFrom(ctx context.Context, src Source, cfg Config, seeds []span.Span) (*Trace, error) {
	return assembleRefs(ctx, src, cfg, refs(seeds))
}

// AssembleFromRefs is AssembleFrom with the seeds by reference (with
// Config.Refs, the trace then points at them).
func AssembleFromRefs(ctx context.Context, src Source, cfg Config, seeds []*span.Span) (*Trace, error) {
	return assembleRefs(ctx, src, cfg, seeds)
}

// assembleRefs works on the spans by reference: the seeds and what the
// source hands out are never copied (a span is 688 bytes) until the trace
// is built. Nothing here changes a span.
func assembleRefs(ctx context.Context, src Source, cfg Config, seeds []*span.Span) (*Trace, error) {
	cfg.defaults()
	sc := cfg.Scratch
	if sc == nil {
		sc = new(Scratch)
	}
	sc.reset(&cfg)
	cfg.keys = &sc.keys
	cfg.keys.add(seeds)
	set := sc.set
	members := make([]*span.Span, 0, 64) // set's spans in the order they were added
	add := func(s *span.Span) {
		if _, ok := set[s.SpanID]; !ok {
			set[s.SpanID] = s
			members = append(members, s)
		}
	}
	for _, s := range seeds {
		add(s)
	}
	var warnings []string
	queried := sc.queried
	contains := sc.contains // containment: call span id → server request
	procSpans := sc.procSpans
	procs := &sc.procs
	var pending []*span.Span // looked up, not (yet) related to the set
	truncated := false
	// The keys of the spans added since the last round (the others' were
	// queried), and the set's time range so far.
	var keys, kbuf []span.Key
	var lo, hi int64
	keyed := 0
	for round := 0; round < cfg.Rounds && !truncated; round++ {
		keys = keys[:0]
		for i, s := range members[keyed:] {
			if keyed+i == 0 || s.StartNs < lo {
				lo = s.StartNs
			}
			hi = max(hi, s.StartNs)
			kbuf = s.Keys(kbuf[:0])
			for _, k := range kbuf {
				if !queried[k] {
					queried[k] = true
					keys = append(keys, k)
				}
			}
		}
		keyed = len(members)
		var found []*span.Span
		if len(keys) > 0 {
			var err error
			found, err = lookupRefs(ctx, src, lo-int64(cfg.Window), hi+int64(cfg.Window), keys)
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				warnings = append(warnings, "some spans could not be read: "+err.Error())
				if nodes, ok := unreadNodes(err); ok {
					cfg.keys.lookedUp(keys, lo-int64(cfg.Window), hi+int64(cfg.Window), nodes)
				}
			} else {
				cfg.keys.lookedUp(keys, lo-int64(cfg.Window), hi+int64(cfg.Window), nil)
			}
			cfg.keys.add(found)
		}
		// Spans looked up before that related to nothing then may relate to
		// a span added since.
		added, capped, rest := relate(&cfg, append(found, pending...), set, &members, add)
		truncated, pending = capped, rest
		if added > 0 {
			continue
		}
		// Nothing more by key: the calls and server requests containment
		// relates to the set.
		more, err := containmentRound(ctx, src, &cfg, members, contains, procs, procSpans)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			warnings = append(warnings, "some spans could not be read: "+err.Error())
		}
		cfg.keys.add(more)
		for _, c := range more {
			if len(members) >= cfg.MaxSpans {
				truncated = true
				break
			}
			add(c)
		}
		if len(more) == 0 {
			break
		}
	}
	if truncated {
		warnings = append(warnings, fmt.Sprintf("trace truncated at %d spans (size cap)", cfg.MaxSpans))
	}
	spans := make([]*span.Span, len(members))
	copy(spans, members)
	t := link(&cfg, spans, contains)
	t.Warnings = append(t.Warnings, cfg.keys.notices(spans)...)
	t.Warnings = append(t.Warnings, warnings...)
	return t, nil
}

// relate adds to the set each candidate related to a span of it, checking
// the others again after a pass that added one (a proxy's inbound message,
// found by its id, relates to the call found by tcp after it), up to the
// size cap. It returns how many it added, whether the cap stopped it, and
// the candidates left, once each. members are the set's spans in the
// order they were added (add appends to it): each candidate is tried
// against them directly, not through a map lookup per pair.
func relate(cfg *Config, cands []*span.Span, set map[uint64]*span.Span, members *[]*span.Span, add func(*span.Span)) (int, bool, []*span.Span) {
	// Deterministic: candidates by start, then id.
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].StartNs != cands[j].StartNs {
			return cands[i].StartNs < cands[j].StartNs
		}
		return cands[i].SpanID < cands[j].SpanID
	})
	added := 0
	for grew := true; grew; {
		grew = false
		for _, c := range cands {
			if _, ok := set[c.SpanID]; ok {
				continue
			}
			for _, m := range *members {
				if related(cfg, m, c) != relNone {
					if len(*members) >= cfg.MaxSpans {
						return added, true, nil
					}
					add(c)
					added, grew = added+1, true
					break
				}
			}
		}
	}
	var rest []*span.Span
	for i, c := range cands {
		if _, ok := set[c.SpanID]; !ok && (i == 0 || c.SpanID != cands[i-1].SpanID) {
			rest = append(rest, c)
		}
	}
	return added, false, rest
}
