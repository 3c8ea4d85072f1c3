package pluginclient

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
)

// TestPluginBinaryOverGrafanaProtocol builds the real plugin executable and
// drives it the way Grafana does, against shards on disk.
func TestPluginBinaryOverGrafanaProtocol(t *testing.T) {
	bin := pluginBinary(t)

	dir := t.TempDir()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	traces := spangen.New(spangen.Config{Seed: 4, Start: start, Interval: 50 * time.Millisecond}).Next(20)
	storetest.WriteTraces(t, dir, "", traces)

	c, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
		JSONData: map[string]any{"dataDirs": []string{dir}}, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	h, err := c.CheckHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != pluginv2.CheckHealthResponse_OK || !strings.Contains(h.Message, "760 spans") {
		t.Fatalf("CheckHealth: %v %q", h.Status, h.Message)
	}

	from, to := start.Add(-time.Minute), time.Now()
	// trace: every request's trace, whole.
	for _, tr := range traces {
		r, err := c.Query(ctx, map[string]any{"queryType": "trace", "spanId": strconv.FormatUint(tr.Spans[0].SpanID, 10)}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != "" || len(r.Frames) != 1 || r.Frames[0].Rows() != 38 {
			t.Fatalf("trace %d: error %q, frames %d", tr.Index, r.Error, len(r.Frames))
		}
		checkOwnSpans(t, r, tr)
	}
	// search → its link id → trace.
	r, err := c.Query(ctx, map[string]any{"queryType": "search", "namespace": "bookinfo", "service": "ratings", "limit": 10}, from, to)
	if err != nil || r.Error != "" || r.Frames[0].Rows() != 10 {
		t.Fatalf("search: %v %q", err, r.Error)
	}
	tid := r.Frames[0].Fields[0].At(0).(string)
	r, err = c.Query(ctx, map[string]any{"queryType": "trace", "traceId": tid}, from, to)
	if err != nil || r.Error != "" || r.Frames[0].Rows() != 38 {
		t.Fatalf("trace by search link %s: %v %q", tid, err, r.Error)
	}
	// serviceMap and metrics.
	// The service map of the 20 requests: the generated spans carry no
	// proxy flag, so a pod's sidecar and application are one service and
	// their calls to each other edges from it to itself. Per request:
	// loadgen (curl) → its sidecar → productpage's sidecar → productpage,
	// which calls details and reviews, each through both sidecars; reviews
	// calls ratings likewise.
	r, err = c.Query(ctx, map[string]any{"queryType": "serviceMap"}, from, to)
	if err != nil || r.Error != "" || len(r.Frames) != 2 {
		t.Fatalf("serviceMap: %v %q", err, r.Error)
	}
	// id and calls (mainstat) of every node and edge.
	wantNodes := "details 40, loadgen 20, productpage 80, ratings 40, reviews 60"
	wantEdges := "details->details 20, loadgen->loadgen 20, loadgen->productpage 20, productpage->details 20, " +
		"productpage->productpage 60, productpage->reviews 20, ratings->ratings 20, reviews->ratings 20, reviews->reviews 40"
	if got := columns(t, r.Frames[0], "id", "mainstat"); got != wantNodes {
		t.Errorf("service map nodes:\n got %s\nwant %s", got, wantNodes)
	}
	if got := columns(t, r.Frames[1], "id", "mainstat"); got != wantEdges {
		t.Errorf("service map edges:\n got %s\nwant %s", got, wantEdges)
	}
	r, err = c.Query(ctx, map[string]any{"queryType": "metrics"}, from, to)
	if err != nil || r.Error != "" || len(r.Frames) != 2 || len(r.Frames[0].Fields) < 5 {
		t.Fatalf("metrics: %v %q", err, r.Error)
	}
	// A bad query is an error of that query, with its status.
	r, err = c.Query(ctx, map[string]any{"queryType": "trace", "traceId": "not-an-id"}, from, to)
	if err != nil || r.Error == "" || r.Status != 400 {
		t.Fatalf("bad trace id: %v %q %d", err, r.Error, r.Status)
	}
	// CallResource.
	status, body, err := c.Resource(ctx, "services?namespace=bookinfo")
	if err != nil || status != 200 {
		t.Fatalf("CallResource: %v %d %s", err, status, body)
	}
	var svcs []string
	if err := json.Unmarshal(body, &svcs); err != nil || strings.Join(svcs, ",") != "details,loadgen,productpage,ratings,reviews" {
		t.Fatalf("services: %v %s", err, body)
	}
}

// columns joins a frame's rows as "<a> <b>, …" from its fields a and b
// (sorted by the frame's own order).
func columns(t *testing.T, f *data.Frame, a, b string) string {
	t.Helper()
	fa, _ := f.FieldByName(a)
	fb, _ := f.FieldByName(b)
	if fa == nil || fb == nil {
		t.Fatalf("frame %s has no field %s or %s", f.Name, a, b)
	}
	rows := make([]string, fa.Len())
	for i := range rows {
		rows[i] = fmt.Sprintf("%v %v", fa.At(i), fb.At(i))
	}
	return strings.Join(rows, ", ")
}
