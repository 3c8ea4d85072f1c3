//go:build linux

package agent

import (
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerotrace/zerotrace/pkg/repeat"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// spanSink takes the batches of the span queue to the store: each span
// gets its workload and the default namespace, the repeated-key counter
// sees it, then the batch is written.
type spanSink struct {
	w         *store.Writer
	wl        *workloads
	reused    *repeat.Counter
	namespace string // stamped on spans that carry none
	log       *slog.Logger

	spans     atomic.Uint64 // handed to the store
	writeErrs atomic.Uint64 // refused by the store
}

// write is the span queue's writer; cut: the batch is cut now (spans that
// waited the batch interval without making a whole batch).
func (s *spanSink) write(batch []span.Span, cut bool) {
	for i := range batch {
		s.wl.enrich(&batch[i])
		if batch[i].Namespace == "" {
			batch[i].Namespace = s.namespace
		}
		s.reused.Add(&batch[i])
	}
	if err := s.w.Write(batch...); err != nil {
		s.writeErrs.Add(uint64(len(batch)))
		return
	}
	s.spans.Add(uint64(len(batch)))
	if cut {
		// What the store drops here it counts, as in its own flushes.
		if err := s.w.Flush(); err != nil {
			s.log.Error("store writer", "err", err)
		}
	}
}

// register exports the sink's counters.
func (s *spanSink) register(reg *prometheus.Registry) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_spans_total",
		Help: "Spans handed to the store: written, or dropped (zerotrace_store_spans_total, zerotrace_store_dropped_spans_total)."},
		func() float64 { return float64(s.spans.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerotrace_span_write_errors_total", Help: "Spans the store refused."},
		func() float64 { return float64(s.writeErrs.Load()) }))
}
