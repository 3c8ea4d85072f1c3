//go:build linux

package export

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/zerotrace/zerotrace/internal/jaeger"
	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// TestExportJaegerGenerated: 20 generated Bookinfo traces exported over
// OTLP/HTTP to a real Jaeger v2 read back from its query API with every
// span, its parent and its service name (the demo's TestExportToJaeger does
// the same through kill -9 and an outage, as root).
func TestExportJaegerGenerated(t *testing.T) {
	j := jaeger.Start(t)
	r := newRig(t, 20)
	writeTraces(t, r.dir, r.gen, nil)
	r.cfg.Protocol, r.cfg.Endpoint = ProtocolHTTP, j.OTLPHTTP
	r.run(t, total(r.gen), 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tr := range r.gen {
		id := trace.DerivedID(tr.Spans[0].SpanID) // the root: loadgen's call
		var got map[pcommon.SpanID]pcommon.SpanID
		var svc map[pcommon.SpanID]string
		for ctx.Err() == nil {
			td, err := j.Trace(ctx, id, false)
			if err == nil && td.SpanCount() == len(tr.Spans) {
				got, svc = map[pcommon.SpanID]pcommon.SpanID{}, map[pcommon.SpanID]string{}
				for i := 0; i < td.ResourceSpans().Len(); i++ {
					rs := td.ResourceSpans().At(i)
					name, _ := rs.Resource().Attributes().Get("service.name")
					for k := 0; k < rs.ScopeSpans().Len(); k++ {
						ss := rs.ScopeSpans().At(k).Spans()
						for n := 0; n < ss.Len(); n++ {
							got[ss.At(n).SpanID()] = ss.At(n).ParentSpanID()
							svc[ss.At(n).SpanID()] = name.Str()
						}
					}
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got == nil {
			t.Fatalf("trace %d (%s) not in Jaeger with %d spans", tr.Index, id, len(tr.Spans))
		}
		for i, s := range tr.Spans {
			want := pcommon.NewSpanIDEmpty()
			if p := tr.Parents[i]; p >= 0 {
				want = otlp.SpanIDOf(tr.Spans[p].SpanID)
			}
			sid := otlp.SpanIDOf(s.SpanID)
			if p, ok := got[sid]; !ok || p != want || svc[sid] != s.ServiceName() {
				t.Errorf("trace %d %s: in Jaeger %v parent %s service %q, want parent %s service %q", tr.Index, tr.Labels[i], ok, p, svc[sid], want, s.ServiceName())
			}
		}
	}
}
