package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/store"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// PluginID is the id in src/plugin.json.
const PluginID = "zerotrace-tracing-datasource"

// Datasource is one configured Zerotrace data source.
type Datasource struct {
	settings Settings
	uid      string
	name     string
	reader   *store.Reader
	mirror   *bucket.Mirror // bucket mode: the local cache the reader reads
	setupErr error          // bucket mode: why the bucket cannot be used
	assembly trace.Config
	resource backend.CallResourceHandler
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory datasource.Manage calls.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	st, err := LoadSettings(s)
	if err != nil {
		return nil, err
	}
	d := &Datasource{settings: st, uid: s.UID, name: s.Name}
	dirs := st.DataDirs
	if st.Storage == StorageBucket {
		d.mirror, d.setupErr = openMirror(st.BucketSettings, s.UID)
		if d.setupErr != nil {
			dirs = []string{filepath.Join(os.TempDir(), "zerotrace-no-bucket")}
		} else {
			dirs = []string{d.mirror.Dir()}
		}
	}
	r, err := store.OpenReader(dirs...)
	if err != nil {
		return nil, fmt.Errorf("opening the span store: %w", err)
	}
	d.reader = r
	mux := http.NewServeMux()
	for _, res := range []string{"namespaces", "services", "endpoints", "protocols"} {
		field := map[string]string{"namespaces": "namespace", "services": "service", "endpoints": "endpoint", "protocols": "protocol"}[res]
		mux.HandleFunc("/"+res, d.values(field))
	}
	d.resource = httpadapter.New(mux)
	return d, nil
}

// Dispose closes the store when Grafana drops the instance.
func (d *Datasource) Dispose() { d.reader.Close() }

// QueryData answers each query on its own: one query's error does not fail
// the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, dq backend.DataQuery) backend.DataResponse {
	q, err := ParseQuery(dq.JSON)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
	}
	from, to := dq.TimeRange.From.UnixNano(), dq.TimeRange.To.UnixNano()
	// Bucket mode: the shards of the query's window are made local first; a
	// trace query reads what that brings plus whatever else is cached.
	release, bucketWarn := d.prepare(ctx, from, to)
	defer release()
	resp := d.queryStore(ctx, dq, q, from, to)
	if bucketWarn != nil {
		if resp.Error != nil {
			resp.Error = fmt.Errorf("%w; %v", resp.Error, bucketWarn)
		} else if len(resp.Frames) > 0 {
			resp.Frames[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: bucketWarn.Error()})
		}
	}
	return resp
}

func (d *Datasource) queryStore(ctx context.Context, dq backend.DataQuery, q Query, from, to int64) backend.DataResponse {
	var frames data.Frames
	var warn error
	switch q.QueryType {
	case QueryTrace:
		id := q.TraceID
		if id == "" {
			id = q.SpanID
		}
		// A link must keep working whatever the dashboard's time range: a
		// trace query looks everywhere.
		t, err := trace.Assemble(ctx, d.reader, d.assembly, id, 0, 0)
		if errors.Is(err, trace.ErrNotFound) {
			return backend.ErrDataResponse(backend.StatusNotFound, err.Error())
		}
		if err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
		}
		frames = data.Frames{TraceFrame(t)}
	case QuerySearch:
		spans, err := d.reader.Search(ctx, store.SearchQuery{FromNs: from, ToNs: to, Namespace: q.Namespace,
			Service: q.Service, Endpoint: q.Endpoint, Protocol: q.Protocol, Status: q.Status,
			MinDuration: q.minDuration, Limit: q.Limit})
		if spans == nil && err != nil {
			return backend.ErrDataResponse(statusOf(err), err.Error())
		}
		warn = err
		frames = data.Frames{SearchFrame(spans, d.uid, d.name)}
	case QueryServiceMap, QueryMetrics:
		spans, err := d.reader.Search(ctx, store.SearchQuery{FromNs: from, ToNs: to, Namespace: q.Namespace,
			Service: q.Service, Endpoint: q.Endpoint, Protocol: q.Protocol, Status: q.Status, MinDuration: q.minDuration,
			TapSides: []span.TapSide{span.TapClientProcess, span.TapServerProcess}, Limit: 100000})
		if spans == nil && err != nil {
			return backend.ErrDataResponse(statusOf(err), err.Error())
		}
		warn = err
		if q.QueryType == QueryServiceMap {
			n, e := ServiceMapFrames(spans)
			frames = data.Frames{n, e}
		} else {
			frames = MetricsFrames(spans, dq.TimeRange.From, dq.TimeRange.To, dq.Interval)
		}
	}
	if warn != nil && len(frames) > 0 {
		frames[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: warn.Error()})
	}
	for _, f := range frames {
		f.RefID = dq.RefID
	}
	return backend.DataResponse{Frames: frames}
}

func statusOf(err error) backend.Status {
	var se *store.ShardError
	if errors.As(err, &se) {
		return backend.StatusInternal
	}
	return backend.StatusBadRequest
}

// CheckHealth reports whether the data directories can be read, how many
// shards there are and how old the newest span is.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	if d.settings.Storage == StorageBucket {
		return d.bucketHealth(ctx), nil
	}
	var missing []string
	for _, dir := range d.settings.DataDirs {
		if _, err := os.ReadDir(dir); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", dir, err))
		}
	}
	if len(missing) == len(d.settings.DataDirs) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError,
			Message: fmt.Sprintf("cannot read the data directories: %v", missing)}, nil
	}
	st, err := d.reader.Stats(ctx)
	if err != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: "reading shards: " + err.Error()}, nil
	}
	if st.Shards == 0 {
		return &backend.CheckHealthResult{Status: backend.HealthStatusOk,
			Message: fmt.Sprintf("data directories readable, but no spans yet: start `zerotrace collect --data-dir %s` on each node", d.settings.DataDirs[0])}, nil
	}
	age := time.Since(time.Unix(0, st.NewestNs)).Round(time.Second)
	msg := fmt.Sprintf("%d nodes, %d shards, %d spans; newest span %s ago", len(st.Nodes), st.Shards, st.Spans, age)
	if len(missing) > 0 {
		msg += fmt.Sprintf("; unreadable: %v", missing)
	}
	details, _ := json.Marshal(map[string]any{"nodes": len(st.Nodes), "shards": st.Shards, "spans": st.Spans,
		"bytes": st.Bytes, "newestSpanAgeSeconds": age.Seconds()})
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg, JSONDetails: details}, nil
}

// CallResource serves GET namespaces, services, endpoints, protocols.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resource.CallResource(ctx, req, sender)
}

// values answers one resource with a JSON array of strings. Query
// parameters: namespace, service, from and to (epoch ms).
func (d *Datasource) values(field string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Query()
		q := store.ValuesQuery{Field: field, Namespace: p.Get("namespace"), Service: p.Get("service")}
		for _, x := range []struct {
			name string
			dst  *int64
		}{{"from", &q.FromNs}, {"to", &q.ToNs}} {
			if v := p.Get(x.name); v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					http.Error(w, fmt.Sprintf("%s: want epoch milliseconds", x.name), http.StatusBadRequest)
					return
				}
				*x.dst = n * int64(time.Millisecond)
			}
		}
		from, to := q.FromNs, q.ToNs
		if from == 0 && to == 0 {
			from = time.Now().Add(-time.Hour).UnixNano() // bucket mode: do not fetch all of history
		}
		release, _ := d.prepare(r.Context(), from, to)
		defer release()
		vals, err := d.reader.Values(r.Context(), q)
		if vals == nil {
			vals = []string{}
		}
		if err != nil && len(vals) == 0 {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(vals)
	}
}
