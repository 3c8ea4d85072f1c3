package pluginclient

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// world is generated Bookinfo traffic with its ground truth, stored and
// served by the plugin binary.
type world struct {
	c        *Client
	traces   []spangen.Trace
	all      []span.Span
	traceOf  map[uint64]int // span id → index in traces
	from, to time.Time      // the query range: whole seconds
}

func newWorld(t *testing.T, seed uint64, n int) *world {
	t.Helper()
	bin := pluginBinary(t)
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	w := &world{traceOf: map[uint64]int{}, from: start, to: start.Add(5 * time.Second)}
	w.traces = spangen.New(spangen.Config{Seed: seed, Start: start.Add(100 * time.Millisecond), Interval: 50 * time.Millisecond,
		ErrorRate: 0.3}).Next(n)
	for i, tr := range w.traces {
		for _, s := range tr.Spans {
			w.all = append(w.all, s)
			w.traceOf[s.SpanID] = i
		}
	}
	dir := t.TempDir()
	storetest.WriteTraces(t, dir, "", w.traces)
	c, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
		JSONData: map[string]any{"dataDirs": []string{dir}}, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w.c = c
	return w
}

func (w *world) query(t *testing.T, q map[string]any) *Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := w.c.Query(ctx, q, w.from, w.to)
	if err != nil || r.Error != "" {
		t.Fatalf("query %v: %v %q", q, err, r.GetError())
	}
	return r
}

// GetError is the response's error, also of a nil response.
func (r *Response) GetError() string {
	if r == nil {
		return "no response"
	}
	return r.Error
}

// handBuckets counts, without the plugin, the server process spans of each
// service in each second of [from, to).
func (w *world) handBuckets(keep func(*span.Span) bool) map[string][][]span.Span {
	n := int(w.to.Sub(w.from) / time.Second)
	out := map[string][][]span.Span{}
	for i := range w.all {
		s := &w.all[i]
		b := int((s.StartNs - w.from.UnixNano()) / int64(time.Second))
		if s.TapSide != span.TapServerProcess || b < 0 || b >= n || !keep(s) {
			continue
		}
		if out[s.Service] == nil {
			out[s.Service] = make([][]span.Span, n)
		}
		out[s.Service][b] = append(out[s.Service][b], *s)
	}
	return out
}

func ms(s *span.Span) float64 { return float64(s.EndNs-s.StartNs) / 1e6 }

// handValue is a metric of one bucket's spans (one second): rate and errors
// per second, errorRatio, latency percentiles as the value at rank ⌊p·n⌋ of
// the sorted durations (docs/plugin.md), max.
func handValue(metric string, spans []span.Span) *float64 {
	var errs int
	var durs []float64
	for i := range spans {
		if spans[i].ResponseStatus.IsError() {
			errs++
		}
		durs = append(durs, ms(&spans[i]))
	}
	sort.Float64s(durs)
	v := func(x float64) *float64 { return &x }
	rank := map[string]float64{"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
	switch metric {
	case "rate":
		return v(float64(len(spans)))
	case "errors":
		return v(float64(errs))
	}
	if len(spans) == 0 {
		return nil
	}
	switch metric {
	case "errorRatio":
		return v(float64(errs) / float64(len(spans)))
	case "max":
		return v(durs[len(durs)-1])
	}
	return v(durs[min(len(durs)-1, int(rank[metric]*float64(len(durs))))])
}

// series reads a dataplane timeseries-wide frame into service → values,
// checking the contract: type and version, one ascending time field, one
// number field per service labelled service=<name>.
func series(t *testing.T, f *data.Frame) (times []time.Time, out map[string][]*float64) {
	t.Helper()
	if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesWide || f.Meta.TypeVersion.Less(data.FrameTypeVersion{0, 1}) {
		t.Fatalf("frame %s: meta %+v, want timeseries-wide 0.1", f.Name, f.Meta)
	}
	out = map[string][]*float64{}
	for i, fld := range f.Fields {
		switch {
		case i == 0 && fld.Type() == data.FieldTypeTime:
			for j := 0; j < fld.Len(); j++ {
				times = append(times, fld.At(j).(time.Time))
				if j > 0 && !times[j].After(times[j-1]) {
					t.Fatalf("time field not ascending at %d", j)
				}
			}
		case fld.Type() == data.FieldTypeNullableFloat64 && fld.Labels["service"] != "" && len(fld.Labels) == 1:
			svc := fld.Labels["service"]
			if _, dup := out[svc]; dup {
				t.Fatalf("two series of %s", svc)
			}
			for j := 0; j < fld.Len(); j++ {
				out[svc] = append(out[svc], fld.At(j).(*float64))
			}
		default:
			t.Fatalf("frame %s field %d %s %v %v: not dataplane timeseries-wide", f.Name, i, fld.Name, fld.Type(), fld.Labels)
		}
	}
	return times, out
}

func same(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= 1e-9*math.Max(1, math.Abs(*b))
}

func fmtv(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// TestPluginMetricsAgainstHandCounts: every metric, filtered to one service
// and to a list of two, over the plugin protocol, equals the value counted
// from the generated spans in every bucket; every exemplar is the slowest
// (error) call of its service and bucket, and its trace id opens exactly
// the generated trace that holds it.
func TestPluginMetricsAgainstHandCounts(t *testing.T) {
	w := newWorld(t, 21, 60)
	for _, filter := range []any{"reviews", []string{"ratings", "details"}} {
		keep := map[string]bool{}
		if s, ok := filter.(string); ok {
			keep[s] = true
		} else {
			for _, s := range filter.([]string) {
				keep[s] = true
			}
		}
		hand := w.handBuckets(func(s *span.Span) bool { return keep[s.Service] })
		for _, metric := range []string{"rate", "errors", "errorRatio", "p50", "p75", "p90", "p95", "p99", "max"} {
			r := w.query(t, map[string]any{"queryType": "metrics", "metric": metric, "service": filter})
			if len(r.Frames) != 2 {
				t.Fatalf("%s: %d frames, want the series and the exemplars", metric, len(r.Frames))
			}
			times, got := series(t, r.Frames[0])
			if len(times) != 5 || !times[0].Equal(w.from) {
				t.Fatalf("%s: buckets %v, want 5 from %v", metric, times, w.from)
			}
			if len(got) != len(hand) {
				t.Errorf("%s %v: series %d, want %d", metric, filter, len(got), len(hand))
			}
			slowest := map[string][]*span.Span{}
			for svc, buckets := range hand {
				for b, spans := range buckets {
					want := handValue(metric, spans)
					if g := got[svc]; len(g) != len(buckets) || !same(g[b], want) {
						t.Errorf("%s %s bucket %d: got %v, want %s (%d calls)", metric, svc, b, g, fmtv(want), len(spans))
					}
					var top *span.Span
					for i := range spans {
						s := &spans[i]
						if (metric == "errors" || metric == "errorRatio") && !s.ResponseStatus.IsError() {
							continue
						}
						if top == nil || ms(s) > ms(top) {
							top = s
						}
					}
					slowest[svc] = append(slowest[svc], top)
				}
			}
			w.checkExemplars(t, metric, r.Frames[1], r.Frames[0], slowest)
		}
	}
}

// checkExemplars: one exemplar per service and bucket that has a value and
// a slowest call; that call's span id; its value; a trace id that opens its
// generated trace, whole.
func (w *world) checkExemplars(t *testing.T, metric string, ex, ser *data.Frame, slowest map[string][]*span.Span) {
	t.Helper()
	if ex.Name != "exemplar" || ex.Meta == nil || ex.Meta.DataTopic != data.DataTopicAnnotations {
		t.Fatalf("%s: exemplar frame %s %+v", metric, ex.Name, ex.Meta)
	}
	_, vals := series(t, ser)
	col := func(name string) *data.Field {
		f, _ := ex.FieldByName(name)
		if f == nil {
			t.Fatalf("exemplar frame lacks %s", name)
		}
		return f
	}
	tm, val, tid, sid, svc := col("Time"), col("Value"), col("traceId"), col("spanId"), col("service")
	if len(tid.Config.Links) != 1 || tid.Config.Links[0].Internal == nil || tid.Config.Links[0].Internal.DatasourceUID != "zt" {
		t.Fatalf("%s: exemplar traceId link %+v", metric, tid.Config)
	}
	want := 0
	for name, spans := range slowest {
		for b, s := range spans {
			if s != nil && vals[name][b] != nil {
				want++
			}
		}
	}
	if ex.Rows() != want || want == 0 {
		t.Fatalf("%s: %d exemplars, want %d", metric, ex.Rows(), want)
	}
	for i := 0; i < ex.Rows(); i++ {
		name := svc.At(i).(string)
		b := int(tm.At(i).(time.Time).Sub(w.from) / time.Second)
		s := slowest[name][b]
		if s == nil || sid.At(i).(string) != span.FormatSpanID(s.SpanID) {
			t.Errorf("%s %s bucket %d: exemplar span %s, want the slowest call %v", metric, name, b, sid.At(i), s)
			continue
		}
		wantVal := *vals[name][b]
		if strings.HasPrefix(metric, "p") || metric == "max" {
			wantVal = ms(s)
		}
		if v := val.At(i).(float64); !same(&v, &wantVal) {
			t.Errorf("%s %s bucket %d: exemplar value %v, want %v", metric, name, b, v, wantVal)
		}
		if metric == "p99" || metric == "errors" { // opening every trace once per metric family is enough
			w.checkOpens(t, tid.At(i).(string), w.traceOf[s.SpanID])
		}
	}
}

// checkOpens asks for the trace of id and compares its span ids with the
// generated trace idx.
func (w *world) checkOpens(t *testing.T, id string, idx int) {
	t.Helper()
	r := w.query(t, map[string]any{"queryType": "trace", "traceId": id})
	ids, _ := r.Frames[0].FieldByName("spanID")
	got := map[string]bool{}
	for i := 0; i < ids.Len(); i++ {
		got[ids.At(i).(string)] = true
	}
	tr := w.traces[idx]
	if len(got) != len(tr.Spans) {
		t.Errorf("trace %s: %d spans, want the %d of request %d", id, len(got), len(tr.Spans), tr.Index)
	}
	for _, s := range tr.Spans {
		if !got[span.FormatSpanID(s.SpanID)] {
			t.Errorf("trace %s lacks span %s of request %d", id, span.FormatSpanID(s.SpanID), tr.Index)
		}
	}
}
