package pluginclient

import (
	"testing"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// checkOwnSpans fails when the trace frame holds a span not of tr.
func checkOwnSpans(t *testing.T, r *Response, tr spangen.Trace) {
	t.Helper()
	ids, _ := r.Frames[0].FieldByName("spanID")
	want := map[string]bool{}
	for _, s := range tr.Spans {
		want[span.FormatSpanID(s.SpanID)] = true
	}
	for i := 0; i < ids.Len(); i++ {
		if !want[ids.At(i).(string)] {
			t.Fatalf("trace %d has a foreign span %s", tr.Index, ids.At(i))
		}
	}
}
