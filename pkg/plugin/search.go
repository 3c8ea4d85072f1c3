package plugin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// searchBudget bounds the time a trace search spends assembling traces.
var searchBudget = 20 * time.Second

// search answers a search query: the newest spans that match (tableType
// spans), or the traces they belong to (traces, the default), each trace
// assembled once however many of its spans match.
func (d *Datasource) search(ctx context.Context, src source, q *Query, from, to int64) (*data.Frame, []error) {
	want := q.Limit
	if q.TableType == TableTraces {
		want *= 8 // spans of one trace often match together
	}
	st := d.stream(src, q, from, to, nil, want)
	link := TraceLink{d.uid, d.name}
	if q.TableType == TableSpans {
		spans := st.take(ctx, q.Limit)
		return SearchFrame(spans, link), st.warnings()
	}
	hits, warn := d.traceHits(ctx, src, st, q.Limit)
	for i := range hits {
		for j := range hits[i].Trace.Spans {
			if s := &hits[i].Trace.Spans[j]; s.StartNs >= from && s.StartNs <= to && q.match(s) {
				hits[i].Matched++
			}
		}
	}
	return TracesFrame(hits, link), append(st.warnings(), warn...)
}

// traceHits assembles the trace of each matching span, newest first, until
// it has limit traces; a span of a trace already found is skipped.
func (d *Datasource) traceHits(ctx context.Context, src source, st *spanStream, limit int) ([]TraceHit, []error) {
	ctx, cancel := context.WithTimeout(ctx, searchBudget)
	defer cancel()
	var hits []TraceHit
	of := map[uint64]int{} // span id → index in hits
	var errs []error
	for len(hits) < limit {
		s := st.next(ctx)
		if s == nil {
			break
		}
		if _, ok := of[s.SpanID]; ok {
			continue
		}
		t, err := trace.AssembleRef(ctx, src, d.assembly, trace.LinkID(s))
		if err != nil {
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("search stopped after %d traces: assembling took longer than %s", len(hits), searchBudget))
				break
			}
			errs = append(errs, fmt.Errorf("trace of span %s: %w", span.FormatSpanID(s.SpanID), err))
			continue
		}
		if len(t.Warnings) > 0 {
			errs = append(errs, errors.New(t.Warnings[0]))
		}
		for j := range t.Spans {
			of[t.Spans[j].SpanID] = len(hits)
		}
		of[s.SpanID] = len(hits) // the seed is in its trace; be sure
		hits = append(hits, TraceHit{Trace: t})
	}
	sort.SliceStable(hits, func(i, j int) bool { return traceStart(hits[i]) > traceStart(hits[j]) })
	return hits, errs
}

func traceStart(h TraceHit) int64 {
	first := h.Trace.Spans[0].StartNs
	for j := range h.Trace.Spans {
		first = min(first, h.Trace.Spans[j].StartNs)
	}
	return first
}
