package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
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
	r, err := store.OpenReaderWith(st.readerOptions(), dirs...)
	if err != nil {
		return nil, fmt.Errorf("opening the span store: %w", err)
	}
	d.reader = r
	mux := http.NewServeMux()
	for _, res := range []string{"namespaces", "services", "workloads", "endpoints", "protocols"} {
		field := map[string]string{"namespaces": "namespace", "services": "service", "workloads": "workload", "endpoints": "endpoint", "protocols": "protocol"}[res]
		mux.HandleFunc("/"+res, d.values(field))
	}
	d.resource = httpadapter.New(mux)
	return d, nil
}

// Dispose closes the store when Grafana drops the instance.
func (d *Datasource) Dispose() { d.reader.Close() }

// QueryData answers each query on its own: one query's error (or panic)
// does not fail the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	if fromEvaluation(req) {
		ctx = context.WithValue(ctx, evaluationKey{}, true)
	}
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.safeQuery(ctx, q)
	}
	return resp, nil
}

type evaluationKey struct{}

// fromEvaluation reports whether Grafana's alerting or server-side
// expressions sent the request: they read every frame as numbers, so
// metrics queries leave out their exemplar frame.
func fromEvaluation(req *backend.QueryDataRequest) bool {
	for _, h := range []string{backend.FromAlertHeaderName, "FromExpression"} {
		if v, ok := req.Headers[h]; ok && v != "" && v != "false" {
			return true
		}
	}
	return false
}

func (d *Datasource) forEvaluation(ctx context.Context) bool {
	v, _ := ctx.Value(evaluationKey{}).(bool)
	return v
}

// safeQuery is the last line: a panic while answering becomes the error of
// that query.
func (d *Datasource) safeQuery(ctx context.Context, q backend.DataQuery) (r backend.DataResponse) {
	defer func() {
		if p := recover(); p != nil {
			log.DefaultLogger.Error("query panicked", "refId", q.RefID, "panic", p, "stack", string(debug.Stack()))
			r = backend.ErrDataResponse(backend.StatusInternal, fmt.Sprintf("internal error answering this query: %v", p))
		}
	}()
	return d.query(ctx, q)
}

// spanCap bounds the spans a service map or metrics query reads.
var spanCap = 100000

// dataDirErrors checks every configured data directory.
func (d *Datasource) dataDirErrors() []error {
	var errs []error
	for _, dir := range d.settings.DataDirs {
		if err := store.CheckDataDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (d *Datasource) query(ctx context.Context, dq backend.DataQuery) backend.DataResponse {
	q, err := ParseQuery(dq.JSON)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
	}
	var from, to int64
	if q.QueryType != QueryTrace { // a trace link works whatever the range
		if from, to, err = TimeRange(dq.TimeRange.From, dq.TimeRange.To); err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
		}
	}
	// Bucket mode: the query downloads only the shards its lookups and
	// searches may need (bucket.Query). The seed of a trace query is looked
	// for in the dashboard's range (anywhere if it has none).
	pfrom, pto := from, to
	if q.QueryType == QueryTrace {
		pfrom, pto, _ = TimeRange(dq.TimeRange.From, dq.TimeRange.To)
	}
	src, done := d.source(pfrom, pto)
	resp := d.queryStore(ctx, dq, q, from, to, src)
	if bucketWarn := done(); bucketWarn != nil {
		if resp.Error != nil {
			resp.Error = fmt.Errorf("%w; %v", resp.Error, bucketWarn)
		} else if len(resp.Frames) > 0 {
			addNotices(resp.Frames[0], bucketWarn)
		}
	}
	return resp
}

func (d *Datasource) queryStore(ctx context.Context, dq backend.DataQuery, q Query, from, to int64, src source) backend.DataResponse {
	dirErrs := d.dataDirErrors()
	if len(dirErrs) > 0 && len(dirErrs) == len(d.settings.DataDirs) {
		return backend.ErrDataResponse(backend.StatusInternal, errors.Join(dirErrs...).Error())
	}
	var frames data.Frames
	var warn []error
	switch q.QueryType {
	case QueryTrace:
		id := q.TraceID
		if id == "" {
			id = q.SpanID
		}
		t, err := trace.AssembleRef(ctx, src, d.assembly, id)
		if errors.Is(err, trace.ErrNotFound) {
			return backend.ErrDataResponse(backend.StatusNotFound, err.Error())
		}
		if err != nil {
			return backend.ErrDataResponse(statusOf(err), err.Error())
		}
		frames = data.Frames{TraceFrame(t)}
	case QuerySearch:
		f, errs := d.search(ctx, src, &q, from, to)
		if f.Rows() == 0 {
			if err := fatal(errs); err != nil {
				return backend.ErrDataResponse(statusOf(err), err.Error())
			}
		}
		frames, warn = data.Frames{f}, errs
	case QueryServiceMap, QueryMetrics:
		// Both sides of every call: the service map pairs them, and the
		// names of proxies come from the applications of their pods.
		mq := q
		if q.QueryType == QueryServiceMap {
			// Filtered after pairing, so that edges keep their callee.
			mq.Service, mq.Workload = nil, nil
		}
		st := d.stream(src, &mq, from, to, []span.TapSide{span.TapClientProcess, span.TapServerProcess}, spanCap)
		spans := st.take(ctx, spanCap)
		warn = st.warnings()
		if len(spans) == 0 {
			if err := fatal(warn); err != nil {
				return backend.ErrDataResponse(statusOf(err), err.Error())
			}
		}
		if len(spans) >= spanCap {
			warn = append(warn, fmt.Errorf("only the newest %d spans of the range were read: narrow the range or filter", spanCap))
		}
		if q.QueryType == QueryServiceMap {
			n, e := ServiceMapFrames(spans, append(append(Strings{}, q.Service...), q.Workload...))
			frames = data.Frames{n, e}
		} else {
			ex := q.Exemplars == nil || *q.Exemplars
			frames = MetricsFrame(spans, NewBuckets(from, to, dq.Interval), q.Metric, ex && !d.forEvaluation(ctx), TraceLink{d.uid, d.name})
		}
	}
	warn = append(warn, dirErrs...)
	if len(frames) > 0 {
		addNotices(frames[0], warn...)
	}
	for _, f := range frames {
		f.RefID = dq.RefID
	}
	return backend.DataResponse{Frames: frames}
}

// fatal is the error of a query that found nothing because it could not
// read: the first store error among errs (a capped scan is no error).
func fatal(errs []error) error {
	for _, e := range errs {
		var se *store.ShardError
		if e != nil && (errors.As(e, &se) || errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded)) {
			return e
		}
	}
	return nil
}

// addNotices adds each distinct error line as a warning, once per frame.
func addNotices(f *data.Frame, errs ...error) {
	seen := map[string]bool{}
	if f.Meta != nil {
		for _, n := range f.Meta.Notices {
			seen[n.Text] = true
		}
	}
	for _, text := range errorLines(errs...) {
		if !seen[text] {
			seen[text] = true
			f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: text})
		}
	}
}

// errorLines flattens joined errors into their distinct lines.
func errorLines(errs ...error) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" && !seen[line] {
				seen[line] = true
				out = append(out, line)
			}
		}
	}
	for _, e := range errs {
		walk(e)
	}
	return out
}

func statusOf(err error) backend.Status {
	var se *store.ShardError
	if errors.As(err, &se) {
		return backend.StatusInternal
	}
	return backend.StatusBadRequest
}

// CheckHealth reports whether the data directories hold readable Zerotrace
// data, names every node manifest and shard that cannot be read (checksums
// are verified, ADR 0002), and says how many shards and spans there are and
// how old the newest span is.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	if d.settings.Storage == StorageBucket {
		return d.bucketHealth(ctx), nil
	}
	dirErrs := d.dataDirErrors()
	if len(dirErrs) == len(d.settings.DataDirs) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError,
			Message: "cannot use the data directories: " + strings.Join(errorLines(dirErrs...), "; ")}, nil
	}
	st, serr := d.reader.Stats(ctx)
	verr := d.reader.Verify(ctx)
	problems := errorLines(append(dirErrs, serr, verr)...)
	if st.Shards == 0 && len(problems) == 0 {
		return &backend.CheckHealthResult{Status: backend.HealthStatusOk,
			Message: fmt.Sprintf("data directories readable, but no spans yet: start `zerotrace collect --data-dir %s` on each node", d.settings.DataDirs[0])}, nil
	}
	msg := fmt.Sprintf("%d nodes, %d shards, %d spans", len(st.Nodes), st.Shards, st.Spans)
	var age time.Duration
	if st.NewestNs != 0 {
		age = time.Since(time.Unix(0, st.NewestNs)).Round(time.Second)
		msg += fmt.Sprintf("; newest span %s ago", age)
	}
	ringbufDrops, packetDrops, captureErrs := captureLoss(st.Nodes)
	if ringbufDrops > 0 || packetDrops > 0 {
		msg += fmt.Sprintf("; capture loss since the collectors started: %d ring-buffer events, %d packets dropped (zerotrace store stats)", ringbufDrops, packetDrops)
	}
	disk := diskLoss(st.Nodes)
	if disk.dropped > 0 {
		msg += fmt.Sprintf("; %d spans dropped for lack of disk space on the collectors (zerotrace store stats)", disk.dropped)
	}
	if len(disk.short) > 0 {
		msg += fmt.Sprintf("; short of disk space now, dropping new spans: %s", strings.Join(disk.short, ", "))
	}
	if len(captureErrs) > 0 {
		msg += "; " + strings.Join(captureErrs, "; ")
	}
	details, _ := json.Marshal(map[string]any{"nodes": len(st.Nodes), "shards": st.Shards, "spans": st.Spans,
		"bytes": st.Bytes, "newestSpanAgeSeconds": age.Seconds(), "unreadable": problems,
		"ringbufDrops": ringbufDrops, "packetDrops": packetDrops, "diskDrops": disk.dropped, "diskShortNodes": disk.short})
	if len(problems) > 0 {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, JSONDetails: details,
			Message: msg + "; cannot read: " + strings.Join(problems, "; ")}, nil
	}
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg, JSONDetails: details}, nil
}

// captureLoss sums the drops the nodes' collectors recorded
// (store.CaptureStatsName); a damaged record is named, not fatal.
func captureLoss(nodes []store.NodeStats) (ringbuf, packets uint64, errs []string) {
	for _, n := range nodes {
		cs, ok, err := store.ReadCaptureStats(n.Dir)
		if err != nil {
			errs = append(errs, fmt.Sprintf("node %s: %v", n.Node, err))
		}
		if !ok {
			continue
		}
		rb, pk := cs.Drops()
		ringbuf += rb
		packets += pk
	}
	return ringbuf, packets, errs
}

// CallResource serves GET namespaces, services, workloads, endpoints, protocols.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.DefaultLogger.Error("resource panicked", "path", req.Path, "panic", p, "stack", string(debug.Stack()))
			err = sender.Send(&backend.CallResourceResponse{Status: http.StatusInternalServerError,
				Body: []byte(fmt.Sprintf("internal error: %v", p))})
		}
	}()
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
				if err != nil || n < 0 {
					http.Error(w, fmt.Sprintf("%s %s: want epoch milliseconds", x.name, short(v)), http.StatusBadRequest)
					return
				}
				*x.dst = min(n, math.MaxInt64/int64(time.Millisecond)) * int64(time.Millisecond)
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
