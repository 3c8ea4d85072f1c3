package pluginclient

import (
	"strconv"
	"testing"

	"github.com/zerotrace/zerotrace/pkg/spangen"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// writeTraces stores traces under dir, one node directory per node, sealing
// every sealEvery traces (0: once at the end by the caller's Close). The
// writers are returned open.
func writeTraces(t *testing.T, dir string, traces []spangen.Trace, sealEvery int) map[string]*store.Writer {
	t.Helper()
	ws := map[string]*store.Writer{}
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if ws[s.Node] == nil {
				w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: s.Node, NoBackground: true})
				if err != nil {
					t.Fatal(err)
				}
				ws[s.Node] = w
			}
			ws[s.Node].Write(s)
		}
		if sealEvery > 0 && tr.Index%sealEvery == sealEvery-1 {
			for _, w := range ws {
				w.Seal()
			}
		}
	}
	return ws
}

// checkOwnSpans fails when the trace frame holds a span not of tr.
func checkOwnSpans(t *testing.T, r *Response, tr spangen.Trace) {
	t.Helper()
	ids, _ := r.Frames[0].FieldByName("spanID")
	want := map[string]bool{}
	for _, s := range tr.Spans {
		want[strconv.FormatUint(s.SpanID, 10)] = true
	}
	for i := 0; i < ids.Len(); i++ {
		if !want[ids.At(i).(string)] {
			t.Fatalf("trace %d has a foreign span %s", tr.Index, ids.At(i))
		}
	}
}
