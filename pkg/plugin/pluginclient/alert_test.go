package pluginclient

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// evaluate does what Grafana's alerting does with a data source's frames
// (server-side expressions over the dataplane contract): every number field
// of a timeseries-wide frame is one series named by its labels; Reduce
// "last" drops nulls and takes the last value; Threshold "gt" fires the
// series above the threshold. It returns the firing series' labels.
func evaluate(t *testing.T, r *Response, threshold float64) []string {
	t.Helper()
	var firing []string
	for _, f := range r.Frames {
		_, vals := series(t, f) // fails on anything that is not dataplane timeseries-wide
		for svc, v := range vals {
			var last *float64
			for _, x := range v {
				if x != nil {
					last = x
				}
			}
			if last != nil && *last > threshold {
				firing = append(firing, "service="+svc)
			}
		}
	}
	sort.Strings(firing)
	return firing
}

// TestPluginAlertEvaluation: an alert rule "error ratio of the last bucket
// above 5 %, per service" evaluated the way Grafana's alerting does, over
// the plugin protocol with alerting's FromAlert header: the response is
// frames alerting can read (no exemplar frame), and the services that fire
// are those whose last second with calls had more than 5 % errors,
// counted from the generated spans. A p99 rule fires on the services whose
// slowest calls the generator made slow.
func TestPluginAlertEvaluation(t *testing.T) {
	w := newWorld(t, 23, 70)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hand := w.handBuckets(func(*span.Span) bool { return true })
	for _, rule := range []struct {
		metric    string
		threshold float64
	}{{"errorRatio", 0.05}, {"p99", 5}} {
		var want []string
		for svc, buckets := range hand {
			var last *float64
			for _, b := range buckets {
				if v := handValue(rule.metric, b); v != nil {
					last = v
				}
			}
			if last != nil && *last > rule.threshold {
				want = append(want, "service="+svc)
			}
		}
		sort.Strings(want)
		if len(want) == 0 || len(want) == len(hand) {
			t.Fatalf("%s > %v: %d of %d services fire: a useless rule", rule.metric, rule.threshold, len(want), len(hand))
		}
		q := DataQuery{RefID: "A", JSON: map[string]any{"queryType": "metrics", "metric": rule.metric, "namespace": "bookinfo"},
			From: w.from, To: w.to, Interval: time.Second}
		rs, err := w.c.QueryDataWithHeaders(ctx, map[string]string{"FromAlert": "true"}, []DataQuery{q})
		if err != nil || rs["A"].Error != "" {
			t.Fatalf("%s: %v %q", rule.metric, err, rs["A"].GetError())
		}
		if n := len(rs["A"].Frames); n != 1 {
			t.Fatalf("%s for alerting: %d frames, want the series only", rule.metric, n)
		}
		if got := evaluate(t, rs["A"], rule.threshold); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s > %v fires %v, want %v", rule.metric, rule.threshold, got, want)
		}
		t.Logf("%s > %v fires %v", rule.metric, rule.threshold, want)
	}
}
