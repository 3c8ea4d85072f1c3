package plugin

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zerotrace/zerotrace/pkg/span"
	"github.com/zerotrace/zerotrace/pkg/trace"
)

// Query types.
const (
	QueryTrace      = "trace"
	QuerySearch     = "search"
	QueryServiceMap = "serviceMap"
	QueryMetrics    = "metrics"
)

// Search table types.
const (
	TableTraces = "traces" // one row per trace (default)
	TableSpans  = "spans"  // one row per matching span
)

// Query is the JSON model of one query (src/types.ts ZerotraceQuery). Every
// filter takes one value or a list (a multi-value template variable); a
// list matches any of its values, an empty one anything.
type Query struct {
	QueryType string  `json:"queryType"`
	TraceID   string  `json:"traceId"`
	SpanID    string  `json:"spanId"`
	Namespace Strings `json:"namespace"`
	Service   Strings `json:"service"`
	Workload  Strings `json:"workload"`
	Protocol  Strings `json:"protocol"`
	Endpoint  Strings `json:"endpoint"`
	Status    Strings `json:"status"`
	// Attribute filters (not in the search index: matched on the spans read).
	Pod          Strings `json:"pod"`
	Node         Strings `json:"node"`
	ResponseCode Strings `json:"responseCode"` // 503, or a class: 5xx
	MinDuration  string  `json:"minDuration"`
	MaxDuration  string  `json:"maxDuration"`
	Limit        int     `json:"limit"`
	// TableType of a search: traces (default) or spans.
	TableType string `json:"tableType"`
	// Metric of a metrics query (Metrics lists them; default rate).
	Metric string `json:"metric"`
	// Exemplars: metrics queries add the slowest span of each bucket
	// (default true; never for alerting).
	Exemplars *bool `json:"exemplars"`

	minDuration, maxDuration time.Duration
	codes                    []codeRange
}

// Limits of query fields.
const (
	maxFieldBytes = 1024  // namespace, service, endpoint
	maxValues     = 100   // values of one filter
	maxLimit      = 10000 // search rows of spans
	maxTraceLimit = 1000  // search rows of traces (each one assembled)
	quoteBytes    = 40    // bad input quoted in errors
)

// short quotes at most quoteBytes of untrusted input.
func short(s string) string {
	if len(s) <= quoteBytes {
		return fmt.Sprintf("%q", s)
	}
	cut := quoteBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}

// ParseQuery decodes and checks a query's JSON.
func ParseQuery(b []byte) (Query, error) {
	var q Query
	if err := json.Unmarshal(b, &q); err != nil {
		return q, fmt.Errorf("reading query: %w", err)
	}
	if q.QueryType == "" {
		q.QueryType = QuerySearch
	}
	switch q.QueryType {
	case QueryTrace, QuerySearch, QueryServiceMap, QueryMetrics:
	default:
		return q, fmt.Errorf("unknown query type %s (trace, search, serviceMap, metrics)", short(q.QueryType))
	}
	if err := q.checkFilters(); err != nil {
		return q, err
	}
	var err error
	if q.minDuration, err = parseDuration("min duration", q.MinDuration); err != nil {
		return q, err
	}
	if q.maxDuration, err = parseDuration("max duration", q.MaxDuration); err != nil {
		return q, err
	}
	if q.maxDuration > 0 && q.maxDuration < q.minDuration {
		return q, fmt.Errorf("max duration %s is less than min duration %s", q.MaxDuration, q.MinDuration)
	}
	switch q.TableType {
	case "":
		q.TableType = TableTraces
	case TableTraces, TableSpans:
	default:
		return q, fmt.Errorf("table type %s: want traces or spans", short(q.TableType))
	}
	if q.QueryType == QueryMetrics {
		if q.Metric == "" {
			q.Metric = MetricRate
		}
		if _, ok := metricByName[q.Metric]; !ok {
			return q, fmt.Errorf("metric %s: want one of %s", short(q.Metric), strings.Join(MetricNames(), ", "))
		}
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, maxLimit)
	if q.QueryType == QuerySearch && q.TableType == TableTraces {
		q.Limit = min(q.Limit, maxTraceLimit)
	}
	if q.QueryType == QueryTrace {
		return q, q.checkTraceRef()
	}
	return q, nil
}

// checkFilters checks every filter's values.
func (q *Query) checkFilters() error {
	for _, f := range []struct {
		name string
		v    Strings
	}{{"namespace", q.Namespace}, {"service", q.Service}, {"workload", q.Workload}, {"endpoint", q.Endpoint},
		{"pod", q.Pod}, {"node", q.Node}, {"protocol", q.Protocol}, {"status", q.Status}, {"response code", q.ResponseCode}} {
		if len(f.v) > maxValues {
			return fmt.Errorf("%s: %d values, want at most %d", f.name, len(f.v), maxValues)
		}
		for _, v := range f.v {
			if len(v) > maxFieldBytes || !utf8.ValidString(v) {
				return fmt.Errorf("%s %s: want at most %d bytes of UTF-8", f.name, short(v), maxFieldBytes)
			}
		}
	}
	for _, p := range q.Protocol {
		if _, err := span.ParseL7Protocol(p); err != nil {
			return fmt.Errorf("protocol %s: unknown", short(p))
		}
	}
	for _, st := range q.Status {
		if _, err := span.ParseResponseStatus(st); err != nil {
			return fmt.Errorf("status %s: want ok, client_error, server_error or timeout", short(st))
		}
	}
	for _, c := range q.ResponseCode {
		r, err := parseCodeRange(c)
		if err != nil {
			return err
		}
		q.codes = append(q.codes, r)
	}
	return nil
}

func (q *Query) checkTraceRef() error {
	q.TraceID, q.SpanID = strings.TrimSpace(q.TraceID), strings.TrimSpace(q.SpanID)
	switch {
	case q.TraceID != "":
		if trace.CheckRef(q.TraceID) != nil {
			return fmt.Errorf("trace id %s: want 32 hex digits, or a span id", short(q.TraceID))
		}
	case q.SpanID != "":
		if _, err := span.ParseSpanID(q.SpanID); err != nil {
			return fmt.Errorf("span id %s: want 16 hex digits (or a decimal span id)", short(q.SpanID))
		}
	default:
		return fmt.Errorf("trace query needs a trace id or a span id")
	}
	return nil
}

func parseDuration(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %s: want a duration like 100ms", name, short(s))
	}
	return d, nil
}

// lastNs is the last instant a span's int64 nanosecond time can hold
// (2262-04-11T23:47:16Z).
var lastNs = time.Unix(0, math.MaxInt64)

// TimeRange checks a query's time range and returns it in nanoseconds.
// A range that starts before 1970 starts at 1970, one that ends after
// 2262-04-11 ends then (no span is outside); a reversed or empty range,
// or one wholly outside those years, is an error. (Over Grafana's plugin
// protocol an end after 2262 arrives wrapped around, so it is reported as a
// reversed range with a hint.)
func TimeRange(from, to time.Time) (fromNs, toNs int64, err error) {
	if from.After(to) {
		hint := ""
		if to.Before(time.Unix(0, 0)) {
			// Grafana's SDK turns epoch milliseconds into nanoseconds: an end
			// after 2262 arrives wrapped around.
			hint = " (an end after 2262-04-11 wraps around to before 1970 on its way to the plugin)"
		}
		return 0, 0, fmt.Errorf("time range is reversed: from %s is after to %s%s",
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), hint)
	}
	if from.Equal(to) {
		return 0, 0, fmt.Errorf("time range is empty: from and to are both %s", from.UTC().Format(time.RFC3339))
	}
	if !to.After(time.Unix(0, 0)) || from.After(lastNs) {
		return 0, 0, fmt.Errorf("time range %s to %s holds no span time (1970 to 2262)",
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	if from.Before(time.Unix(0, 0)) {
		from = time.Unix(0, 0)
	}
	if to.After(lastNs) {
		to = lastNs
	}
	return from.UnixNano(), to.UnixNano(), nil
}
