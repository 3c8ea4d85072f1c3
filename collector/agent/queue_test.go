//go:build linux

package agent

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/collector/kube"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// TestSpanQueue: every span put reaches the writer once, in each producer's
// order, while the writer is slower than the producers and the queue holds
// at most max; batches not cut are whole store batches; close returns only
// after the last one is written.
func TestSpanQueue(t *testing.T) {
	const producers, each, limit, rows = 3, 2000, 64, 16
	var (
		mu      sync.Mutex
		got     []span.Span
		biggest int
	)
	q := newSpanQueue(limit, rows, time.Millisecond, func(batch []span.Span, cut bool) {
		time.Sleep(50 * time.Microsecond) // a slow store
		mu.Lock()
		got = append(got, batch...)
		biggest = max(biggest, len(batch))
		if !cut && len(batch)%rows != 0 {
			t.Errorf("a batch of %d spans not cut: not a multiple of %d", len(batch), rows)
		}
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s := span.Span{PID: uint32(p), SpanID: uint64(i)}
				q.put(&s)
				s.SpanID = 1 << 40 // the caller may reuse its span
				if i%500 == 0 {
					time.Sleep(3 * time.Millisecond) // spans left waiting past the interval
				}
			}
		}()
	}
	wg.Wait()
	q.close()
	if len(got) != producers*each {
		t.Fatalf("writer got %d spans, want %d", len(got), producers*each)
	}
	next := map[uint32]uint64{}
	for _, s := range got {
		if s.SpanID != next[s.PID] {
			t.Fatalf("producer %d: span %d written after %d", s.PID, s.SpanID, next[s.PID])
		}
		next[s.PID]++
	}
	if biggest > limit {
		t.Errorf("a batch of %d spans: more than the %d the queue may hold", biggest, limit)
	}
}

type queued struct {
	n   int
	cut bool
}

// TestSpanQueueWholeBatches: the writer gets whole store batches as they
// fill (which the store encodes without copying them), the rest only once
// the oldest of it waited the interval, cut, or at close, cut. When a cut
// batch was handed over is taken in the writer, and judged against a time
// taken before its oldest span was put: a test goroutine that runs late
// (a loaded machine) sees it late, never early.
func TestSpanQueueWholeBatches(t *testing.T) {
	const rows, wait = 8, 250 * time.Millisecond
	type handed struct {
		queued
		at time.Time
	}
	got := make(chan handed, 100)
	q := newSpanQueue(4*rows, rows, wait, func(batch []span.Span, cut bool) {
		for i := range batch {
			if batch[i].SpanID == 0 {
				t.Errorf("span %d of a batch of %d: cleared", i, len(batch))
			}
		}
		got <- handed{queued{len(batch), cut}, time.Now()}
	})
	put := func(n int) {
		for range n {
			q.put(&span.Span{SpanID: 1})
		}
	}
	expect := func(want queued, within time.Duration) time.Time {
		t.Helper()
		select {
		case g := <-got:
			if g.queued != want {
				t.Fatalf("writer got %+v, want %+v", g.queued, want)
			}
			return g.at
		case <-time.After(within):
			t.Fatalf("writer got nothing in %v, want %+v", within, want)
		}
		return time.Time{}
	}
	whole := func(n int) { // handed over as one or more whole batches
		t.Helper()
		for n > 0 {
			select {
			case g := <-got:
				if g.cut || g.n%rows != 0 || g.n > n {
					t.Fatalf("writer got %+v, want whole batches of %d up to %d spans", g.queued, rows, n)
				}
				n -= g.n
			case <-time.After(time.Second):
				t.Fatalf("writer got nothing in 1s, want whole batches of %d spans", n)
			}
		}
	}
	// notEarly: a cut batch whose oldest span was put after from is
	// handed over at least the interval after from.
	notEarly := func(n int, from, at time.Time) {
		t.Helper()
		if d := at.Sub(from); d < wait {
			t.Errorf("%d spans handed over %v after they were put, before the interval %v", n, d, wait)
		}
	}
	start := time.Now()
	put(rows - 1)
	notEarly(rows-1, start, expect(queued{rows - 1, true}, 2*time.Second))
	put(2 * rows)
	rest := time.Now() // the 3 spans beyond the whole batches wait from here at the earliest
	put(3)
	whole(2 * rows)
	notEarly(3, rest, expect(queued{3, true}, 2*time.Second))
	put(rows + 2)
	whole(rows)
	q.close()
	expect(queued{2, true}, time.Second) // written before close returned
}

// TestSinkCutsWhenTold: spans handed over cut are a stored batch once
// written; the others wait for a whole batch (or the store's interval).
func TestSinkCutsWhenTold(t *testing.T) {
	s := storeSink(t, 0)
	w := s.w
	batch := func(n int) []span.Span {
		b := make([]span.Span, n)
		for i := range b {
			b[i] = span.Span{SpanID: uint64(i + 1), StartNs: int64(i + 1), EndNs: int64(i + 2)}
		}
		return b
	}
	s.write(batch(3), false)
	if n := w.Stats().Spans; n != 0 {
		t.Fatalf("%d spans stored of 3 not cut, want 0 (pending)", n)
	}
	s.write(batch(2), true)
	if n := w.Stats().Spans; n != 5 {
		t.Fatalf("%d spans stored after a cut, want 5", n)
	}
}

// TestQueueStoreBatchesAligned: through the queue, the sink and the store,
// spans that waited out the interval are a batch of their own at once, so
// the whole batches after them are written as they come (encoded where the
// queue holds them) instead of each filling the store's pending spans and
// leaving the rest pending.
func TestQueueStoreBatchesAligned(t *testing.T) {
	const rows, wait = 8, 50 * time.Millisecond
	s := storeSink(t, rows)
	w := s.w
	q := newSpanQueue(4*rows, rows, wait, s.write)
	defer q.close()
	id := uint64(0)
	put := func(n int) {
		for range n {
			id++
			q.put(&span.Span{SpanID: id, StartNs: int64(id), EndNs: int64(id + 1)})
		}
	}
	stored := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for w.Stats().Spans != want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := w.Stats().Spans; n != want {
			t.Fatalf("%d spans stored, want %d", n, want)
		}
	}
	put(3)
	stored(3) // after the wait, cut
	put(2 * rows)
	stored(3 + 2*rows) // nothing left pending in the store
	put(rows + 1)
	stored(3 + 3*rows)
}

// storeSink is a span sink writing to a store writer of its own (batches of
// rows spans; 0: the default) without timers, closed when the test ends.
func storeSink(tb testing.TB, rows int) *spanSink {
	w, err := store.OpenWriter(store.WriterOptions{Dir: tb.TempDir(), Node: "n1", NoBackground: true, BatchRows: rows})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	log := slog.New(slog.DiscardHandler)
	return &spanSink{w: w, wl: &workloads{cfg: &Config{}, idx: kube.NewIndex(), warner: &kube.Warner{Log: log}},
		reused: newRepeatCounter(RepeatedKeysConfig{}, log), log: log}
}
