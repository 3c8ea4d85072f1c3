package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// Source is where the exporter reads spans: a store reader, and for a
// bucket a Prepare that makes the shards from fromNs on local first.
type Source struct {
	Reader  *store.Reader
	Prepare func(ctx context.Context, fromNs int64) (release func(), err error)
}

// Stats count what the exporter did; safe to read while it runs.
type Stats struct {
	SpansExported  atomic.Int64 // acknowledged by the backend
	TracesExported atomic.Int64 // trace parts acknowledged (a late part counts again)
	SpansDropped   atomic.Int64 // never exported: out of the window unsent, refused by the backend
	Retries        atomic.Int64 // sends tried again
	SendErrors     atomic.Int64
	QueueSpans     atomic.Int64 // waiting to be sent or being sent
	WindowSpans    atomic.Int64 // spans kept in memory
	QueueFull      atomic.Int64 // rounds that stopped assembling because the queue was full
	LastExportNs   atomic.Int64 // start of the newest exported span
}

// item is the part of one trace sent in one go.
type item struct {
	traceID [16]byte
	t       *trace.Trace
	which   []int    // indexes of t's spans to send
	ens     []*entry // their window entries, as which
}

// ack is the sender's verdict on the items of one request.
type ack struct {
	items    []item
	rejected int64 // spans the backend refused (partial success)
	err      error // permanent: the items are dropped
}

// Exporter follows the shards and exports settled traces. Run it once.
type Exporter struct {
	cfg   Config
	log   *slog.Logger
	src   Source
	send  sender
	Stats Stats
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time

	win        *window
	done       map[uint64]done  // exported spans in the window, as the checkpoint has them
	doneOrder  *doneOrder       // done's spans by start
	shardsDone map[string]int64 // shard directory → when it was read
	cp         *checkpoint
	queue      chan item
	acks       chan ack
	round      uint64
	low        int64         // spans starting before it are out of the window
	scratch    trace.Scratch // the maps each assembly reuses (assembly runs in the loop only)
}

// New opens the checkpoint and the connection (lazily dialled) to the
// endpoint.
func New(cfg Config, src Source, log *slog.Logger) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := newSender(&cfg)
	if err != nil {
		return nil, err
	}
	e := &Exporter{cfg: cfg, log: log, src: src, send: s, Now: time.Now, win: newWindow(), done: map[uint64]done{},
		shardsDone: map[string]int64{}, queue: make(chan item, cfg.QueueSpans), acks: make(chan ack, cfg.QueueSpans)}
	e.cp, err = openCheckpoint(cfg.Checkpoint, e.done)
	if err != nil {
		s.close()
		return nil, err
	}
	e.doneOrder = newDoneOrder(e.done)
	return e, nil
}

// Run exports until ctx ends.
func (e *Exporter) Run(ctx context.Context) error {
	defer e.cp.close()
	defer e.send.close()
	now := e.Now()
	e.low = now.Add(-e.cfg.Since).UnixNano()
	for _, d := range e.done {
		e.low = min(e.low, d.startNs) // resume where the checkpoint ends
	}
	e.low = max(e.low, now.Add(-e.cfg.Window).UnixNano())
	e.log.Info("export", "endpoint", e.cfg.Endpoint, "protocol", e.cfg.Protocol, "checkpoint", e.cfg.Checkpoint,
		"exported_in_window", len(e.done), "quiet", e.cfg.Quiet, "window", e.cfg.Window)
	sctx, stopSender := context.WithCancel(ctx)
	senderDone := make(chan struct{})
	go func() { defer close(senderDone); e.sendLoop(sctx) }()
	defer func() { stopSender(); <-senderDone }()
	tick := time.NewTicker(e.cfg.Poll)
	defer tick.Stop()
	for {
		if err := e.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Warn("export: reading shards", "err", err)
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case a := <-e.acks:
				if err := e.acked(a); err != nil {
					return err
				}
			case <-tick.C:
				waiting = false
			}
		}
	}
}

// poll reads new shards, assembles what settled, evicts what left the
// window.
func (e *Exporter) poll(ctx context.Context) error {
	now := e.Now()
	nowNs := now.UnixNano()
	e.round++
	var rerr error
	if e.src.Prepare != nil {
		release, err := e.src.Prepare(ctx, e.low)
		defer release()
		rerr = err
	}
	err := e.src.Reader.Follow(ctx, e.low, func(dir string) bool { _, ok := e.shardsDone[dir]; return ok }, func(r *span.Record, i int) {
		if r.StartNs(i) < e.low {
			return
		}
		if en, fresh := e.win.add(r, i, nowNs); fresh {
			if d, ok := e.done[en.spanID]; ok {
				en.state, en.traceID = exported, d.traceID
			}
		}
	}, func(dir string) { e.shardsDone[dir] = nowNs })
	e.assemble(ctx, now)
	e.evict(now)
	e.Stats.WindowSpans.Store(int64(e.win.len()))
	return errors.Join(rerr, err)
}

// assemble queues the settled traces of pending spans, oldest first.
func (e *Exporter) assemble(ctx context.Context, now time.Time) {
	settled := now.Add(-e.cfg.Quiet).UnixNano()
	// Refs: the trace points at the window's spans, which never change
	// (an evicted entry stays alive while a queued trace points at it).
	cfg := trace.Config{Now: func() time.Time { return now }, Refs: true, Scratch: &e.scratch}
	for _, seed := range e.win.pendingInOrder() { // oldest first
		if seed.state != pending || seed.seen > settled || seed.round == e.round {
			continue
		}
		t, err := trace.AssembleFromRefs(ctx, e.win, cfg, []*span.Span{seed.span(&e.win.slab)})
		if err != nil {
			return // ctx ended
		}
		ens := make([]*entry, t.Len())
		ok := true
		var which []int
		for i := range ens {
			en := e.win.byID[t.Span(i).SpanID]
			ens[i] = en
			en.round = e.round
			if en.seen > settled {
				ok = false // a span joined it lately: not settled
			}
			if en.state == pending {
				which = append(which, i)
			}
		}
		if !ok || len(which) == 0 {
			continue
		}
		if e.Stats.QueueSpans.Load()+int64(len(which)) > int64(e.cfg.QueueSpans) {
			e.Stats.QueueFull.Add(1)
			return // the queue is full: the rest waits for the next round
		}
		tid, err := e.traceIDOf(t, ens)
		if err != nil {
			e.log.Warn("export: trace without a usable id", "err", err)
			continue
		}
		sent := make([]*entry, len(which))
		for k, i := range which {
			ens[i].state, ens[i].traceID = queued, tid
			sent[k] = ens[i]
		}
		e.Stats.QueueSpans.Add(int64(len(which)))
		e.queue <- item{traceID: tid, t: t, which: which, ens: sent}
	}
}

// traceIDOf keeps the trace id a part of the trace was sent under (the
// most used if a late span joined two), else the assembled trace's id.
func (e *Exporter) traceIDOf(t *trace.Trace, ens []*entry) ([16]byte, error) {
	count := map[[16]byte]int{}
	var best [16]byte
	for _, en := range ens {
		if en.state == pending {
			continue
		}
		count[en.traceID]++
		if c := count[en.traceID]; c > count[best] || (c == count[best] && string(en.traceID[:]) < string(best[:])) {
			best = en.traceID
		}
	}
	if len(count) > 0 {
		return best, nil
	}
	id, err := otlp.TraceIDOf(t.ID)
	return [16]byte(id), err
}

// evict drops the spans that left the window; unsent ones are counted.
func (e *Exporter) evict(now time.Time) {
	e.low = max(e.low, now.Add(-e.cfg.Window).UnixNano())
	dropped := 0
	e.win.evict(e.low, func(en *entry) {
		if en.state == pending {
			dropped++
		}
	})
	if e.win.len() > e.cfg.MaxSpans {
		// Over the memory bound: the oldest go first.
		starts := make([]int64, 0, e.win.len())
		for _, en := range e.win.byID {
			starts = append(starts, en.startNs)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
		e.low = starts[e.win.len()-e.cfg.MaxSpans]
		e.win.evict(e.low, func(en *entry) {
			if en.state == pending {
				dropped++
			}
		})
	}
	if dropped > 0 {
		e.Stats.SpansDropped.Add(int64(dropped))
		e.log.Warn("export: spans left the window unsent (backend unreachable or the queue full for longer than the window)",
			"spans", dropped, "window", e.cfg.Window)
	}
	e.doneOrder.evict(e.done, e.low)
	// A shard read before the window began holds no span that Follow
	// would read again: forget it.
	for dir, at := range e.shardsDone {
		if at < e.low {
			delete(e.shardsDone, dir)
		}
	}
	if err := e.cp.compact(e.done); err != nil {
		e.log.Warn("export", "err", err)
	}
}

// acked records an acknowledged request in the checkpoint, then marks its
// spans exported.
func (e *Exporter) acked(a ack) error {
	n := 0
	for _, it := range a.items {
		n += len(it.which)
	}
	e.Stats.QueueSpans.Add(-int64(n))
	if a.err != nil {
		e.Stats.SpansDropped.Add(int64(n))
		e.log.Error("export: the backend refused a batch; its spans are dropped", "spans", n, "err", a.err)
	}
	recs := make([]record, 0, len(a.items))
	for _, it := range a.items {
		r := record{traceID: it.traceID, ids: make([]uint64, 0, len(it.which)), starts: make([]int64, 0, len(it.which))}
		for _, i := range it.which {
			s := it.t.Span(i)
			r.ids = append(r.ids, s.SpanID)
			r.starts = append(r.starts, s.StartNs)
		}
		recs = append(recs, r)
	}
	// Refused spans are recorded too: sending them again would fail again.
	if err := e.cp.append(recs); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for j, r := range recs {
		for k, id := range r.ids {
			e.done[id] = done{traceID: r.traceID, startNs: r.starts[k]}
			e.doneOrder.add(id, r.starts[k])
			// Exported: the decoded span goes (the item's trace still
			// points at it; a late span's assembly decodes it again). The
			// item's entry is the window's entry of id while id is in the
			// window (a span left behind is never read again); once
			// evicted, nothing reads it.
			en := a.items[j].ens[k]
			en.state, en.traceID, en.ref = exported, r.traceID, nil
			if a.err == nil {
				e.Stats.LastExportNs.Store(max(e.Stats.LastExportNs.Load(), r.starts[k]))
			}
		}
	}
	if a.err == nil {
		e.log.Debug("exported", "spans", n-int(a.rejected), "traces", len(a.items))
		e.Stats.SpansExported.Add(int64(n) - a.rejected)
		e.Stats.TracesExported.Add(int64(len(a.items)))
		e.Stats.SpansDropped.Add(a.rejected)
	}
	return nil
}

// sendLoop sends batches of queued items, retrying with backoff until the
// backend takes them or refuses them for good.
func (e *Exporter) sendLoop(ctx context.Context) {
	m := otlp.NewMapper()
	for {
		var batch []item
		select {
		case <-ctx.Done():
			return
		case it := <-e.queue:
			batch = append(batch, it)
		}
		n := len(batch[0].which)
	more:
		for n < e.cfg.BatchSpans {
			select {
			case it := <-e.queue:
				batch = append(batch, it)
				n += len(it.which)
			default:
				break more
			}
		}
		m.Reset()
		for _, it := range batch {
			m.AppendTrace(pcommon.TraceID(it.traceID), it.t, it.which)
		}
		a := ack{items: batch}
		backoff := 250 * time.Millisecond
		for {
			rejected, err := e.send.send(ctx, m.Traces())
			if err == nil || rejected > 0 {
				a.rejected = rejected
				if err != nil {
					e.log.Warn("export: partial success", "err", err)
				}
				break
			}
			e.Stats.SendErrors.Add(1)
			if permanent(err) {
				a.err = err
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := backoff
			var se *sendError
			if errors.As(err, &se) && se.retryAfter > wait {
				wait = se.retryAfter
			}
			e.log.Warn("export: send failed, retrying", "err", err, "in", wait, "spans", n)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			e.Stats.Retries.Add(1)
			backoff = min(2*backoff, e.cfg.MaxBackoff)
		}
		select {
		case e.acks <- a:
		case <-ctx.Done():
			return
		}
	}
}
