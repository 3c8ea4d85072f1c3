package pluginclient

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// TestPluginSearchFilters: searches by max duration, by attributes
// (response code class, node, pod) and by multi-value lists, over the
// plugin protocol, return exactly the generated spans that match (span
// table), and exactly the generated traces holding them, whole, with the
// count of matching spans (trace table).
func TestPluginSearchFilters(t *testing.T) {
	w := newWorld(t, 25, 40)
	dur := func(s *span.Span) time.Duration { return time.Duration(s.EndNs - s.StartNs) }
	for _, c := range []struct {
		name  string
		q     map[string]any
		match func(s *span.Span) bool
	}{
		{"max duration 1ms", map[string]any{"maxDuration": "1ms"},
			func(s *span.Span) bool { return dur(s) <= time.Millisecond }},
		{"min 500us and max 3ms", map[string]any{"minDuration": "500us", "maxDuration": "3ms"},
			func(s *span.Span) bool { return dur(s) >= 500*time.Microsecond && dur(s) <= 3*time.Millisecond }},
		{"response code 5xx on node2", map[string]any{"responseCode": "5xx", "node": "node2"},
			func(s *span.Span) bool { return s.ResponseCode >= 500 && s.ResponseCode <= 599 && s.Node == "node2" }},
		{"response code 503 of two pods", map[string]any{"responseCode": []string{"503"}, "pod": []string{"reviews-v1", "ratings-v1"}},
			func(s *span.Span) bool {
				return s.ResponseCode == 503 && (s.Pod == "reviews-v1" || s.Pod == "ratings-v1")
			}},
		{"two services (a multi-value variable)", map[string]any{"service": []string{"ratings", "details"}, "protocol": []string{"http"}},
			func(s *span.Span) bool { return s.Service == "ratings" || s.Service == "details" }},
		{"a list of one, status and max duration", map[string]any{"service": []string{"reviews"}, "status": "server_error", "maxDuration": "20ms"},
			func(s *span.Span) bool {
				return s.Service == "reviews" && s.ResponseStatus == span.StatusServerError && dur(s) <= 20*time.Millisecond
			}},
	} {
		want := map[string]bool{}
		inTrace := map[int]int{}
		for i := range w.all {
			if s := &w.all[i]; c.match(s) {
				want[span.FormatSpanID(s.SpanID)] = true
				inTrace[w.traceOf[s.SpanID]]++
			}
		}
		if len(want) == 0 || len(inTrace) == len(w.traces) && len(want) == len(w.all) {
			t.Fatalf("%s: matches %d spans of %d traces: a useless case", c.name, len(want), len(inTrace))
		}
		// Span table: exactly the matching spans.
		q := map[string]any{"queryType": "search", "tableType": "spans", "limit": 10000}
		for k, v := range c.q {
			q[k] = v
		}
		r := w.query(t, q)
		ids, _ := r.Frames[0].FieldByName("spanID")
		got := map[string]bool{}
		for i := 0; i < ids.Len(); i++ {
			got[ids.At(i).(string)] = true
		}
		if len(got) != ids.Len() || len(got) != len(want) {
			t.Errorf("%s: %d rows (%d distinct), want %d spans", c.name, ids.Len(), len(got), len(want))
		}
		for id := range got {
			if !want[id] {
				t.Errorf("%s: span %s does not match", c.name, id)
			}
		}
		// Trace table: the traces of those spans, whole, with their counts.
		q["tableType"] = "traces"
		r = w.query(t, q)
		f := r.Frames[0]
		if f.Rows() != len(inTrace) {
			t.Errorf("%s: %d traces, want %d", c.name, f.Rows(), len(inTrace))
		}
		tids, _ := f.FieldByName("traceID")
		matched, _ := f.FieldByName("matched")
		spans, _ := f.FieldByName("spans")
		rootSvc, _ := f.FieldByName("rootService")
		seen := map[int]bool{}
		for i := 0; i < f.Rows(); i++ {
			idx := w.traceOfID(t, tids.At(i).(string))
			if seen[idx] || inTrace[idx] == 0 {
				t.Errorf("%s: row %d is request %d (seen %v, matching spans %d)", c.name, i, idx, seen[idx], inTrace[idx])
			}
			seen[idx] = true
			if int(matched.At(i).(int64)) != inTrace[idx] || spans.At(i).(int64) != 38 || rootSvc.At(i).(string) != "loadgen" {
				t.Errorf("%s: request %d: %d matched, %d spans, root %s; want %d, 38, loadgen", c.name, idx,
					matched.At(i), spans.At(i), rootSvc.At(i), inTrace[idx])
			}
		}
		t.Logf("%s: %d spans in %d traces", c.name, len(want), len(inTrace))
	}
	// The limit counts traces, newest first.
	r := w.query(t, map[string]any{"queryType": "search", "service": []string{"ratings", "details"}, "limit": 3})
	tids, _ := r.Frames[0].FieldByName("traceID")
	var got []int
	for i := 0; i < tids.Len(); i++ {
		got = append(got, w.traceOfID(t, tids.At(i).(string)))
	}
	if n := len(w.traces); fmt.Sprint(got) != fmt.Sprint([]int{n - 1, n - 2, n - 3}) {
		t.Errorf("limit 3: requests %v, want the newest three", got)
	}
}

// traceOfID opens a trace by the id a row links to and names the generated
// request it is, failing unless it is that request's trace, whole.
func (w *world) traceOfID(t *testing.T, id string) int {
	t.Helper()
	r := w.query(t, map[string]any{"queryType": "trace", "traceId": id})
	ids, _ := r.Frames[0].FieldByName("spanID")
	var idx []int
	for i := 0; i < ids.Len(); i++ {
		sid, err := span.ParseSpanID(ids.At(i).(string))
		if err != nil {
			t.Fatal(err)
		}
		idx = append(idx, w.traceOf[sid])
	}
	sort.Ints(idx)
	if len(idx) == 0 || idx[0] != idx[len(idx)-1] || len(idx) != len(w.traces[idx[0]].Spans) {
		t.Fatalf("trace %s: spans of requests %v, want one whole request", id, idx)
	}
	return idx[0]
}
