package plugin

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"

	"github.com/zerotrace/zerotrace/internal/spangen"
	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// fillStore writes generated Bookinfo traces into dir, one node directory per node.
func fillStore(t testing.TB, dir string, traces []spangen.Trace) {
	t.Helper()
	storetest.WriteTraces(t, dir, "", traces)
}

func newDS(t *testing.T, dirs ...string) *Datasource {
	t.Helper()
	jd, _ := json.Marshal(map[string]any{"dataDirs": dirs})
	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "zerotrace", Name: "Zerotrace", JSONData: jd})
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*Datasource)
	t.Cleanup(d.Dispose)
	return d
}

func run(t *testing.T, d *Datasource, q map[string]any, from, to time.Time) backend.DataResponse {
	t.Helper()
	b, _ := json.Marshal(q)
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{
		RefID: "A", JSON: b, Interval: 10 * time.Second, TimeRange: backend.TimeRange{From: from, To: to}}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Responses["A"]
}

func TestGoldenFrames(t *testing.T) {
	dir := t.TempDir()
	traces := spangen.New(spangen.Config{Seed: 11, Start: t0, Interval: 200 * time.Millisecond, ErrorRate: 0.25}).Next(6)
	fillStore(t, dir, traces)
	d := newDS(t, dir)
	from, to := t0.Add(-time.Minute), t0.Add(time.Minute)
	golden := filepath.Join("testdata", "golden")

	tr := run(t, d, map[string]any{"queryType": "trace", "spanId": span.FormatSpanID(traces[0].Spans[0].SpanID)}, from, to)
	if tr.Error != nil {
		t.Fatal(tr.Error)
	}
	f := tr.Frames[0]
	if f.Meta == nil || f.Meta.PreferredVisualization != "trace" || f.Rows() != 38 {
		t.Fatalf("trace frame: meta %+v, %d rows", f.Meta, f.Rows())
	}
	for _, name := range []string{"tags", "serviceTags", "logs", "warnings"} {
		fld, _ := f.FieldByName(name)
		for i := 0; i < fld.Len(); i++ {
			if v := fld.At(i).(json.RawMessage); v == nil || !strings.HasPrefix(string(v), "[") {
				t.Fatalf("%s row %d is %q, want a JSON array", name, i, v)
			}
		}
	}
	experimental.CheckGoldenJSONResponse(t, golden, "trace", &tr, *update)

	sr := run(t, d, map[string]any{"queryType": "search", "namespace": "bookinfo", "service": "reviews", "limit": 5}, from, to)
	if sr.Error != nil || sr.Frames[0].Rows() != 5 {
		t.Fatalf("search: %v", sr.Error)
	}
	link := sr.Frames[0].Fields[0].Config.Links[0]
	if link.Internal == nil || link.Internal.DatasourceUID != "zerotrace" {
		t.Fatalf("search traceID link %+v", link)
	}
	experimental.CheckGoldenJSONResponse(t, golden, "search", &sr, *update)
	ss := run(t, d, map[string]any{"queryType": "search", "tableType": "spans", "namespace": "bookinfo", "service": "reviews", "limit": 5}, from, to)
	if ss.Error != nil || ss.Frames[0].Rows() != 5 {
		t.Fatalf("search spans: %v", ss.Error)
	}
	experimental.CheckGoldenJSONResponse(t, golden, "search-spans", &ss, *update)

	// The search row's link opens the whole trace; a span row's too.
	for _, r := range []backend.DataResponse{sr, ss} {
		tid := r.Frames[0].Fields[0].At(0).(string)
		lt := run(t, d, map[string]any{"queryType": "trace", "traceId": tid}, from, to)
		if lt.Error != nil || lt.Frames[0].Rows() != 38 {
			t.Fatalf("linked trace %s: %v", tid, lt.Error)
		}
	}

	sm := run(t, d, map[string]any{"queryType": "serviceMap", "namespace": "bookinfo"}, from, to)
	if sm.Error != nil || len(sm.Frames) != 2 || sm.Frames[0].Name != "nodes" || sm.Frames[1].Name != "edges" {
		t.Fatalf("service map: %v %v", sm.Error, sm.Frames)
	}
	experimental.CheckGoldenJSONResponse(t, golden, "servicemap", &sm, *update)

	for _, m := range []string{"rate", "errorRatio", "p99"} {
		mr := run(t, d, map[string]any{"queryType": "metrics", "metric": m, "namespace": "bookinfo"}, t0, t0.Add(2*time.Second))
		if mr.Error != nil || len(mr.Frames) != 2 {
			t.Fatalf("metrics %s: %v %d frames", m, mr.Error, len(mr.Frames))
		}
		experimental.CheckGoldenJSONResponse(t, golden, "metrics-"+m, &mr, *update)
	}
}

func itoa(u uint64) string {
	b, _ := json.Marshal(u)
	return string(b)
}

func TestPerQueryErrors(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir, spangen.New(spangen.Config{Seed: 1, Start: t0}).Next(1))
	d := newDS(t, dir)
	b1, _ := json.Marshal(map[string]any{"queryType": "nonsense"})
	b2, _ := json.Marshal(map[string]any{"queryType": "trace", "traceId": "00000000000000000000000000000abc"})
	b3, _ := json.Marshal(map[string]any{"queryType": "search", "tableType": "spans", "namespace": "bookinfo", "limit": 3})
	b4, _ := json.Marshal(map[string]any{"queryType": "search", "minDuration": "fast"})
	resp, _ := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		{RefID: "bad", JSON: b1}, {RefID: "missing", JSON: b2},
		{RefID: "ok", JSON: b3, TimeRange: backend.TimeRange{From: t0.Add(-time.Minute), To: t0.Add(time.Minute)}},
		{RefID: "dur", JSON: b4}}})
	if r := resp.Responses["bad"]; r.Error == nil || r.Status != backend.StatusBadRequest {
		t.Errorf("unknown query type: %v %v", r.Error, r.Status)
	}
	if r := resp.Responses["missing"]; r.Error == nil || r.Status != backend.StatusNotFound {
		t.Errorf("unknown trace: %v %v", r.Error, r.Status)
	}
	if r := resp.Responses["dur"]; r.Error == nil || r.Status != backend.StatusBadRequest {
		t.Errorf("bad duration: %v %v", r.Error, r.Status)
	}
	if r := resp.Responses["ok"]; r.Error != nil || r.Frames[0].Rows() != 3 {
		t.Errorf("the good query failed next to bad ones: %v", r.Error)
	}
}

func TestHealthAndResources(t *testing.T) {
	empty := t.TempDir()
	d := newDS(t, empty)
	h, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "no spans yet") {
		t.Errorf("empty store health: %v %q", h.Status, h.Message)
	}
	d = newDS(t, filepath.Join(empty, "does-not-exist"))
	if h, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{}); h.Status != backend.HealthStatusError {
		t.Errorf("missing directory health: %v %q", h.Status, h.Message)
	}

	dir := t.TempDir()
	fillStore(t, dir, spangen.New(spangen.Config{Seed: 1, Start: time.Now().Add(-time.Minute)}).Next(2))
	d = newDS(t, dir)
	h, _ = d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "76 spans") || !strings.Contains(h.Message, "newest span") {
		t.Errorf("health: %v %q", h.Status, h.Message)
	}
	if strings.Contains(h.Message, "capture loss") {
		t.Errorf("health reports capture loss without any recorded: %q", h.Message)
	}
	// A collector recorded drops in one node directory: health shows them.
	st, err := d.reader.Stats(context.Background())
	if err != nil || len(st.Nodes) == 0 {
		t.Fatalf("stats: %v %+v", err, st)
	}
	w, err := store.OpenWriter(store.WriterOptions{Dir: dir, Node: st.Nodes[0].Node, NoBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCaptureStats(store.CaptureStats{UpdatedNs: 2, StartedNs: 1, EBPF: &store.EBPFStats{Events: 100, RingbufDrops: 4},
		Interfaces: []store.InterfaceStats{{Name: "n:veth1", Packets: 50, Drops: 3}, {Name: "n:veth2", Packets: 50, Drops: 2}}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	h, _ = d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "capture loss since the collectors started: 4 ring-buffer events, 5 packets dropped") {
		t.Errorf("health with capture loss: %v %q", h.Status, h.Message)
	}
	if strings.Contains(h.Message, "disk space") {
		t.Errorf("health reports a disk shortage without any: %q", h.Message)
	}
	// A collector whose disk has no room (more free space asked for than
	// there is) drops new spans and records it: health shows it.
	w, err = store.OpenWriter(store.WriterOptions{Dir: dir, Node: st.Nodes[0].Node, NoBackground: true, MinFree: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(spangen.New(spangen.Config{Seed: 2}).Next(1)[0].Spans...)
	w.Flush()
	if err := w.WriteCaptureStats(store.CaptureStats{UpdatedNs: 3, StartedNs: 1}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	h, _ = d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "38 spans dropped for lack of disk space on the collectors") ||
		!strings.Contains(h.Message, "short of disk space now, dropping new spans: "+st.Nodes[0].Node+" (since ") {
		t.Errorf("health with a full disk: %v %q", h.Status, h.Message)
	}
	for path, want := range map[string][]string{
		"namespaces":                  {"bookinfo"},
		"services?namespace=bookinfo": {"details", "productpage", "ratings", "reviews"},
		"protocols":                   {"http"},
		"endpoints?namespace=bookinfo&service=ratings": {"/ratings/{id}"},
	} {
		var got []string
		var status int
		err := d.CallResource(context.Background(), &backend.CallResourceRequest{Path: strings.Split(path, "?")[0], Method: "GET", URL: path},
			backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error {
				status = r.Status
				return json.Unmarshal(r.Body, &got)
			}))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %v %d", path, err, status)
		}
		for _, w := range want {
			if !contains(got, w) {
				t.Errorf("%s = %v, lacks %s", path, got, w)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestWorkloadNames: spans with workload metadata (span/2) show their
// workload as the service, a proxy as "<workload> (proxy)" with a proxy tag,
// pod, workload and container in serviceTags; the search filters on the
// workload and the workloads resource lists them.
func TestWorkloadNames(t *testing.T) {
	dir := t.TempDir()
	traces := spangen.New(spangen.Config{Seed: 5, Start: t0, Interval: 100 * time.Millisecond}).Next(3)
	for i := range traces {
		for j := range traces[i].Spans {
			s := &traces[i].Spans[j]
			if s.SignalSource != span.SourceEBPF {
				continue
			}
			s.Workload, s.WorkloadKind, s.ContainerName = s.Service+"-v1", "Deployment", s.Service
			if s.ProcessName == "nginx" {
				s.Flags |= span.FlagProxy
				s.ContainerName = "istio-proxy"
			}
		}
	}
	fillStore(t, dir, traces)
	d := newDS(t, dir)
	from, to := t0.Add(-time.Minute), t0.Add(time.Minute)

	tr := run(t, d, map[string]any{"queryType": "trace", "spanId": span.FormatSpanID(traces[0].Spans[0].SpanID)}, from, to)
	if tr.Error != nil {
		t.Fatal(tr.Error)
	}
	svc, _ := tr.Frames[0].FieldByName("serviceName")
	tags, _ := tr.Frames[0].FieldByName("serviceTags")
	names := map[string]bool{}
	for i := 0; i < svc.Len(); i++ {
		name := svc.At(i).(string)
		names[name] = true
		var kv []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(tags.At(i).(json.RawMessage), &kv); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, p := range kv {
			m[p.Key] = p.Value
		}
		if name == "productpage (proxy)" && (m["proxy"] != "true" || m["workload"] != "productpage-v1" || m["container"] != "istio-proxy" ||
			m["workload_kind"] != "Deployment" || m["pod"] == "" || m["process"] != "nginx") {
			t.Errorf("proxy serviceTags %v", m)
		}
		if name == "productpage" && (m["proxy"] != "" || m["workload"] != "productpage-v1" || m["container"] != "productpage") {
			t.Errorf("app serviceTags %v", m)
		}
	}
	for _, w := range []string{"productpage", "productpage (proxy)", "reviews", "reviews (proxy)", "details (proxy)", "ratings (proxy)"} {
		if !names[w] {
			t.Errorf("trace lacks service %q: %v", w, names)
		}
	}

	sm := run(t, d, map[string]any{"queryType": "serviceMap"}, from, to)
	if sm.Error != nil {
		t.Fatal(sm.Error)
	}
	titles, _ := sm.Frames[0].FieldByName("title")
	nodes := map[string]bool{}
	for i := 0; i < titles.Len(); i++ {
		nodes[titles.At(i).(string)] = true
	}
	if !nodes["productpage"] || !nodes["productpage (proxy)"] {
		t.Errorf("service map nodes %v: want productpage and its proxy apart", nodes)
	}

	sr := run(t, d, map[string]any{"queryType": "search", "tableType": "spans", "workload": "reviews-v1", "limit": 1000}, from, to)
	if sr.Error != nil {
		t.Fatal(sr.Error)
	}
	col, _ := sr.Frames[0].FieldByName("service")
	if col.Len() == 0 {
		t.Fatal("no spans of workload reviews-v1")
	}
	for i := 0; i < col.Len(); i++ {
		if v := col.At(i).(string); v != "reviews" && v != "reviews (proxy)" {
			t.Errorf("workload filter returned service %q", v)
		}
	}

	var got []string
	err := d.CallResource(context.Background(), &backend.CallResourceRequest{Path: "workloads", Method: "GET", URL: "workloads?namespace=bookinfo"},
		backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { return json.Unmarshal(r.Body, &got) }))
	if err != nil || strings.Join(got, ",") != "details-v1,loadgen-v1,productpage-v1,ratings-v1,reviews-v1" {
		t.Errorf("workloads: %v %v", got, err)
	}
}

// BenchmarkSearch: a search of 20 rows over 500 generated requests (19,000
// spans), as spans and as traces (each trace assembled); docs/plugin.md
// records the figures.
func BenchmarkSearch(b *testing.B) {
	dir := b.TempDir()
	fillStore(b, dir, spangen.New(spangen.Config{Seed: 3, Start: t0, Interval: 10 * time.Millisecond}).Next(500))
	jd, _ := json.Marshal(map[string]any{"dataDirs": []string{dir}})
	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "zt", JSONData: jd})
	if err != nil {
		b.Fatal(err)
	}
	d := inst.(*Datasource)
	defer d.Dispose()
	for _, table := range []string{TableSpans, TableTraces} {
		q, _ := json.Marshal(map[string]any{"queryType": "search", "tableType": table, "namespace": "bookinfo", "limit": 20})
		req := &backend.QueryDataRequest{Queries: []backend.DataQuery{{RefID: "A", JSON: q,
			TimeRange: backend.TimeRange{From: t0.Add(-time.Minute), To: t0.Add(time.Minute)}}}}
		b.Run(table, func(b *testing.B) {
			for b.Loop() {
				r, _ := d.QueryData(context.Background(), req)
				if r.Responses["A"].Error != nil || r.Responses["A"].Frames[0].Rows() != 20 {
					b.Fatal(r.Responses["A"].Error)
				}
			}
		})
	}
}
