package plugin

import (
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// MetricsFrames are RED series per service from server process spans:
// request rate (per second), error rate (fraction), p50 and p99 latency (ms),
// in buckets of step between from and to. One wide frame per metric.
func MetricsFrames(spans []span.Span, from, to time.Time, step time.Duration) []*data.Frame {
	if step <= 0 {
		step = time.Minute
	}
	width := max(to.Sub(from), 0) // saturates at 292 years
	if width/step > 2000 {
		step = width / 2000
	}
	nb := int(width/step) + 1 // at most 2001
	type bucket struct {
		calls, errors int
		durs          []float64
	}
	per := map[string][]bucket{}
	mapped := newMapNames(spans)
	for i := range spans {
		s := &spans[i]
		if s.TapSide != span.TapServerProcess {
			continue
		}
		b := int(time.Unix(0, s.StartNs).Sub(from) / step)
		if b < 0 || b >= nb {
			continue
		}
		name := mapped.name(s)
		if per[name] == nil {
			per[name] = make([]bucket, nb)
		}
		bk := &per[name][b]
		bk.calls++
		if s.ResponseStatus.IsError() {
			bk.errors++
		}
		bk.durs = append(bk.durs, msf(s.EndNs-s.StartNs))
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	times := make([]time.Time, nb)
	for i := range times {
		times[i] = from.Add(time.Duration(i) * step).UTC()
	}
	metric := func(name, unit string, val func(b bucket) *float64) *data.Frame {
		f := data.NewFrame(name, data.NewField("time", nil, times))
		for _, svc := range names {
			v := make([]*float64, nb)
			for i, b := range per[svc] {
				v[i] = val(b)
			}
			fld := data.NewField(name, data.Labels{"service": svc}, v)
			fld.Config = &data.FieldConfig{Unit: unit, DisplayNameFromDS: svc}
			f.Fields = append(f.Fields, fld)
		}
		f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeGraph}
		return f
	}
	fp := func(x float64) *float64 { return &x }
	return []*data.Frame{
		metric("request_rate", "reqps", func(b bucket) *float64 { return fp(float64(b.calls) / step.Seconds()) }),
		metric("error_rate", "percentunit", func(b bucket) *float64 {
			if b.calls == 0 {
				return nil
			}
			return fp(float64(b.errors) / float64(b.calls))
		}),
		metric("latency_p50", "ms", func(b bucket) *float64 {
			if b.calls == 0 {
				return nil
			}
			return fp(pct(b.durs, 0.5))
		}),
		metric("latency_p99", "ms", func(b bucket) *float64 {
			if b.calls == 0 {
				return nil
			}
			return fp(pct(b.durs, 0.99))
		}),
	}
}
