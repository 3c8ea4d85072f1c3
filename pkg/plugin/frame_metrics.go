package plugin

import (
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// Metrics of a metrics query (the query's metric field).
const (
	MetricRate       = "rate"       // calls per second
	MetricErrors     = "errors"     // calls that ended in an error, per second
	MetricErrorRatio = "errorRatio" // errors / calls
	MetricP50        = "p50"        // latency percentiles, ms
	MetricP75        = "p75"
	MetricP90        = "p90"
	MetricP95        = "p95"
	MetricP99        = "p99"
	MetricMax        = "max" // the slowest call, ms
)

// metricBucket is one service's calls in one interval.
type metricBucket struct {
	calls, errors int
	durs          []float64 // ms
	slowest       *span.Span
	slowestErr    *span.Span
}

type metricDef struct {
	name, unit string
	// value of a metricBucket that covers secs seconds of the range (nil: no value).
	value func(b *metricBucket, secs float64) *float64
	// latency: the exemplar's value is its duration; else the series value.
	latency bool
	// errorsOnly: exemplars are the slowest error call.
	errorsOnly bool
}

func fp(x float64) *float64 { return &x }

func percentile(p float64) func(b *metricBucket, _ float64) *float64 {
	return func(b *metricBucket, _ float64) *float64 {
		if b.calls == 0 {
			return nil
		}
		return fp(pct(b.durs, p))
	}
}

var metricDefs = []metricDef{
	{name: MetricRate, unit: "reqps", value: func(b *metricBucket, secs float64) *float64 { return fp(float64(b.calls) / secs) }},
	{name: MetricErrors, unit: "reqps", errorsOnly: true,
		value: func(b *metricBucket, secs float64) *float64 { return fp(float64(b.errors) / secs) }},
	{name: MetricErrorRatio, unit: "percentunit", errorsOnly: true, value: func(b *metricBucket, _ float64) *float64 {
		if b.calls == 0 {
			return nil
		}
		return fp(float64(b.errors) / float64(b.calls))
	}},
	{name: MetricP50, unit: "ms", latency: true, value: percentile(0.50)},
	{name: MetricP75, unit: "ms", latency: true, value: percentile(0.75)},
	{name: MetricP90, unit: "ms", latency: true, value: percentile(0.90)},
	{name: MetricP95, unit: "ms", latency: true, value: percentile(0.95)},
	{name: MetricP99, unit: "ms", latency: true, value: percentile(0.99)},
	{name: MetricMax, unit: "ms", latency: true, value: percentile(1)},
}

var metricByName = func() map[string]*metricDef {
	m := map[string]*metricDef{}
	for i := range metricDefs {
		m[metricDefs[i].name] = &metricDefs[i]
	}
	return m
}()

// MetricNames lists the metrics a metrics query computes.
func MetricNames() []string {
	out := make([]string, len(metricDefs))
	for i, m := range metricDefs {
		out[i] = m.name
	}
	return out
}

// Buckets lays out a metrics query's buckets: step (the query interval,
// else a minute; widened to keep at most 2000 buckets), aligned to
// multiples of step since the Unix epoch, from the one holding from to the
// one holding the last nanosecond before to.
type Buckets struct {
	From, To, Start int64 // ns; Start ≤ From is the first metricBucket's start
	Step            time.Duration
	N               int
}

// NewBuckets lays out the buckets of [from, to).
func NewBuckets(from, to int64, step time.Duration) Buckets {
	if step <= 0 {
		step = time.Minute
	}
	width := time.Duration(max(to-from, 1))
	if width/step > 2000 {
		step = width / 2000
	}
	start := from - from%int64(step)
	return Buckets{From: from, To: to, Start: start, Step: step, N: max(int((to-1-start)/int64(step))+1, 1)}
}

// Index is the metricBucket of a span starting at ns, or -1 outside [From, To).
func (b Buckets) Index(ns int64) int {
	if ns < b.From || ns >= b.To {
		return -1
	}
	return int((ns - b.Start) / int64(b.Step))
}

// Seconds is how much of the range metricBucket i covers: a rate divides by it,
// so the partial first and last buckets are not understated.
func (b Buckets) Seconds(i int) float64 {
	lo := b.Start + int64(i)*int64(b.Step)
	hi := b.To
	if b.To-lo > int64(b.Step) { // no overflow near the end of time
		hi = lo + int64(b.Step)
	}
	lo = max(lo, b.From)
	if hi <= lo {
		return b.Step.Seconds()
	}
	return float64(hi-lo) / 1e9
}

// metricSeries gathers each service's buckets from server process spans.
func metricSeries(spans []span.Span, bk Buckets) (names []string, per map[string][]metricBucket) {
	per = map[string][]metricBucket{}
	mapped := newMapNames(spans)
	for i := range spans {
		s := &spans[i]
		b := bk.Index(s.StartNs)
		if s.TapSide != span.TapServerProcess || b < 0 {
			continue
		}
		name := mapped.name(s)
		if per[name] == nil {
			per[name] = make([]metricBucket, bk.N)
		}
		x := &per[name][b]
		x.calls++
		d := msf(s.EndNs - s.StartNs)
		x.durs = append(x.durs, d)
		if x.slowest == nil || s.EndNs-s.StartNs > x.slowest.EndNs-x.slowest.StartNs {
			x.slowest = s
		}
		if s.ResponseStatus.IsError() {
			x.errors++
			if x.slowestErr == nil || s.EndNs-s.StartNs > x.slowestErr.EndNs-x.slowestErr.StartNs {
				x.slowestErr = s
			}
		}
	}
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, per
}

// MetricsFrame is one RED metric per service as a dataplane
// timeseries-wide frame: a time field (metricBucket starts) and one number field
// per service, named after the metric, labelled service=<name> and shown
// as the service's name. With exemplars, a second frame (name "exemplar",
// data topic annotations) holds the slowest call of each service and
// metricBucket (the slowest error call for errors and errorRatio), linked to its
// trace on this data source.
func MetricsFrame(spans []span.Span, bk Buckets, metric string, exemplars bool, link TraceLink) data.Frames {
	def := metricByName[metric]
	names, per := metricSeries(spans, bk)
	times := make([]time.Time, bk.N)
	for i := range times {
		times[i] = time.Unix(0, bk.Start+int64(i)*int64(bk.Step)).UTC()
	}
	f := data.NewFrame(def.name, data.NewField("time", nil, times))
	ex := newExemplars(link)
	for _, svc := range names {
		v := make([]*float64, bk.N)
		for i := range per[svc] {
			b := &per[svc][i]
			v[i] = def.value(b, bk.Seconds(i))
			s := b.slowest
			if def.errorsOnly {
				s = b.slowestErr
			}
			if exemplars && s != nil && v[i] != nil {
				val := *v[i]
				if def.latency {
					val = msf(s.EndNs - s.StartNs)
				}
				ex.add(s, val, svc)
			}
		}
		fld := data.NewField(def.name, data.Labels{"service": svc}, v)
		fld.Config = &data.FieldConfig{Unit: def.unit, DisplayNameFromDS: svc}
		f.Fields = append(f.Fields, fld)
	}
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1},
		PreferredVisualization: data.VisTypeGraph}
	if !exemplars {
		return data.Frames{f}
	}
	return data.Frames{f, ex.frame()}
}

// TraceLink is the data source a frame's trace links open.
type TraceLink struct{ UID, Name string }

// field is a traceID field whose values open their trace in Explore.
func (l TraceLink) field(name string, ids []string) *data.Field {
	f := data.NewField(name, nil, ids)
	f.Config = &data.FieldConfig{Links: []data.DataLink{{
		Title: "Open trace",
		Internal: &data.InternalDataLink{DatasourceUID: l.UID, DatasourceName: l.Name,
			Query: map[string]any{"queryType": QueryTrace, "traceId": "${__value.raw}"}},
	}}}
	return f
}

type exemplarRows struct {
	link               TraceLink
	times              []time.Time
	vals               []float64
	trace, spanID, svc []string
}

func newExemplars(link TraceLink) *exemplarRows { return &exemplarRows{link: link} }

func (e *exemplarRows) add(s *span.Span, v float64, svc string) {
	e.times = append(e.times, time.Unix(0, s.StartNs).UTC())
	e.vals = append(e.vals, v)
	e.trace = append(e.trace, trace.LinkID(s))
	e.spanID = append(e.spanID, span.FormatSpanID(s.SpanID))
	e.svc = append(e.svc, svc)
}

func (e *exemplarRows) frame() *data.Frame {
	if e.times == nil {
		e.times, e.vals, e.trace, e.spanID, e.svc = []time.Time{}, []float64{}, []string{}, []string{}, []string{}
	}
	f := data.NewFrame("exemplar",
		data.NewField("Time", nil, e.times),
		data.NewField("Value", nil, e.vals),
		e.link.field("traceId", e.trace),
		data.NewField("spanId", nil, e.spanID),
		data.NewField("service", nil, e.svc),
	)
	f.Meta = &data.FrameMeta{DataTopic: data.DataTopicAnnotations}
	return f
}
